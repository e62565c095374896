"""The send job finds the Sent folder itself when a mailbox is used right after connecting.

Real Dovecot (with and without RFC 6154 special-use), real aiosmtpd, a real RQ worker.
"""

from __future__ import annotations

import pytest

from tests.support.job_worker import run_burst
from tests.support.send_support import sending_mailbox, server_message_ids
from webapp.extensions import db
from webapp.models import Folder, LogEntry, OutgoingMessage

pytestmark = pytest.mark.usefixtures("fresh_plugins")


@pytest.fixture
def app(send_app):
    return send_app


def _send(api_client, subject: str) -> int:
    response = api_client.post(
        "/api/v1/messages/send", json={"to": ["bob@example.org"], "subject": subject, "text": "Hi."}
    )
    assert response.status_code == 202, response.json
    return response.json["id"]


def _fresh_mailbox(server, smtp, owner):
    """A mailbox just connected: no folder rows at all (no refresh, no sync yet)."""
    account = sending_mailbox(server, smtp, owner, sent_folder=False)
    Folder.query.filter_by(account_id=account.id).delete()
    db.session.commit()
    return account


def test_send_right_after_connecting_finds_maps_and_fills_the_special_use_sent_folder(
    app, api, users, clean_dovecot, clean_smtp_server
):
    account = _fresh_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"])
    assert Folder.query.filter_by(account_id=account.id).count() == 0
    row_id = _send(api["alice"], "First words")
    run_burst()

    db.session.expire_all()
    row = db.session.get(OutgoingMessage, row_id)
    assert row.state == "sent" and row.error is None
    assert row.sent_copy_saved_at is not None
    # The copy is in Dovecot's \Sent folder, seen, once.
    assert server_message_ids(clean_dovecot, "Sent") == [(row.message_id, (rb"\Seen",))]
    # The folders were stored through the folder listing's rules: \Sent holds the role.
    sent = Folder.query.filter_by(account_id=account.id, role="sent").one()
    assert sent.name == "Sent" and sent.special_use == "\\Sent"
    inbox = Folder.query.filter_by(account_id=account.id, name="INBOX").one()
    assert inbox.role == "inbox" and inbox.sync
    assert Folder.query.filter_by(account_id=account.id, role="trash").one().name == "Trash"
    found = LogEntry.query.filter(LogEntry.account_id == account.id, LogEntry.message.like("%found%")).one()
    assert '"Sent" was found on the server (\\Sent)' in found.message
    # A second send uses the mapping without listing again.
    second = _send(api["alice"], "Second words")
    run_burst()
    db.session.expire_all()
    assert db.session.get(OutgoingMessage, second).sent_copy_saved_at is not None
    assert len(server_message_ids(clean_dovecot, "Sent")) == 2


@pytest.mark.parametrize("sent_name", ["Wysłane", "INBOX.Sent"])
def test_without_special_use_a_common_sent_name_is_found(
    app, api, users, dovecot_factory, clean_smtp_server, sent_name
):
    server = dovecot_factory(ssl=False, special_use={})
    server.create_folder("alice", "Archive")
    server.create_folder("alice", sent_name)
    account = _fresh_mailbox(server, clean_smtp_server, users["alice"]["user"])
    row_id = _send(api["alice"], "Cześć")
    run_burst()

    db.session.expire_all()
    row = db.session.get(OutgoingMessage, row_id)
    assert row.state == "sent" and row.sent_copy_saved_at is not None
    sent = Folder.query.filter_by(account_id=account.id, role="sent").one()
    assert sent.display_name == sent_name and sent.special_use is None
    with_ids = server_message_ids(server, sent.display_name)
    assert with_ids == [(row.message_id, (rb"\Seen",))]


def test_a_sent_folder_the_user_unmapped_stays_unmapped(app, api, users, clean_dovecot, clean_smtp_server):
    """The user chose "no Sent folder" (the folder is known, without the role): no copy, a warning."""
    account = sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"], sent_folder=False)
    db.session.add(Folder(account_id=account.id, name="Sent", display_name="Sent", role=None))
    db.session.commit()
    row_id = _send(api["alice"], "Not kept")
    run_burst()
    db.session.expire_all()
    row = db.session.get(OutgoingMessage, row_id)
    assert row.state == "sent" and row.sent_copy_saved_at is None
    assert Folder.query.filter_by(account_id=account.id, role="sent").count() == 0
    assert server_message_ids(clean_dovecot, "Sent") == []
    warning = LogEntry.query.filter_by(account_id=account.id, level="warning").one()
    assert "No Sent folder" in warning.message
