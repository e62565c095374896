"""OAuth2 apps (admin API and pages) and the consent flow against the local Authlib server."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import login
from tests.servers.oauth_server import CLIENT_SECRET
from tests.support.job_worker import run_burst
from tests.support.oauth_support import USER, connect_via_consent, custom_service, path_of
from tests.support.secret_search import database_text, redis_text
from webapp import settings_store
from webapp.extensions import db
from webapp.models import Account, Message, OAuthApp, Service
from webapp.queue import get_redis


@pytest.fixture
def oauth_app(make_app, certs):
    app = make_app(MAIL_CA_FILE=str(certs.ca_cert))
    with app.app_context():
        settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
        db.session.commit()
        yield app
        db.session.remove()


@pytest.fixture
def setup(oauth_app, users, oauth_server, clean_oauth_dovecot, clean_oauth_smtp_server):
    from tests.conftest import Api

    client = oauth_app.test_client()
    api = {name: Api(client, info["token"]) for name, info in users.items()}
    service_id = custom_service(api, oauth_server, clean_oauth_dovecot, clean_oauth_smtp_server)
    return {"client": client, "api": api, "service_id": service_id}


def _builtin(key: str) -> Service:
    from webapp.service_catalog import sync_builtin_services

    sync_builtin_services()
    return Service.query.filter_by(key=key).one()


def test_oauth_app_api_validates_and_never_answers_the_secret(app, api, users):
    gmail, office = _builtin("gmail"), _builtin("office365")
    got = api["admin"].get(f"/api/v1/services/{gmail.id}/oauth-app")
    assert got.status_code == 200
    body = got.get_json()
    assert body["configured"] is False and body["scopes"] == "https://mail.google.com/"
    assert body["redirect_uri"] == "http://localhost/mailboxes/oauth/callback"
    assert api["alice"].get(f"/api/v1/services/{gmail.id}/oauth-app").status_code == 403

    bad = api["admin"].put(
        f"/api/v1/services/{gmail.id}/oauth-app",
        json={"client_secret": "s", "tenant": "common", "token_url": "https://evil.example/t", "x": 1},
    )
    assert bad.status_code == 422
    assert set(bad.get_json()["fields"]) == {"client_id", "tenant", "token_url", "x"}

    secret = "gmail-client-secret-0123456789"
    ok = api["admin"].put(
        f"/api/v1/services/{gmail.id}/oauth-app",
        json={"client_id": "id.apps.example", "client_secret": secret},
    )
    assert ok.status_code == 200 and secret not in ok.get_data(as_text=True)
    assert ok.get_json()["has_client_secret"] is True and ok.get_json()["usable"] is True
    encrypted = OAuthApp.query.one().client_secret_encrypted
    # Empty secret on edit keeps the stored one.
    again = api["admin"].put(
        f"/api/v1/services/{gmail.id}/oauth-app", json={"client_id": "id2.apps.example", "client_secret": ""}
    )
    assert again.status_code == 200
    db.session.expire_all()
    assert OAuthApp.query.one().client_secret_encrypted == encrypted
    assert OAuthApp.query.one().client_id == "id2.apps.example"

    for tenant, status in (("organizations", 200), ("bad tenant!", 422), ("contoso.onmicrosoft.com", 200)):
        r = api["admin"].put(
            f"/api/v1/services/{office.id}/oauth-app", json={"client_id": "ms", "tenant": tenant}
        )
        assert r.status_code == status, (tenant, r.get_json())
        if status == 422:
            assert list(r.get_json()["fields"]) == ["tenant"]
    ms = api["admin"].get(f"/api/v1/services/{office.id}/oauth-app").get_json()
    assert ms["authorization_url"].startswith("https://login.microsoftonline.com/contoso.onmicrosoft.com/")
    assert "offline_access" in ms["scopes"]

    # A corporate service needs authorization and token URLs (https, or http on loopback only).
    corp = (
        api["admin"]
        .post(
            "/api/v1/services",
            json={
                "name": "Corp",
                "imap": {"host": "imap.corp.example", "port": 993, "security": "tls"},
                "smtp": {"host": "smtp.corp.example", "port": 465, "security": "tls"},
            },
        )
        .get_json()
    )
    r = api["admin"].put(
        f"/api/v1/services/{corp['id']}/oauth-app",
        json={"client_id": "c", "authorization_url": "http://login.corp.example/a"},
    )
    assert r.status_code == 422 and set(r.get_json()["fields"]) == {"authorization_url", "token_url"}

    # Neither the admin pages nor the email log show the secret.
    client = app.test_client()
    login(client, "admin", users["admin"]["password"])
    for url in ("/admin/email/oauth-apps", f"/admin/email/oauth-apps/{gmail.id}", "/admin/email/log"):
        page = client.get(url)
        assert page.status_code == 200 and secret not in page.get_data(as_text=True)
    assert "id2.apps.example" in client.get("/admin/email/oauth-apps").get_data(as_text=True)
    assert secret not in database_text()


def test_admin_page_form_sets_up_custom_oauth2_with_field_errors(app, users):
    client = app.test_client()
    login(client, "admin", users["admin"]["password"])
    from webapp.service_catalog import clean_service, create_service

    corp = create_service(
        clean_service(
            {
                "name": "Corp",
                "imap": {"host": "imap.corp.example", "port": 993, "security": "tls"},
                "smtp": {"host": "smtp.corp.example", "port": 465, "security": "tls"},
            }
        )
    )
    page = client.get(f"/admin/email/oauth-apps/{corp.id}")
    assert b'id="redirect-uri"' in page.data and b"http://localhost/mailboxes/oauth/callback" in page.data
    bad = client.post(f"/admin/email/oauth-apps/{corp.id}", data={"client_id": "", "token_url": "ftp://x"})
    assert bad.status_code == 422
    assert b'data-field="client_id"' in bad.data and b'data-field="token_url"' in bad.data
    ok = client.post(
        f"/admin/email/oauth-apps/{corp.id}",
        data={
            "client_id": "corp-client",
            "client_secret": "corp-secret-xyz",
            "authorization_url": "https://login.corp.example/authorize",
            "token_url": "https://login.corp.example/token",
            "enabled": "y",
        },
    )
    assert ok.status_code == 302
    listing = client.get("/admin/email/oauth-apps").get_data(as_text=True)
    assert "corp-client" in listing and "Custom OAuth2" in listing and "corp-secret-xyz" not in listing


def test_consent_flow_connects_a_mailbox_that_tests_and_syncs(
    setup, users, oauth_server, clean_oauth_dovecot, clean_oauth_smtp_server
):
    client = setup["client"]
    clean_oauth_dovecot.add_message(USER, b"Subject: over oauth\r\nFrom: a@example.test\r\n\r\nhello\r\n")
    login(client, "alice", users["alice"]["password"])
    start = client.get(f"/mailboxes/oauth/start?service={setup['service_id']}")
    query = parse_qs(urlsplit(start.headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"] and query["state"]
    assert query["redirect_uri"] == ["http://localhost/mailboxes/oauth/callback"]
    back = oauth_server.consent(start.headers["Location"], USER)
    done = client.get(path_of(back))
    assert done.status_code == 302
    account = Account.query.filter_by(email=USER).one()
    assert account.auth_method == "oauth2" and account.password_encrypted is None
    assert account.oauth_refresh_token_encrypted and account.oauth_expires_at
    assert oauth_server.token_requests["authorization_code"] == 1
    token = oauth_server.tokens_for(USER)[-1]
    text = database_text() + redis_text(get_redis())
    assert token.access_token not in text and token.refresh_token not in text and CLIENT_SECRET not in text

    run_burst(setup["client"].application)  # the connection test enqueued by the callback
    db.session.expire_all()
    account = db.session.get(Account, account.id)
    assert account.state == "connected", account.last_check
    assert ("XOAUTH2", USER, True) in clean_oauth_smtp_server.auth_attempts

    sync = setup["api"]["alice"].post(f"/api/v1/accounts/{account.id}/sync")
    assert sync.status_code == 202
    run_burst(setup["client"].application)
    db.session.expire_all()
    subjects = [m.subject for m in Message.query.filter_by(account_id=account.id)]
    assert subjects == ["over oauth"]
    assert oauth_server.token_requests["refresh_token"] == 0  # the token was fresh: no refresh


def test_state_mismatch_and_foreign_states_are_refused(setup, users, oauth_server, oauth_app):
    client = setup["client"]
    login(client, "alice", users["alice"]["password"])
    start = client.get(f"/mailboxes/oauth/start?service={setup['service_id']}")
    back = oauth_server.consent(start.headers["Location"], USER)
    tampered = path_of(back).replace("state=", "state=x")
    refused = client.get(tampered)
    assert refused.status_code == 400 and b"state mismatch" in refused.data

    # The right state from another browser (even logged in as the same user) is refused too.
    other = oauth_app.test_client()
    login(other, "alice", users["alice"]["password"])
    assert other.get(path_of(back)).status_code == 400
    # …and once used or refused, a state is gone: the original browser cannot reuse it.
    assert client.get(path_of(back)).status_code == 400
    assert Account.query.count() == 0
    assert oauth_server.token_requests["authorization_code"] == 0

    # A declined consent is a clear message, nothing created.
    start = client.get(f"/mailboxes/oauth/start?service={setup['service_id']}")
    back = oauth_server.consent(start.headers["Location"], USER, allow=False)
    declined = client.get(path_of(back))
    assert declined.status_code == 400 and b"declined" in declined.data
    assert Account.query.count() == 0


def test_api_start_and_sign_in_again_update_the_same_mailbox(setup, users, oauth_server):
    client, api = setup["client"], setup["api"]
    r = api["alice"].post("/api/v1/accounts/oauth/start", json={"service_id": "x"})
    assert r.status_code == 422 and "service_id" in r.get_json()["fields"]
    r = api["alice"].post("/api/v1/accounts/oauth/start", json={"service_id": setup["service_id"]})
    assert r.status_code == 200
    back = oauth_server.consent(r.get_json()["authorization_url"], USER)
    # bob's browser cannot finish alice's flow.
    login(client, "bob", users["bob"]["password"])
    assert client.get(path_of(back)).status_code == 400
    client.post("/logout")

    r = api["alice"].post("/api/v1/accounts/oauth/start", json={"service_id": setup["service_id"]})
    back = oauth_server.consent(r.get_json()["authorization_url"], USER)
    login(client, "alice", users["alice"]["password"])
    assert client.get(path_of(back)).status_code == 302
    account = Account.query.filter_by(email=USER).one()
    assert api["alice"].get(f"/api/v1/accounts/{account.id}").get_json()["auth_method"] == "oauth2"
    first_refresh = account.oauth_refresh_token_encrypted

    account.state = "needs_sign_in"
    db.session.commit()
    row = client.get("/mailboxes/").get_data(as_text=True)
    assert "Sign in again" in row and "Needs to sign in again" in row
    again = connect_via_consent(client, users, oauth_server, setup["service_id"])
    assert again.id == account.id and again.state == "new"
    assert again.oauth_refresh_token_encrypted != first_refresh
    assert Account.query.count() == 1


def test_connect_form_offers_oauth2_and_redirects(setup, users):
    client = setup["client"]
    login(client, "alice", users["alice"]["password"])
    page = client.get("/mailboxes/connect").get_data(as_text=True)
    assert 'id="auth_method"' in page and '"oauth2": true' in page.replace('"oauth2":true', '"oauth2": true')
    r = client.post("/mailboxes/connect", data={"service": str(setup["service_id"]), "auth_method": "oauth2"})
    assert r.status_code == 302 and "/mailboxes/oauth/start?service=" in r.headers["Location"]
    # Gmail's hints (app password without OAuth2) reach the page next to the method choice.
    assert "app password" in page and "not on 443" in page
