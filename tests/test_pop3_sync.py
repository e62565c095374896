"""POP3 download against Dovecot's POP3 (the same Maildir its IMAP serves).

Interruptions are real: a TCP proxy between Mailroom and Dovecot cuts the
connection mid-download, and a job that dies mid-run is a progress callback
that raises.  The only non-Dovecot server is a scripted one without UIDL,
a POP3 variant Dovecot cannot be set up to show.
"""

from __future__ import annotations

import email.message
import json
import socket
import threading

import pytest

from connectors.errors import ErrorClass, MailError
from connectors.pop3 import NO_UIDL
from tests.conftest import login
from webapp import settings_store
from webapp.extensions import db
from webapp.jobs import pop3 as pop3_job
from webapp.models import Account, Folder, LogEntry, Message, MessageBody
from webapp.secretbox import box

from .test_connectors_check import lines, scripted  # noqa: F401  (fixture)


class CuttingProxy:
    """A loopback TCP proxy to ``port``; ``cut()`` drops every open connection, new ones still pass."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        with self._lock:
            socks, self.open = self.open, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.cut()
        self.sock.close()


@pytest.fixture
def proxy(clean_dovecot):
    p = CuttingProxy(clean_dovecot.pop3_port)
    yield p
    p.close()


def make_account(user_id: int, port: int, **extra) -> Account:
    """A hand-typed POP3 mailbox for Dovecot's alice, plain POP3 on loopback (allowed for the test)."""
    settings_store.put("allowed_internal_hosts", ["127.0.0.1/32"])
    account = Account(
        user_id=user_id,
        manual=True,
        username="alice",
        email="alice@example.com",
        description="alice",
        password_encrypted=box().encrypt("secret-alice-pw"),
        incoming_protocol="pop3",
        imap_host="127.0.0.1",
        imap_port=port,
        imap_security="none",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        pop3_host="127.0.0.1",
        pop3_port=port,
        pop3_security="none",
        **extra,
    )
    db.session.add(account)
    db.session.commit()
    return account


def rich_message() -> bytes:
    msg = email.message.EmailMessage()
    msg["From"] = "Zoë Müller <zoe@example.org>"
    msg["To"] = "alice@example.com"
    msg["Subject"] = "Café über alles — ünïcode"
    msg["Message-ID"] = "<rich.1@example.org>"
    msg["Date"] = "Tue, 03 Mar 2026 10:00:00 +0100"
    msg.set_content("Grüße aus Köln.\nSecond line.\n")
    msg.add_alternative("<p>Grüße <b>aus</b> Köln.</p>", subtype="html")
    msg.add_attachment(
        b"\x00\x01binary" * 100, maintype="application", subtype="octet-stream", filename="a.bin"
    )
    return msg.as_bytes().replace(b"\n", b"\r\n")


def on_server(dovecot, user: str = "alice") -> int:
    root = dovecot.folder_path(user)
    return sum(1 for sub in ("new", "cur") if (root / sub).exists() for _ in (root / sub).iterdir())


def stored(account: Account) -> list[Message]:
    return Message.query.filter_by(account_id=account.id).order_by(Message.uid).all()


def test_a_pop3_mailbox_downloaded_twice_without_duplicates(app, users, clean_dovecot):
    raw = rich_message()
    clean_dovecot.add_message("alice", raw)
    ids = clean_dovecot.add_messages("alice", 2, subject="Plain")
    account = make_account(users["alice"]["id"], clean_dovecot.pop3_port)
    seen = []

    first = pop3_job.download(account, progress=lambda done, total: seen.append((done, total)))
    assert first == {"protocol": "pop3", "on_server": 3, "new": 3, "downloaded": 3, "deleted": 0, "stored": 3}
    assert seen[0] == (0, 3) and seen[-1] == (3, 3)
    rows = stored(account)
    assert [m.uid for m in rows] == [1, 2, 3] and all(m.pop3_uidl for m in rows)
    assert len({m.pop3_uidl for m in rows}) == 3
    rich = next(m for m in rows if m.message_id == "<rich.1@example.org>")
    assert rich.subject == "Café über alles — ünïcode" and rich.from_name == "Zoë Müller"
    assert rich.from_addr == "zoe@example.org" and rich.preview.startswith("Grüße aus Köln.")
    assert rich.size == len(raw) and db.session.get(MessageBody, rich.id).raw == raw  # byte for byte
    assert {m.message_id for m in rows} == {"<rich.1@example.org>", *ids}
    folder = db.session.get(Folder, rows[0].folder_id)
    assert (folder.name, folder.role, folder.sync, folder.message_count) == ("INBOX", "inbox", True, 3)

    second = pop3_job.download(account)
    assert second["downloaded"] == 0 and second["on_server"] == 3 and second["stored"] == 3
    assert Message.query.count() == 3 and MessageBody.query.count() == 3
    assert on_server(clean_dovecot) == 3  # "leave messages on the server" is on by default
    log = LogEntry.query.filter_by(source="Incoming mail").order_by(LogEntry.id).all()
    assert [e.level for e in log] == ["info", "info"]
    assert log[0].message.startswith("New messages downloaded over POP3: 3 (")
    assert log[1].message.startswith("New messages downloaded over POP3: 0 (downloaded before: 3,")


