"""In Chromium: an administrator sets up a Custom OAuth2 service on its page; a user connects a
mailbox with OAuth2 through the local provider's consent page, and a real ``mailroom worker``
tests and syncs it (oauth Dovecot checks the token at the provider, SMTP takes XOAUTH2)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.servers.oauth_server import CLIENT_ID, CLIENT_SECRET
from tests.support.oauth_support import USER

from .conftest import USERS, login, serve

pytestmark = pytest.mark.browser


@pytest.fixture
def live(make_app, certs, oauth_server, clean_oauth_dovecot, clean_oauth_smtp_server, tmp_path):
    from webapp import settings_store
    from webapp.extensions import db
    from webapp.service_catalog import clean_service, create_service
    from webapp.users import create_user

    app = make_app(WTF_CSRF_ENABLED=True, MAIL_CA_FILE=str(certs.ca_cert))
    users = {}
    with app.app_context():
        settings_store.update({"allowed_internal_hosts": ["127.0.0.1"]})
        for name, admin in USERS:
            users[name] = {"id": create_user(name, f"{name}-console-pw", admin=admin).id}
        service = create_service(
            clean_service(
                {
                    "name": "Corp OAuth",
                    "imap": {"host": "127.0.0.1", "port": clean_oauth_dovecot.imaps_port, "security": "tls"},
                    "smtp": {
                        "host": "127.0.0.1",
                        "port": clean_oauth_smtp_server.smtps_port,
                        "security": "tls",
                    },
                }
            )
        )
        users["service_id"] = service.id
        db.session.commit()
        db.session.remove()
    with serve(app, users, worker_dir=tmp_path) as live:
        yield live


def test_admin_sets_up_custom_oauth2_and_user_connects_through_consent(
    live, new_page, oauth_server, clean_oauth_dovecot
):
    clean_oauth_dovecot.add_message(USER, b"Subject: hello over oauth\r\nFrom: x@example.test\r\n\r\nhi\r\n")
    service_id = live.users["service_id"]

    admin = login(new_page(), live, "admin")
    admin.click("#nav-oauth-apps")
    row = admin.locator(f'#oauth-apps tr[data-service-id="{service_id}"]')
    expect(row.locator(".oauth-status")).to_have_text("Not set up")
    row.get_by_role("link", name="Set up").click()
    expect(admin.locator("#redirect-uri")).to_have_value(live.url + "/mailboxes/oauth/callback")
    admin.fill("#client_id", CLIENT_ID)
    admin.fill("#client_secret", CLIENT_SECRET)
    admin.fill("#authorization_url", oauth_server.authorization_url)
    admin.fill("#token_url", "not a url")
    admin.fill("#userinfo_url", oauth_server.userinfo_url)
    admin.fill("#scopes", "mail offline_access")
    admin.click("button[type=submit]:has-text('Save')")
    expect(admin.locator('[data-field="token_url"]')).to_be_visible()
    admin.fill("#token_url", oauth_server.token_url)
    admin.fill("#client_secret", CLIENT_SECRET)
    admin.click("button[type=submit]:has-text('Save')")
    expect(row.locator(".oauth-status")).to_have_text("Offered")
    assert CLIENT_SECRET not in admin.content()

    page = login(new_page(), live, "alice")
    page.goto(live.url + "/mailboxes/connect")
    page.select_option("#service", str(service_id))
    expect(page.locator("#auth_method")).to_be_visible()
    page.select_option("#auth_method", "oauth2")
    expect(page.locator("#password")).to_be_hidden()
    page.click("button[type=submit]:has-text('Connect')")
    page.wait_for_url(lambda url: url.startswith(oauth_server.base_url))
    page.select_option("#user", USER)
    page.click("#allow")
    page.wait_for_url(live.url + "/mailboxes/")
    expect(page.locator(".flash-success")).to_contain_text("connected with OAuth2")
    mailbox = page.locator("tbody.mailbox", has_text=USER)
    for _ in range(60):  # the worker's connection test
        if mailbox.locator(".state").get_attribute("data-state") == "connected":
            break
        page.wait_for_timeout(250)
        page.reload()
    expect(mailbox.locator(".state")).to_have_attribute("data-state", "connected")
    mailbox.get_by_role("button", name="Sync now").click()
    expect(mailbox.locator(".last-sync")).to_be_visible(timeout=30_000)
    from webapp.extensions import db
    from webapp.models import Account, Message

    with live.app.app_context():
        account = Account.query.filter_by(email=USER).one()
        assert account.auth_method == "oauth2" and account.password_encrypted is None
        assert [m.subject for m in Message.query.filter_by(account_id=account.id)] == ["hello over oauth"]
        db.session.remove()
    assert oauth_server.token_requests["authorization_code"] == 1
