"""A mailbox whose service an administrator removed can be connected again by typing its servers
("Other") from that mailbox's page, where the administrator allows manual entry; where they do
not, the page offers only another service or removal.  Real Dovecot and aiosmtpd, the test job
on a real RQ worker.
"""

from __future__ import annotations

from tests.conftest import login
from tests.support.job_worker import run_burst
from tests.test_connection_jobs import PASSWORD, japp, people  # noqa: F401 (fixtures)
from webapp import service_catalog, settings_store
from webapp.extensions import db
from webapp.models import Account


def _corp_mailbox(people, dovecot, smtp_server) -> int:  # noqa: F811
    """Alice's mailbox on a company server that points somewhere else by now (it is removed below)."""
    service = service_catalog.create_service(
        service_catalog.clean_service(
            {
                "name": "Corp",
                "imap": {"host": "imap.corp.example", "port": 993, "security": "tls"},
                "smtp": {"host": "smtp.corp.example", "port": 465, "security": "tls"},
            }
        )
    )
    body = {"service_id": service.id, "username": "alice", "password": PASSWORD, "email": "alice@example.com"}
    response = people["alice"].post("/api/v1/accounts", json=body)
    assert response.status_code == 201, response.get_json()
    service_catalog.delete_service(service)
    return response.get_json()["id"]


def test_a_mailbox_that_lost_its_service_is_reconnected_by_typing_its_servers(
    japp,  # noqa: F811
    people,  # noqa: F811
    dovecot,
    smtp_server,
):
    account_id = _corp_mailbox(people, dovecot, smtp_server)
    client = japp.test_client()
    login(client, "alice", "alice-console-pw")
    page = client.get(f"/mailboxes/{account_id}/edit").get_data(as_text=True)
    assert 'id="reconnect-form"' in page
    assert f'href="/mailboxes/{account_id}/edit?other=1"' in page

    form_page = client.get(f"/mailboxes/{account_id}/edit?other=1").get_data(as_text=True)
    assert 'id="connect-form"' in form_page and '<option selected value="other">' in form_page
    saved = client.post(
        f"/mailboxes/{account_id}/edit?other=1",
        data={
            "service": "other",
            "username": "alice",
            "password": "",  # empty keeps the saved one
            "email": "alice@example.com",
            "description": "alice",
            "imap_server": f"127.0.0.1:{dovecot.imaps_port}",
            "imap_security": "tls",
            "smtp_server": f"ssl://127.0.0.1:{smtp_server.smtps_port}",
            "smtp_use_tls": "y",
            "active": "y",
            "smtp_requires_auth": "y",
            "incoming_protocol": "imap",
            "signature_mode": "none",
            "is_main": "y",
        },
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert f"testing={account_id}" in saved.location
    run_burst(japp)
    db.session.expire_all()
    account = db.session.get(Account, account_id)
    assert account.manual and not account.service_removed
    assert account.state == "connected", account.last_check
    assert (account.imap_host, account.imap_port) == ("127.0.0.1", dovecot.imaps_port)


def test_without_manual_entry_the_page_offers_no_other_path(japp, people, dovecot, smtp_server):  # noqa: F811
    account_id = _corp_mailbox(people, dovecot, smtp_server)
    settings_store.put("allow_manual_entry", False)
    db.session.commit()
    client = japp.test_client()
    login(client, "alice", "alice-console-pw")
    page = client.get(f"/mailboxes/{account_id}/edit").get_data(as_text=True)
    assert 'id="reconnect-form"' in page and "other=1" not in page
    typed = client.get(f"/mailboxes/{account_id}/edit?other=1").get_data(as_text=True)
    assert 'id="reconnect-form"' in typed and 'id="connect-form"' not in typed
