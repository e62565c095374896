"""Helpers for the OAuth2 tests: a corporate "Custom OAuth2" service on the local OAuth2 server,
oauth Dovecot and XOAUTH2 SMTP, and a mailbox connected through the real consent flow."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.conftest import login
from tests.servers.oauth_server import CLIENT_ID, CLIENT_SECRET
from webapp.extensions import db
from webapp.models import Account

USER = "alice@example.test"


def custom_service(api, oauth_server, dovecot, smtp) -> int:
    """An admin sets up a corporate service and its Custom OAuth2 app through the API; its id."""
    created = api["admin"].post(
        "/api/v1/services",
        json={
            "name": "Corp OAuth",
            "imap": {"host": "127.0.0.1", "port": dovecot.imaps_port, "security": "tls"},
            "smtp": {"host": "127.0.0.1", "port": smtp.smtps_port, "security": "tls"},
        },
    )
    assert created.status_code == 201, created.get_json()
    service_id = created.get_json()["id"]
    put = api["admin"].put(
        f"/api/v1/services/{service_id}/oauth-app",
        json={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "authorization_url": oauth_server.authorization_url,
            "token_url": oauth_server.token_url,
            "userinfo_url": oauth_server.userinfo_url,
            "scopes": "mail offline_access",
        },
    )
    assert put.status_code == 200, put.get_json()
    return service_id


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def connect_via_consent(client, users, oauth_server, service_id: int, user: str = USER) -> Account:
    """alice signs in to the console, starts the flow, consents at the server, comes back."""
    login(client, "alice", users["alice"]["password"])
    start = client.get(f"/mailboxes/oauth/start?service={service_id}")
    assert start.status_code == 302, start.data
    back = oauth_server.consent(start.headers["Location"], user)
    done = client.get(path_of(back))
    assert done.status_code == 302 and done.headers["Location"].endswith("/mailboxes/"), done.data
    db.session.expire_all()
    return Account.query.filter_by(user_id=users["alice"]["id"], email=user).one()
