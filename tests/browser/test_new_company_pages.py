"""What a new company met in Chromium (30 Nov 2026): the pages' behaviour, not their words."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import USERS, login, serve
from .helpers import add_corporate_server

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("close", ["button", "Escape"])
def test_the_service_test_dialog_forgets_the_password_when_closed(live_server, page, close):
    """The password typed to test one server stayed in the dialog: testing the next server sent it there."""
    add_corporate_server(live_server, "Acme Mail")
    add_corporate_server(live_server, "Other Branch", imap=("imap.branch.example", 993, "tls"))
    login(page, live_server, "admin")
    page.goto(live_server.url + "/admin/email/services")
    page.locator('tr[data-service-name="Acme Mail"] [data-action="test-service"]').click()
    dialog = page.locator("#test-dialog")
    expect(dialog).to_be_visible()
    page.fill("#test-username", "alice")
    page.fill("#test-password", "alice-mail-secret")
    if close == "button":
        dialog.locator(".close-dialog").click()
    else:
        page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.locator('tr[data-service-name="Other Branch"] [data-action="test-service"]').click()
    expect(dialog).to_be_visible()
    expect(dialog.locator(".service-name")).to_have_text("Other Branch")
    expect(page.locator("#test-password")).to_have_value("")
    expect(page.locator("#test-username")).to_have_value(
        "alice"
    )  # the login is no secret: kept to retype less


JOB_MS = 60_000  # a job's result on a loaded machine: worker pick-up plus the connection attempts


@pytest.fixture
def live_with_worker(make_app, certs, tmp_path):
    from webapp import settings_store
    from webapp.extensions import db
    from webapp.users import create_user

    app = make_app(WTF_CSRF_ENABLED=True, MAIL_CA_FILE=str(certs.ca_cert))
    users = {}
    with app.app_context():
        settings_store.update({"allowed_internal_hosts": ["127.0.0.1"], "connection_timeout": 5})
        for name, admin in USERS:
            users[name] = {"id": create_user(name, f"{name}-console-pw", admin=admin).id}
        db.session.commit()
        db.session.remove()
    with serve(app, users, worker_dir=tmp_path) as live:
        yield live


def _connect_form(page, live, dovecot, smtp_server, password):
    page.goto(live.url + "/mailboxes/connect")
    page.select_option("#service", "other")
    page.fill("#imap_server", f"127.0.0.1:{dovecot.imaps_port}")
    page.select_option("#imap_security", "tls")
    page.fill("#smtp_server", f"ssl://127.0.0.1:{smtp_server.smtps_port}")
    page.fill("#username", "alice")
    page.fill("#password", password)
    page.fill("#email", "alice@example.com")
    page.click("main button[type=submit]:has-text('Connect')")


def test_the_saved_banner_turns_into_the_failure_when_the_connection_test_fails(
    live_with_worker, page, dovecot, smtp_server
):
    """Connecting with a wrong password: the green "saved; testing its connection now" stayed green
    above the row that said "Authentication error"."""
    live = live_with_worker
    login(page, live, "alice")
    _connect_form(page, live, dovecot, smtp_server, "not-the-password")
    banner = page.locator(".flash").first
    expect(banner).to_have_class(re.compile(r"\bflash-success\b"))
    expect(banner).to_contain_text("saved; testing its connection now")
    row = page.locator("tbody.mailbox").first
    expect(row.locator(".field-name").first).to_have_text("Password", timeout=JOB_MS)
    expect(banner).to_have_class(re.compile(r"\bflash-error\b"))
    expect(banner).to_have_text("Saved, but the connection test failed: the row below says what to correct.")

    # The right password: the test passes and the banner stays the green "saved".
    page.locator("tbody.mailbox a:has-text('Edit')").first.click()
    page.fill("#password", dovecot.users["alice"])
    page.click("main button[type=submit]:has-text('Save')")
    row = page.locator("tbody.mailbox").first
    expect(row.locator("[data-state]")).to_have_text("Connected", timeout=JOB_MS)
    expect(page.locator(".flash").first).to_have_class(re.compile(r"\bflash-success\b"))
    expect(page.locator(".flash-error")).to_have_count(0)
