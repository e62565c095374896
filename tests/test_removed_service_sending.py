"""A mailbox whose service an administrator removed cannot send: not offered as From (even as the
main mailbox), refused by the API with 409 and a sentence; its scheduled messages are named to
the owner, who picks another From on each one's edit page and it then goes (real aiosmtpd)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import login
from tests.support.job_worker import run_burst
from tests.support.send_support import parsed, sending_mailbox
from webapp import accounts, service_catalog, settings_store
from webapp.extensions import db
from webapp.models import Account, Notification, OutgoingMessage, Service


@pytest.fixture
def app(make_app, certs):
    app = make_app(MAIL_CA_FILE=str(certs.ca_cert), SEND_RETRY_INTERVALS=[])
    with app.app_context():
        settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
        db.session.commit()
        yield app
        db.session.remove()


@pytest.fixture
def corp_mailbox(app, users) -> Account:
    """alice's main mailbox, on a corporate service the administrator will remove."""
    service = service_catalog.create_service(
        service_catalog.clean_service(
            {
                "name": "Corp",
                "imap": {"host": "imap.corp.example", "port": 993, "security": "tls"},
                "smtp": {"host": "smtp.corp.example", "port": 465, "security": "tls"},
            }
        )
    )
    user = users["alice"]["user"]
    data = {"service_id": service.id, "username": "alice@corp.example", "password": "pw", "is_main": True}
    return accounts.create_account(user, accounts.clean_account(user, data))


def _remove_service(name="Corp"):
    service_catalog.delete_service(Service.query.filter_by(name=name).one())


def _send(api_client, **fields):
    return api_client.post(
        "/api/v1/messages/send", json={"to": ["bob@example.org"], "subject": "Hi", "text": "Hi.", **fields}
    )


def test_api_refuses_a_mailbox_whose_service_was_removed_or_that_is_off(
    app, api, users, corp_mailbox, clean_dovecot, clean_smtp_server
):
    other = sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"], is_main=False)
    _remove_service()
    senders = [s["email"] for s in api["alice"].get("/api/v1/senders").get_json()]
    assert senders == ["alice@example.com"]

    for fields in ({"from": "alice@corp.example"}, {}):  # named, or the main mailbox by default
        refused = _send(api["alice"], **fields)
        assert refused.status_code == 409, refused.get_json()
        body = refused.get_json()
        assert 'mail service "Corp" was removed by an administrator' in body["error"]
        assert "choose another From" in body["fields"]["from"]
    assert OutgoingMessage.query.count() == 0  # nothing queued to fail later

    accounts.update_account(db.session.get(Account, other.id), {"active": False})
    off = _send(api["alice"], **{"from": "alice@example.com"})
    assert off.status_code == 409 and "is turned off" in off.get_json()["error"]
    accounts.update_account(db.session.get(Account, other.id), {"active": True})
    assert _send(api["alice"], **{"from": "alice@example.com"}).status_code == 202


def test_compose_page_does_not_offer_the_removed_main_mailbox(app, client, users, corp_mailbox):
    _remove_service()
    login(client, "alice", users["alice"]["password"])
    page = client.get("/compose/").get_data(as_text=True)
    assert "<select" in page or "no active mailbox" in page
    assert 'value="alice@corp.example"' not in page
    posted = client.post(
        "/compose/", data={"from": "alice@corp.example", "to": "bob@example.org", "body": "x"}
    )
    assert posted.status_code == 409
    assert "was removed by an administrator" in posted.get_data(as_text=True)


def test_removal_names_the_scheduled_messages_and_another_from_sends_them(
    app, api, client, users, corp_mailbox, clean_dovecot, clean_smtp_server
):
    other = sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"], is_main=False)
    send_at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    scheduled = _send(
        api["alice"], subject="Quarterly report", send_at=send_at, **{"from": "alice@corp.example"}
    )
    assert scheduled.status_code == 202
    outgoing_id = scheduled.get_json()["id"]

    _remove_service()
    (note,) = Notification.query.filter_by(user_id=users["alice"]["id"], kind="service_removed").all()
    assert '"Quarterly report" (scheduled for ' in note.message
    assert "can no longer be sent" in note.message

    login(client, "alice", users["alice"]["password"])
    home = client.get("/mailboxes/").get_data(as_text=True)
    assert f"/compose/outgoing/{outgoing_id}/edit" in home and "Choose another From for" in home
    edit = client.get(f"/compose/outgoing/{outgoing_id}/edit").get_data(as_text=True)
    assert 'id="stranded-from"' in edit and 'value="alice@corp.example"' not in edit
    status = client.get(f"/compose/outgoing/{outgoing_id}").get_data(as_text=True)
    assert 'id="stranded-from"' in status

    saved = client.post(
        f"/compose/outgoing/{outgoing_id}/edit",
        data={
            "from": "alice@example.com",
            "to": "bob@example.org",
            "subject": "Quarterly report",
            "body": "Hi.",
            "action": "later",
            "send_at": send_at,
        },
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)
    row = db.session.get(OutgoingMessage, outgoing_id)
    db.session.refresh(row)
    assert (row.account_id, row.from_addr) == (other.id, "alice@example.com")
    assert "Choose another From for" not in client.get("/mailboxes/").get_data(as_text=True)

    api["alice"].patch(f"/api/v1/outgoing/{outgoing_id}", json={"send_at": None})  # send it now
    run_burst()
    db.session.refresh(row)
    assert row.state == "sent", row.error
    (received,) = clean_smtp_server.messages
    assert str(parsed(received.data)["Subject"]) == "Quarterly report"