def test_only_a_new_message_is_downloaded(app, users, clean_dovecot):
    clean_dovecot.add_messages("alice", 2, subject="Old")
    account = make_account(users["alice"]["id"], clean_dovecot.pop3_port)
    pop3_job.download(account)
    [new_id] = clean_dovecot.add_messages("alice", 1, subject="Fresh")
    result = pop3_job.download(account)
    assert result["new"] == 1 and result["downloaded"] == 1 and result["stored"] == 3
    rows = stored(account)
    assert [m.uid for m in rows] == [1, 2, 3] and rows[-1].message_id == new_id
    assert rows[-1].subject == "Fresh 1"


def test_leave_on_server_off_deletes_after_storing_and_keeps_the_rows(app, users, clean_dovecot):
    clean_dovecot.add_messages("alice", 3)
    account = make_account(users["alice"]["id"], clean_dovecot.pop3_port, pop3_leave_on_server=False)
    result = pop3_job.download(account)
    assert result["downloaded"] == 3 and result["deleted"] == 3
    assert on_server(clean_dovecot) == 0 and len(stored(account)) == 3
    clean_dovecot.add_messages("alice", 1, subject="Later")
    again = pop3_job.download(account)
    assert again == {"protocol": "pop3", "on_server": 1, "new": 1, "downloaded": 1, "deleted": 1, "stored": 4}
    assert on_server(clean_dovecot) == 0
    assert [m.uid for m in stored(account)] == [1, 2, 3, 4]  # deleted on the server, kept here


def test_a_connection_cut_mid_download_is_finished_by_the_next_run(
    app, users, clean_dovecot, proxy, monkeypatch
):
    monkeypatch.setattr(pop3_job, "BATCH_MESSAGES", 2)
    clean_dovecot.add_messages("alice", 5)
    account = make_account(users["alice"]["id"], proxy.port, pop3_leave_on_server=False)

    def cut_after_first_batch(done, total):
        if done == 2:
            proxy.cut()

    with pytest.raises(MailError) as info:
        pop3_job.download(account, progress=cut_after_first_batch)
    assert info.value.step in ("dele", "retr")
    # The first batch is stored whole (rows and bodies); nothing was deleted: no clean QUIT happened.
    assert [m.uid for m in stored(account)] == [1, 2] and MessageBody.query.count() == 2
    assert on_server(clean_dovecot) == 5
    failure = LogEntry.query.filter_by(source="Incoming mail", level="error").one()
    assert (
        "POP3 download failed" in failure.message and json.loads(failure.details)["counts"]["downloaded"] == 2
    )

    result = pop3_job.download(account)
    assert result["new"] == 3 and result["downloaded"] == 3 and result["deleted"] == 5
    rows = stored(account)
    assert [m.uid for m in rows] == [1, 2, 3, 4, 5] and len({m.pop3_uidl for m in rows}) == 5
    assert {m.subject for m in rows} == {f"Test message {i}" for i in range(1, 6)}
    assert on_server(clean_dovecot) == 0


def test_a_job_dying_mid_download_leaves_consistent_data(app, users, clean_dovecot, monkeypatch):
    monkeypatch.setattr(pop3_job, "BATCH_MESSAGES", 2)
    clean_dovecot.add_messages("alice", 5)
    account = make_account(users["alice"]["id"], clean_dovecot.pop3_port)

    def die(done, total):
        if done == 4:
            raise RuntimeError("worker stopped")

    with pytest.raises(RuntimeError):
        pop3_job.download(account, progress=die)
    assert len(stored(account)) == 4 and MessageBody.query.count() == 4
    result = pop3_job.download(account)
    assert result["downloaded"] == 1 and result["stored"] == 5
    assert len({m.pop3_uidl for m in stored(account)}) == 5


