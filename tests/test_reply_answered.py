"""A sent reply marks its original ``\\Answered``, a sent forward ``$Forwarded`` — in the console at
once and on the IMAP server through the write-back job (webapp.jobs.message_changes.mark_original).

The whole path against Dovecot + aiosmtpd: the originals are delivered and synced, answered
through the API; a plain imapclient then sees the flags.  A failed send marks nothing, a
scheduled reply marks when it goes, an original deleted meanwhile is no error.
"""

from __future__ import annotations

import email.message
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.job_worker import run_burst
from tests.support.message_factory import make_account, make_folder, make_message
from tests.support.send_support import sending_mailbox
from tests.support.sync_support import imap_login, server_flags, stored_flags
from webapp.extensions import db
from webapp.jobs.message_changes import mark_original
from webapp.jobs.send import send_outgoing
from webapp.jobs.sync import sync_account
from webapp.models import Folder, Message, MessageChange, OutgoingMessage
from webapp.secretbox import box

pytestmark = pytest.mark.usefixtures("fresh_plugins")


@pytest.fixture
def app(send_app):
    return send_app


def _deliver(dovecot, message_id: str, subject: str) -> None:
    mail = email.message.EmailMessage()
    mail["From"] = "Carol <carol@example.org>"
    mail["To"] = "alice@example.com"
    mail["Subject"] = subject
    mail["Message-ID"] = message_id
    mail.set_content(f"{subject}, please answer.")
    dovecot.add_message("alice", mail)


def _row(account, message_id: str) -> Message | None:
    db.session.expire_all()
    return Message.query.filter_by(account_id=account.id, message_id=message_id).one_or_none()


def _flags_on_server(dovecot, uid: int) -> set[str]:
    return set(server_flags(dovecot, "INBOX").get(uid, "").split())


def _answer(api, message_id: int, mode: str, **fields) -> OutgoingMessage:
    r = api.post(f"/api/v1/messages/{message_id}/{mode}", json={"send": True, **fields})
    assert r.status_code == 202, r.json
    return db.session.get(OutgoingMessage, r.json["id"])


def test_reply_and_forward_mark_the_original_at_once_and_on_the_server(
    app, api, users, clean_dovecot, clean_smtp_server
):
    account = sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"])
    _deliver(clean_dovecot, "<contract@example.org>", "Contract")
    _deliver(clean_dovecot, "<memo@example.org>", "Memo")
    assert sync_account(account.id)["ok"]
    contract, memo = _row(account, "<contract@example.org>"), _row(account, "<memo@example.org>")
    for row in (contract, memo):  # the bodies are fetched first (202 with the body job)
        assert api["alice"].post(f"/api/v1/messages/{row.id}/reply").status_code == 202
    run_burst()
    contract_id, contract_uid, memo_id = contract.id, contract.uid, memo.id
    # Bob holds a message with the same Message-ID: Alice's replies never touch it.
    bob_box = make_account(users["bob"]["user"].id, "bob@example.com", state="connected", active=True)
    bob_copy = make_message(make_folder(bob_box), subject="Contract", message_id="<contract@example.org>")
    bob_copy_id = bob_copy.id

    # A send that fails (the SMTP login is refused) marks nothing.
    account.smtp_password_encrypted = box().encrypt("wrong")
    db.session.commit()
    failed = _answer(api["alice"], contract_id, "reply", to=["carol@example.org"])
    run_burst()
    db.session.expire_all()
    assert db.session.get(OutgoingMessage, failed.id).state == "failed"
    assert "\\Answered" not in _row(account, "<contract@example.org>").flags
    assert MessageChange.query.count() == 0
    assert "\\Answered" not in _flags_on_server(clean_dovecot, contract_uid)
    account.smtp_password_encrypted = None
    db.session.commit()

    # A scheduled reply: nothing while it waits; when it goes, the console shows \Answered at
    # once (a pending change), and the write-back job sets it on the server.
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    scheduled = _answer(api["alice"], contract_id, "reply", send_at=later)
    assert scheduled.state == "scheduled"
    assert "\\Answered" not in _row(account, "<contract@example.org>").flags
    assert send_outgoing(scheduled.id)["ok"]  # the scheduler's moment, without waiting an hour
    row = _row(account, "<contract@example.org>")
    assert "\\Answered" in row.flags.split()
    (change,) = MessageChange.query.all()
    assert (change.message_pk, change.action, change.state) == (contract_id, "answered", "pending")
    shown = api["alice"].get(f"/api/v1/messages/{contract_id}").json
    assert "\\Answered" in (shown.get("message") or shown)["flags"], shown
    assert "\\Answered" not in _flags_on_server(clean_dovecot, contract_uid)
    run_burst()
    assert MessageChange.query.count() == 0
    assert "\\Answered" in _flags_on_server(clean_dovecot, contract_uid)

    # A forward (reply all before it: already answered, no second change): $Forwarded as well.
    all_reply = _answer(api["alice"], contract_id, "reply-all", to=["carol@example.org"])
    forward = _answer(api["alice"], contract_id, "forward", to=["erin@example.org"])
    run_burst()
    db.session.expire_all()
    assert [db.session.get(OutgoingMessage, o.id).state for o in (all_reply, forward)] == ["sent", "sent"]
    assert {"\\Answered", "$Forwarded"} <= _flags_on_server(clean_dovecot, contract_uid)
    assert {"\\Answered", "$Forwarded"} <= set(_row(account, "<contract@example.org>").flags.split())
    assert MessageChange.query.count() == 0

    # The original deleted meanwhile (another client expunged it, a sync removed the row): the
    # reply goes, nothing is marked, no notice.
    gone = _answer(api["alice"], memo_id, "reply", send_at=later)
    with imap_login(clean_dovecot) as imap:
        imap.select_folder("INBOX")
        uids = imap.search(["HEADER", "Message-ID", "<memo@example.org>"])
        imap.delete_messages(uids)
        imap.expunge()
    assert sync_account(account.id)["ok"]
    assert _row(account, "<memo@example.org>") is None
    result = send_outgoing(gone.id)
    assert result["ok"] and result["state"] == "sent", result
    assert MessageChange.query.count() == 0  # nothing pending, no failure notice

    assert db.session.get(Message, bob_copy_id).flags == ""  # another user's message: untouched

    # A following sync agrees with the server: the flags stay.
    assert sync_account(account.id)["ok"]
    db.session.expire_all()
    inbox = Folder.query.filter_by(account_id=account.id, name="INBOX").one()
    assert stored_flags(inbox.id) == server_flags(clean_dovecot, "INBOX")


