"""A corporate service's own trust setting (a company CA, or "do not verify"), against the real
Dovecot and aiosmtpd, whose certificates come from the tests' private CA.  The app here has no
``MAIL_CA_FILE``: only the service's own setting can make the connection trusted."""

from __future__ import annotations

import pytest

from webapp import accounts, service_catalog
from webapp.extensions import db
from webapp.jobs import connection_test
from webapp.jobs.session import open_client
from webapp.models import Account, Service


def _service(dovecot, smtp, **trust) -> Service:
    return service_catalog.create_service(
        service_catalog.clean_service(
            {
                "name": "Corp private CA",
                "imap": {"host": "127.0.0.1", "port": dovecot.imaps_port, "security": "tls"},
                "smtp": {"host": "127.0.0.1", "port": smtp.smtps_port, "security": "tls"},
                **trust,
            }
        )
    )


def _mailbox(user, service, dovecot) -> Account:
    data = {
        "service_id": service.id,
        "username": "alice",
        "email": "alice@example.com",
        "password": dovecot.users["alice"],
    }
    return accounts.create_account(user, accounts.clean_account(user, data, actor=user))


def test_ca_certificate_is_validated_on_save_and_errors_name_the_field(api, certs, tmp_path):
    body = {
        "name": "Corp",
        "imap": {"host": "imap.corp.example", "port": 993, "security": "tls"},
        "smtp": {"host": "smtp.corp.example", "port": 465, "security": "tls"},
    }
    leaf = certs.valid.cert.read_text()
    key = certs.valid.key.read_text()
    for bad, words in (
        ("hello", "is not a PEM certificate"),
        (leaf, "is not a CA certificate"),
        (certs.ca_cert.read_text() + key, "private key"),
        (12, "PEM text"),
    ):
        response = api["admin"].post("/api/v1/services", json={**body, "ca_certificate": bad})
        assert response.status_code == 422, response.get_json()
        assert words in response.get_json()["fields"]["ca_certificate"]
        assert response.get_json()["fields"]["ca_certificate"].startswith("CA certificate: ")
    assert (
        api["admin"].post("/api/v1/services", json={**body, "verify_certificate": "maybe"}).status_code == 422
    )
    created = api["admin"].post(
        "/api/v1/services", json={**body, "ca_certificate": certs.ca_cert.read_text()}
    )
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["ca_certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert created.get_json()["verify_certificate"] is True
    gmail = next(s for s in api["admin"].get("/api/v1/services").get_json() if s["key"] == "gmail")
    refused = api["admin"].patch(f"/api/v1/services/{gmail['id']}", json={"verify_certificate": False})
    assert refused.status_code == 403


def test_private_ca_server_passes_only_with_the_service_trust(
    app, users, clean_dovecot, clean_smtp_server, certs
):
    assert not app.config.get("MAIL_CA_FILE")
    service = _service(clean_dovecot, clean_smtp_server)
    account = _mailbox(users["alice"]["user"], service, clean_dovecot)

    failed = connection_test.test_account(account.id)
    assert not failed["ok"]
    assert {c["error"]["class"] for c in failed["checks"].values()} == {"certificate"}

    service_catalog.update_service(
        service,
        service_catalog.clean_service({"ca_certificate": certs.ca_cert.read_text()}, existing=service),
    )
    passed = connection_test.test_account(account.id)
    assert passed["ok"], passed
    # Sync, folder listing, bodies and sending open their connections the same way.
    account = db.session.get(Account, account.id)
    for protocol in ("imap", "smtp"):
        with open_client(account, protocol) as client:
            assert client.info["certificate_verified"] is True

    service_catalog.update_service(
        service,
        service_catalog.clean_service(
            {"ca_certificate": None, "verify_certificate": False}, existing=service
        ),
    )
    unverified = connection_test.test_account(account.id)
    assert unverified["ok"], unverified
    with open_client(db.session.get(Account, account.id), "imap") as client:
        assert client.info["certificate_verified"] is False


def test_service_test_uses_the_service_trust(app, users, clean_dovecot, clean_smtp_server, certs):
    from webapp.queue import get_redis

    service = _service(clean_dovecot, clean_smtp_server, ca_certificate=certs.ca_cert.read_text())
    key = connection_test.stash_credentials(get_redis(), "alice", clean_dovecot.users["alice"])
    summary = connection_test.test_service(service.id, key, users["admin"]["id"])
    assert summary["ok"], summary


@pytest.mark.parametrize("verify", [True, False])
def test_mailbox_pages_warn_when_the_service_does_not_verify(client, users, certs, verify):
    from tests.conftest import login

    service = service_catalog.create_service(
        service_catalog.clean_service(
            {
                "name": "Corp",
                "imap": {"host": "imap.corp.example", "port": 993, "security": "tls"},
                "smtp": {"host": "smtp.corp.example", "port": 465, "security": "tls"},
                "verify_certificate": verify,
            }
        )
    )
    account = _mailbox(users["alice"]["user"], service, type("D", (), {"users": {"alice": "pw"}}))
    login(client, "alice", users["alice"]["password"])
    for url in ("/mailboxes/", f"/mailboxes/{account.id}/edit"):
        page = client.get(url).get_data(as_text=True)
        assert ("service-cert-warning" in page) is (not verify), url