def test_a_server_without_uidl_is_refused(app, users, scripted):  # noqa: F811
    def pop3(conn):
        conn.sendall(b"+OK ready\r\n")
        for line in lines(conn):
            if line == "CAPA":
                conn.sendall(b"+OK\r\nUSER\r\nTOP\r\n.\r\n")
            elif line.startswith(("USER", "PASS")):
                conn.sendall(b"+OK\r\n")
            elif line == "QUIT":
                conn.sendall(b"+OK bye\r\n")
                return
            else:
                conn.sendall(b"-ERR unknown command\r\n")

    server = scripted(pop3)
    account = make_account(users["alice"]["id"], server.port)
    with pytest.raises(MailError) as info:
        pop3_job.download(account)
    assert info.value.error_class is ErrorClass.PROTOCOL and info.value.message == NO_UIDL
    assert Message.query.count() == 0
    entry = LogEntry.query.filter_by(source="Incoming mail").one()
    assert entry.level == "error" and "UIDL" in entry.message


def test_leave_on_server_is_set_by_the_api_and_the_edit_form(client, api, users):
    created = api["alice"].post(
        "/api/v1/accounts",
        json={
            "manual": {
                "imap": {"host": "mail.example.test", "port": 993, "security": "tls"},
                "smtp": {"host": "mail.example.test", "port": 465, "security": "tls"},
                "pop3": {"host": "mail.example.test", "port": 995, "security": "tls"},
            },
            "username": "alice@example.test",
            "password": "pw",
            "incoming_protocol": "pop3",
        },
    )
    assert created.status_code == 201 and created.get_json()["pop3_leave_on_server"] is True
    aid = created.get_json()["id"]
    bad = api["alice"].patch(f"/api/v1/accounts/{aid}", json={"pop3_leave_on_server": "sometimes"})
    assert bad.status_code == 422 and "pop3_leave_on_server" in bad.get_json()["fields"]
    ok = api["alice"].patch(f"/api/v1/accounts/{aid}", json={"pop3_leave_on_server": False})
    assert ok.status_code == 200 and ok.get_json()["pop3_leave_on_server"] is False

    login(client, "alice", "alice-console-pw")
    page = client.get(f"/mailboxes/{aid}/edit").get_data(as_text=True)
    assert 'name="pop3_leave_on_server"' in page and "Leave messages on the server" in page
    form = {
        "service": "other",
        "username": "alice@example.test",
        "imap_server": "mail.example.test:993",
        "imap_security": "tls",
        "smtp_server": "mail.example.test:465",
        "smtp_use_tls": "y",
        "pop3_server": "mail.example.test:995",
        "pop3_security": "tls",
        "incoming_protocol": "pop3",
        "active": "y",
        "smtp_requires_auth": "y",
        "pop3_leave_on_server": "y",
    }
    saved = client.post(f"/mailboxes/{aid}/edit", data=form)
    assert saved.status_code == 302 and db.session.get(Account, aid).pop3_leave_on_server is True
    form.pop("pop3_leave_on_server")
    assert client.post(f"/mailboxes/{aid}/edit", data=form).status_code == 302
    db.session.expire_all()
    assert db.session.get(Account, aid).pop3_leave_on_server is False


def test_the_database_refuses_a_second_row_for_the_same_uidl(app, users):
    """Beyond the one-download-per-mailbox lock: a duplicate UIDL cannot be stored at all."""
    import sqlalchemy.exc

    from tests.support.message_factory import make_account
    from webapp.models import Folder, Message

    account = make_account(users["alice"]["id"], "alice@pop.test")
    inbox = Folder(account_id=account.id, name="INBOX", display_name="INBOX", role="inbox", sync=True)
    db.session.add(inbox)
    db.session.flush()
    db.session.add(Message(account_id=account.id, folder_id=inbox.id, uid=1, pop3_uidl="u-1"))
    db.session.add(Message(account_id=account.id, folder_id=inbox.id, uid=2, pop3_uidl=None))
    db.session.add(Message(account_id=account.id, folder_id=inbox.id, uid=3, pop3_uidl=None))
    db.session.commit()  # rows without a UIDL (IMAP) are not constrained
    db.session.add(Message(account_id=account.id, folder_id=inbox.id, uid=4, pop3_uidl="u-1"))
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()