def test_pop3_originals_change_in_the_console_and_a_message_being_moved_is_left_alone(app, users):
    alice = users["alice"]["user"]
    pop = make_account(alice.id, "alice@pop.example", incoming_protocol="pop3", state="connected")
    pop_copy = make_message(make_folder(pop), subject="Plan", message_id="<plan@example.org>", seen=True)
    imap_box = make_account(alice.id, "alice@example.com", state="connected")
    moving = make_message(make_folder(imap_box), subject="Plan", message_id="<plan@example.org>")
    moving.uid = -moving.id  # a move of it is in flight: where it is on the server is not known yet
    db.session.commit()
    reply = OutgoingMessage(
        user_id=alice.id,
        account_id=imap_box.id,
        from_addr="alice@example.com",
        message_id="<r1@mailroom.test>",
        origin="reply",
        in_reply_to="<plan@example.org>",
        references_header="<plan@example.org>",
    )
    forward = OutgoingMessage(
        user_id=alice.id,
        account_id=imap_box.id,
        from_addr="alice@example.com",
        message_id="<f1@mailroom.test>",
        origin="forward",
        references_header="<older@example.org> <plan@example.org>",
    )
    plain = OutgoingMessage(
        user_id=alice.id,
        account_id=imap_box.id,
        from_addr="alice@example.com",
        message_id="<c1@mailroom.test>",
        origin="compose",
        in_reply_to="<plan@example.org>",
    )
    db.session.add_all([reply, forward, plain])
    db.session.commit()
    pop_id, moving_id = pop_copy.id, moving.id

    assert mark_original(plain) == []  # a new message that merely names a parent: nothing
    # Both copies are the original; the one being moved is skipped without an error.
    assert mark_original(reply) == [pop_id, moving_id]
    assert mark_original(forward) == [pop_id, moving_id]
    db.session.expire_all()
    assert db.session.get(Message, pop_id).flags.split() == ["$Forwarded", "\\Answered", "\\Seen"]
    assert db.session.get(Message, moving_id).flags == ""
    assert MessageChange.query.count() == 0  # POP3: the console's own flags, no job
