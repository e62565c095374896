"""The sync engine (connectors.sync) with its SQL store against a real Dovecot.

Each change-detection path (QRESYNC, CONDSTORE only, neither) runs against the same server:
the engine is told to ignore capabilities.  After every run the stored (UID, flags) set must
equal what another client sees on the server.
"""

from __future__ import annotations

import imaplib
import socket

import pytest

from connectors import plugins
from connectors.plugins import hookimpl
from connectors.sync import SyncOptions, sync_folders, uid_set
from tests.servers.proxy import CuttingProxy
from tests.support.sync_support import MODES, folder_id, imap_login, make_mailbox, server_flags, stored_flags
from webapp.extensions import db
from webapp.jobs.sync_store import SqlSyncStore
from webapp.models import Folder, Message


def run(dovecot, account, names=("INBOX",), port=None, **options):
    with imap_login(dovecot, port=port) as imap:
        folders = [(folder_id(account, n), n) for n in names]
        return sync_folders(
            imap, SqlSyncStore(account.id), folders, options=SyncOptions(**options), account_id=account.id
        )


def assert_in_step(dovecot, account, name="INBOX"):
    stored = stored_flags(folder_id(account, name))
    assert stored == server_flags(dovecot, name)
    return stored


@pytest.fixture
def mailbox(app, clean_dovecot):
    return make_mailbox(clean_dovecot)


@pytest.mark.parametrize("mode", MODES)
def test_first_sync_stores_envelopes_then_unchanged_sends_no_fetch(clean_dovecot, mailbox, mode):
    dovecot = clean_dovecot
    dovecot.add_messages("alice", 30)
    dovecot.add_message(
        "alice",
        "From: =?utf-8?q?Caf=C3=A9?= <Cafe@Example.com>\r\nTo: a@x.org, B <b@y.org>\r\nCc: c@z.org\r\n"
        "Subject: =?utf-8?q?R=C3=A9union?=\r\nMessage-ID: <m1@x>\r\nIn-Reply-To: <m0@x>\r\n"
        "References: <root@x> <m0@x>\r\nDate: Tue, 1 Oct 2024 10:00:00 +0200\r\n\r\nHello there, preview.\r\n",
        flags="SF",
    )
    stats = run(dovecot, mailbox, batch_size=7, **MODES[mode])
    assert stats.folders[0].path == "first" and stats.inserted == 31 and not stats.errors
    assert stats.commands["FETCH"] == 5  # 31 UIDs in ranges of 7
    stored = assert_in_step(dovecot, mailbox)
    assert len(stored) == 31
    msg = db.session.execute(db.select(Message).where(Message.message_id == "<m1@x>")).scalar_one()
    assert (msg.subject, msg.from_name, msg.from_addr) == ("Réunion", "Café", "cafe@example.com")
    assert msg.to_addrs == "a@x.org, B <b@y.org>" and msg.cc_addrs == "c@z.org"
    assert msg.thread_key == "<root@x>" and msg.in_reply_to == "<m0@x>"
    assert msg.seen and msg.flagged and msg.flags == "\\Flagged \\Seen"
    assert msg.preview == "Hello there, preview." and msg.size > 100
    assert str(msg.date) == "2024-10-01 08:00:00"
    assert (msg.modseq is not None) == (mode != "plain")
    folder = db.session.get(Folder, folder_id(mailbox))
    db.session.refresh(folder)
    assert folder.uidnext == 32 and folder.message_count == 31 and folder.seeded_uid is None
    assert folder.last_full_sync_at is not None

    again = run(dovecot, mailbox, **MODES[mode])
    if mode == "plain":  # flags may change unseen without CONDSTORE: one FLAGS scan, nothing stored
        assert again.commands["FETCH"] == 1 and again.inserted == again.updated == 0
    else:
        assert again.folders[0].path == "unchanged"
        assert dict(again.commands) == {"STATUS": 1}
    assert_in_step(dovecot, mailbox)


