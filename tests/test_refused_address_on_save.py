"""A hand-typed server the connection test would refuse is refused when the mailbox is saved.

The address guard (connectors.addresses.AddressPolicy, configured by the administrator's
"allowed internal hosts") judges IP literals and ``localhost`` without resolving anything,
so the connect form and ``/api/v1/accounts`` name the field at once; names that need DNS
are left to the connection test, which connecting starts at once (``test`` in the answer).
"""

from __future__ import annotations

import html

import pytest

from tests.conftest import login
from webapp import settings_store
from webapp.extensions import db
from webapp.models import Account

PUBLIC = {"host": "mail.example.test", "port": 993, "security": "tls"}
SMTP = {"host": "mail.example.test", "port": 465, "security": "tls"}


def _manual(imap_host: str = "mail.example.test", smtp_host: str = "mail.example.test") -> dict:
    return {
        "manual": {"imap": {**PUBLIC, "host": imap_host}, "smtp": {**SMTP, "host": smtp_host}},
        "username": "alice@example.test",
        "password": "pw",
    }


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("localhost", "loopback"),
        ("10.1.2.3", "private"),
        ("169.254.169.254", "link-local"),
        ("[::1]", "loopback"),
    ],
)
def test_the_api_refuses_an_internal_literal_on_save_naming_the_field(api, host, reason):
    response = api["alice"].post("/api/v1/accounts", json=_manual(imap_host=host))
    assert response.status_code == 422, response.get_json()
    fields = response.get_json()["fields"]
    assert set(fields) == {"manual.imap.host"}
    assert f"a {reason} address" in fields["manual.imap.host"]
    assert "Email Service Settings → Network (\"Internal servers that manual details may reach\")" in fields["manual.imap.host"]
    assert Account.query.count() == 0


def test_an_address_the_administrator_allowed_is_saved_and_its_test_starts(api):
    settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
    db.session.commit()
    response = api["alice"].post("/api/v1/accounts", json=_manual(imap_host="127.0.0.1"))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["state"] == "new"
    assert set(body["test"]) == {"job_id", "status_url"}
    status = api["alice"].get(body["test"]["status_url"]).get_json()
    assert status["kind"] == "connection_test" and status["status"] == "queued"
    # Another internal address is still refused, here the SMTP server's.
    refused = api["alice"].post(
        "/api/v1/accounts", json={**_manual(smtp_host="192.168.1.1"), "username": "other@example.test"}
    )
    assert refused.status_code == 422 and set(refused.get_json()["fields"]) == {"manual.smtp.host"}


def test_a_patch_that_changes_the_servers_is_checked_too(api):
    created = api["alice"].post("/api/v1/accounts", json=_manual()).get_json()
    moved = {"imap": PUBLIC, "smtp": {**SMTP, "host": "localhost"}}
    response = api["alice"].patch(f"/api/v1/accounts/{created['id']}", json={"manual": moved})
    assert response.status_code == 422 and set(response.get_json()["fields"]) == {"manual.smtp.host"}
    assert db.session.get(Account, created["id"]).smtp_host == "mail.example.test"


def test_the_connect_form_refuses_a_loopback_server_under_its_field(client, users):
    login(client, "alice", "alice-console-pw")
    form = {
        "service": "other",
        "username": "alice@acme.test",
        "password": "p",
        "imap_server": "127.0.0.1:993",
        "imap_security": "tls",
        "smtp_server": "smtp.acme.test:465",
        "smtp_use_tls": "y",
        "active": "y",
    }
    refused = client.post("/mailboxes/connect", data=form)
    page = html.unescape(refused.get_data(as_text=True))
    assert refused.status_code == 200 and Account.query.count() == 0
    assert '<div class="error" data-field="imap_server">127.0.0.1 is a loopback address' in page

    settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
    db.session.commit()
    saved = client.post("/mailboxes/connect", data=form)
    account = Account.query.one()
    assert saved.status_code == 302
    # The list the person lands on follows the test connecting started.
    assert f"testing={account.id}" in saved.location and "job=" in saved.location
    listing = client.get(saved.location).get_data(as_text=True)
    assert f'data-account-id="{account.id}"' in listing and "data-test-status-url=" in listing
    assert "Not tested yet" in listing
