"""The connection test's diagnosis speaks to its reader: the form's own labels and words, and for a
mailbox on an administrator's service "ask your administrator", never a setting the user cannot
change.  Real Dovecot and aiosmtpd behind every case."""

from __future__ import annotations

import re

import pytest

from tests.conftest import login
from tests.servers.net import free_ports
from webapp import accounts, service_catalog, settings_store
from webapp.extensions import db
from webapp.jobs import connection_test
from webapp.models import User
from webapp.queue import get_redis


@pytest.fixture
def ca_app(make_app, certs):
    app = make_app(MAIL_CA_FILE=str(certs.ca_cert))
    with app.app_context():
        from webapp.users import create_user

        settings_store.update({"allowed_internal_hosts": ["127.0.0.1"], "connection_timeout": 5})
        for name, admin in (("admin", True), ("alice", False)):
            create_user(name, f"{name}-console-pw", admin=admin)
        yield app
        db.session.remove()


def _alice() -> User:
    return User.query.filter_by(username="alice").one()


def _manual(imap, smtp, **extra):
    user = _alice()
    data = {
        "manual": {
            "imap": dict(zip(("host", "port", "security"), imap, strict=True)),
            "smtp": dict(zip(("host", "port", "security"), smtp, strict=True)),
        },
        "username": "alice",
        "email": "alice@example.com",
        "password": "secret-alice-pw",
        **extra,
    }
    return accounts.create_account(user, accounts.clean_account(user, data))


def _page_text(app, path):
    client = app.test_client()
    login(client, "alice", "alice-console-pw")
    html = client.get(path).get_data(as_text=True)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_field_to_correct_is_the_forms_label_and_protection_says_no(ca_app, dovecot):
    (closed,) = free_ports(1)
    account = _manual(("127.0.0.1", dovecot.imap_port, "tls"), ("127.0.0.1", closed, "tls"))
    summary = connection_test.test_account(account.id)
    imap, smtp = summary["checks"]["imap"]["error"], summary["checks"]["smtp"]["error"]
    assert (imap["class"], imap["field"], imap["field_label"]) == (
        "tls",
        "imap.security",
        "Connection protection",
    )
    assert 'Choose STARTTLS (or "No")' in imap["message"] and "None" not in imap["message"]
    assert (smtp["class"], smtp["field"], smtp["field_label"]) == ("refused", "smtp.port", "SMTP server")
    text = _page_text(ca_app, "/mailboxes/")
    assert "Field to correct: Connection protection" in text
    assert "Field to correct: SMTP server" in text
    assert "imap.security" not in text and "smtp.port" not in text
    assert "(or None)" not in text


def test_smtp_relay_without_auth_points_at_the_smtp_requires_authentication_box(
    ca_app, dovecot, smtp_factory
):
    relay = smtp_factory(offer_auth=False)
    account = _manual(("127.0.0.1", dovecot.imaps_port, "tls"), ("127.0.0.1", relay.smtps_port, "tls"))
    error = connection_test.test_account(account.id)["checks"]["smtp"]["error"]
    assert (error["class"], error["field"]) == ("auth_method", "smtp_requires_auth")
    assert error["field_label"] == "SMTP requires authentication"
    assert 'untick "SMTP requires authentication"' in error["hints"][0]
    assert "Field to correct: SMTP requires authentication" in _page_text(ca_app, "/mailboxes/")
    accounts.update_account(account, {"smtp_requires_auth": False})
    assert connection_test.test_account(account.id)["ok"]


def test_mailbox_on_a_service_is_told_to_ask_the_administrator_who_gets_the_fix(ca_app, dovecot, smtp_server):
    """The issue's case: STARTTLS set on the implicit-TLS port of an administrator's service."""
    service = service_catalog.create_service(
        service_catalog.clean_service(
            {
                "name": "Acme Mail",
                "imap": {"host": "127.0.0.1", "port": dovecot.imaps_port, "security": "starttls"},
                "smtp": {"host": "127.0.0.1", "port": smtp_server.smtps_port, "security": "tls"},
            }
        )
    )
    user = _alice()
    password = dovecot.users["alice"]
    data = {"service_id": service.id, "username": "alice", "email": "alice@example.com", "password": password}
    account = accounts.create_account(user, accounts.clean_account(user, data))

    mine = connection_test.test_account(account.id)["checks"]["imap"]["error"]
    assert mine["class"] == "tls" and mine["fix_by"] == "administrator"
    assert mine["field_label"] == ""
    assert mine["hints"] == [
        "Ask your administrator to check the IMAP connection protection (TLS or STARTTLS) and port of the "
        'mail service "Acme Mail". This is a setting of the service, not of your mailbox.'
    ]
    assert "choose" not in mine["message"].lower()
    text = _page_text(ca_app, "/mailboxes/")
    assert "Ask your administrator to check the IMAP connection protection" in text
    assert "Who can fix it: your administrator" in text
    assert "instead of STARTTLS" not in text and "Field to correct" not in text

    key = connection_test.stash_credentials(get_redis(), "alice", dovecot.users["alice"])
    admin = User.query.filter_by(username="admin").one()
    theirs = connection_test.test_service(service.id, key, admin.id)["checks"]["imap"]["error"]
    assert theirs["class"] == "tls" and theirs["fix_by"] == "administrator"
    assert "choose TLS instead of STARTTLS" in theirs["message"]
    assert theirs["field_label"] == "Connection protection"