@pytest.mark.parametrize("mode", MODES)
def test_new_mail_appended_by_another_client(clean_dovecot, mailbox, mode):
    dovecot = clean_dovecot
    dovecot.add_messages("alice", 10)
    run(dovecot, mailbox, **MODES[mode])
    with imap_login(dovecot) as other:
        for i in range(3):
            other.append("INBOX", f"Subject: appended {i}\r\nMessage-ID: <a{i}@x>\r\n\r\nhi\r\n".encode())
    stats = run(dovecot, mailbox, **MODES[mode])
    assert stats.folders[0].path == "incremental"
    assert stats.inserted == 3 and stats.deleted == 0
    assert sorted(stored_flags(folder_id(mailbox))) == list(range(1, 14))
    assert_in_step(dovecot, mailbox)


@pytest.mark.parametrize("mode", MODES)
def test_flags_changed_and_messages_expunged_by_another_client(clean_dovecot, mailbox, mode):
    dovecot = clean_dovecot
    dovecot.add_messages("alice", 40)
    run(dovecot, mailbox, **MODES[mode])
    with imap_login(dovecot) as other:
        other.select_folder("INBOX")
        other.add_flags([2, 5, 30], [b"\\Flagged", b"\\Seen"])
        other.add_flags([7], [b"$Label1"])
        other.delete_messages([3, 4, 5, 20, 40])
        other.expunge()
        other.append("INBOX", b"Subject: late\r\n\r\nx\r\n", flags=[b"\\Answered"])
    stats = run(dovecot, mailbox, **MODES[mode])
    assert stats.deleted == 5 and stats.inserted == 1
    assert stats.updated >= 3  # 2, 30 and 7 (servers may report more)
    stored = assert_in_step(dovecot, mailbox)
    assert stored[2] == "\\Flagged \\Seen" and stored[7] == "$Label1" and stored[41] == "\\Answered"
    flagged = db.session.execute(db.select(Message.uid).where(Message.flagged)).scalars().all()
    assert sorted(flagged) == [2, 30]
    if mode == "qresync":
        assert stats.commands["SEARCH"] == 0
    if mode == "condstore":
        assert stats.commands["SEARCH"] == 1


@pytest.mark.parametrize("mode", ["qresync", "plain"])
def test_folder_deleted_and_recreated_is_reseeded(clean_dovecot, app, mode):
    dovecot = clean_dovecot
    account = make_mailbox(dovecot, folders=("INBOX", "Work"))
    with imap_login(dovecot) as other:
        other.create_folder("Work")
        for i in range(6):
            other.append("Work", f"Subject: old {i}\r\nMessage-ID: <old{i}@x>\r\n\r\nx\r\n".encode())
    run(dovecot, account, names=("INBOX", "Work"), **MODES[mode])
    before = db.session.get(Folder, folder_id(account, "Work")).uidvalidity
    with imap_login(dovecot) as other:
        other.delete_folder("Work")
        other.create_folder("Work")
        for i in range(4):
            other.append("Work", f"Subject: new {i}\r\nMessage-ID: <new{i}@x>\r\n\r\nx\r\n".encode())
    stats = run(dovecot, account, names=("INBOX", "Work"), **MODES[mode])
    work = stats.folders[1]
    assert work.path == "reseeded" and work.inserted == 4, stats.as_dict()
    folder = db.session.get(Folder, folder_id(account, "Work"))
    db.session.refresh(folder)
    assert folder.uidvalidity != before
    subjects = db.session.execute(db.select(Message.subject).where(Message.folder_id == folder.id)).scalars()
    assert sorted(subjects) == [f"new {i}" for i in range(4)]
    assert_in_step(dovecot, account, "Work")


def test_missing_folder_is_reported_and_others_still_sync(clean_dovecot, app):
    dovecot = clean_dovecot
    account = make_mailbox(dovecot, folders=("Gone", "INBOX"))
    dovecot.add_messages("alice", 3)
    stats = run(dovecot, account, names=("Gone", "INBOX"))
    assert stats.folders[0].error and "Gone" not in [f.name for f in stats.folders if not f.error]
    assert stats.folders[1].inserted == 3
    assert_in_step(dovecot, account)


def test_non_ascii_folder_name_synced_by_its_wire_name(clean_dovecot, app):
    dovecot = clean_dovecot
    wire = "Entrata/&ANw-ber &- Co"  # "Entrata/Über & Co" in modified UTF-7
    account = make_mailbox(dovecot, folders=(wire,))
    with imap_login(dovecot) as other:
        other.folder_encode = False
        other.create_folder(wire)
        other.append(wire, b"Subject: hi\r\n\r\nx\r\n")
    stats = run(dovecot, account, names=(wire,))
    assert stats.inserted == 1 and not stats.errors
    assert_in_step(dovecot, account, wire)


def test_sparse_uids_are_fetched_in_widening_ranges(clean_dovecot, mailbox):
    dovecot = clean_dovecot
    dovecot.add_messages("alice", 300)
    with imap_login(dovecot) as other:
        other.select_folder("INBOX")
        other.delete_messages([uid for uid in range(1, 301) if uid % 50])  # keeps 50, 100, ... 300
        other.expunge()
    stats = run(dovecot, mailbox, batch_size=10)
    assert stats.inserted == 6
    assert stats.commands["FETCH"] < 10  # 30 ranges of 10 UIDs if the width never grew
    assert sorted(assert_in_step(dovecot, mailbox)) == [50, 100, 150, 200, 250, 300]


@pytest.mark.parametrize("cut_after", [2_000, 40_000])
def test_connection_cut_mid_sync_then_clean_resync(clean_dovecot, mailbox, cut_after):
    dovecot = clean_dovecot
    dovecot.add_messages("alice", 400)
    with CuttingProxy("127.0.0.1", dovecot.imap_port, cut_after=cut_after) as proxy:
        with pytest.raises((imaplib.IMAP4.abort, OSError, socket.error)):
            run(dovecot, mailbox, port=proxy.port, batch_size=50)
        assert proxy.cuts == 1
    partial = stored_flags(folder_id(mailbox))
    assert len(partial) < 400
    folder = db.session.get(Folder, folder_id(mailbox))
    db.session.refresh(folder)
    assert folder.seeded_uid is not None  # the pass is known to be unfinished
    stats = run(dovecot, mailbox, batch_size=50)
    assert stats.folders[0].path == "resumed"
    assert stats.inserted == 400 - len(partial)
    assert len(assert_in_step(dovecot, mailbox)) == 400


def test_interrupted_first_pass_sees_changes_made_before_it_resumes(clean_dovecot, mailbox):
    """Rows stored by the unfinished pass are reconciled (CHANGEDSINCE from the pass's start)."""
    dovecot = clean_dovecot
    dovecot.add_messages("alice", 300)
    with CuttingProxy("127.0.0.1", dovecot.imap_port, cut_after=60_000) as proxy:
        with pytest.raises((imaplib.IMAP4.abort, OSError)):
            run(dovecot, mailbox, port=proxy.port, batch_size=50)
    partial = sorted(stored_flags(folder_id(mailbox)))
    assert 0 < len(partial) < 300
    with imap_login(dovecot) as other:
        other.select_folder("INBOX")
        other.add_flags([partial[0]], [b"\\Flagged"])
        other.delete_messages([partial[1]])
        other.expunge()
    run(dovecot, mailbox, batch_size=50)
    stored = assert_in_step(dovecot, mailbox)
    assert stored[partial[0]] == "\\Flagged" and partial[1] not in stored


def test_plugins_hear_about_new_messages(clean_dovecot, mailbox):
    heard = []

    class Listener:
        @hookimpl
        def mailroom_messages_synced(self, account_id, folder, uids):
            heard.append((account_id, folder, list(uids)))

    pm = plugins.get_plugin_manager()
    listener = Listener()
    pm.register(listener)
    try:
        clean_dovecot.add_messages("alice", 5)
        run(clean_dovecot, mailbox, batch_size=3)
    finally:
        pm.unregister(listener)
    assert heard == [(mailbox.id, "INBOX", [1, 2, 3]), (mailbox.id, "INBOX", [4, 5])]


def test_uid_set_parsing():
    assert uid_set(b"1:3,7,10:9") == [1, 2, 3, 7, 9, 10]
    assert uid_set("") == []


def test_fast_fetch_reader_agrees_with_imapclient_parser(clean_dovecot, app):
    """The engine's FETCH reader gives what imapclient's general parser gives, on Dovecot's real answer."""
    from imapclient.response_parser import parse_fetch_response

    from connectors.envelope import HEADER_FIELDS
    from connectors.sync import _Unparsed, parse_fetch_fast

    dovecot = clean_dovecot
    dovecot.add_messages("alice", 5)
    dovecot.add_message("alice", b"Subject: no body\r\n\r\n", flags="S")
    dovecot.add_message("alice", b"X-Only: other header\r\n\r\nbody text\r\n", flags="F")
    with imap_login(dovecot) as imap:
        imap.enable("CONDSTORE")
        imap.select_folder("INBOX", readonly=True)
        raw = imap._imap
        items = (
            f"(UID FLAGS RFC822.SIZE INTERNALDATE MODSEQ BODY.PEEK[HEADER.FIELDS ({' '.join(HEADER_FIELDS)})] "
            "BODY.PEEK[TEXT]<0.512>)"
        )
        tag = raw._command("UID", "FETCH", "1:7", items)
        typ, data = raw._command_complete("FETCH", tag)
        _, data = raw._untagged_response(typ, data, "FETCH")
    fast = parse_fetch_fast(data)
    slow = parse_fetch_response(data, False, True)
    assert sorted(fast) == sorted(slow) == list(range(1, 8))
    for uid, item in slow.items():
        header = next(v for k, v in item.items() if k.startswith(b"BODY[HEADER"))
        text = next(v for k, v in item.items() if k.startswith(b"BODY[TEXT]"))
        assert fast[uid][b"HEADER"] == header and fast[uid].get(b"TEXT", b"") == (text or b"")
        assert fast[uid][b"FLAGS"] == item[b"FLAGS"] and fast[uid][b"MODSEQ"] == item[b"MODSEQ"]
        assert fast[uid][b"RFC822.SIZE"] == item[b"RFC822.SIZE"]
    with pytest.raises(_Unparsed):
        parse_fetch_fast([b"1 (FLAGS ())"])  # no UID: the general parser must take over


class _FailingStore(SqlSyncStore):
    """Fails to insert the second batch, while the engine has the next FETCH already sent."""

    def __init__(self, account_id: int) -> None:
        super().__init__(account_id)
        self.batches = 0

    def insert_messages(self, folder_id: int, rows: list[dict]) -> None:
        self.batches += 1
        if self.batches == 2:
            raise RuntimeError("disk full")
        super().insert_messages(folder_id, rows)


def test_a_store_failure_mid_pass_keeps_the_pipelined_connection_usable(clean_dovecot, mailbox):
    """The pipelined FETCH is drained before the error propagates: the same connection resumes."""
    clean_dovecot.add_messages("alice", 40)
    folders = [(folder_id(mailbox), "INBOX")]
    with imap_login(clean_dovecot) as imap:
        with pytest.raises(RuntimeError, match="disk full"):
            sync_folders(imap, _FailingStore(mailbox.id), folders, options=SyncOptions(batch_size=10))
        raw = imap._imap
        assert [tag for tag, answer in raw.tagged_commands.items() if answer is None] == []  # drained
        assert "FETCH" not in raw.untagged_responses
        assert len(imap.search(["ALL"])) == 40  # the connection still answers in step
    db.session.rollback()
    assert sorted(stored_flags(folder_id(mailbox))) == list(range(1, 11))  # the first batch committed
    stats = run(clean_dovecot, mailbox, batch_size=10)
    assert stats.folders[0].path == "resumed" and stats.inserted == 30
    assert len(assert_in_step(clean_dovecot, mailbox)) == 40
