"""In Chromium: an administrator makes a corporate server whose certificate comes from a private CA
pass its Test by pasting that CA into the service (no MAIL_CA_FILE), or by "do not verify",
which then shows as a warning on the service and on its mailboxes.  A real ``mailroom worker``
runs the tests against the real Dovecot and aiosmtpd."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import USERS, login, serve, shot

pytestmark = pytest.mark.browser

JOB_MS = 30_000


@pytest.fixture
def live(make_app, clean_dovecot, clean_smtp_server, tmp_path):
    from webapp import service_catalog
    from webapp.extensions import db
    from webapp.users import create_user

    app = make_app(WTF_CSRF_ENABLED=True)  # no MAIL_CA_FILE: only the service's own trust helps
    users = {}
    with app.app_context():
        for name, admin in USERS:
            users[name] = {"id": create_user(name, f"{name}-console-pw", admin=admin).id}
        service = service_catalog.create_service(
            service_catalog.clean_service(
                {
                    "name": "Corp Private CA",
                    "imap": {"host": "127.0.0.1", "port": clean_dovecot.imaps_port, "security": "tls"},
                    "smtp": {"host": "127.0.0.1", "port": clean_smtp_server.smtps_port, "security": "tls"},
                }
            )
        )
        users["service_id"] = service.id
        db.session.remove()
    with serve(app, users, worker_dir=tmp_path) as live:
        yield live


def add_dovecot_mailbox(live, password):
    from webapp import accounts
    from webapp.extensions import db
    from webapp.models import User

    with live.app.app_context():
        user = db.session.get(User, live.users["alice"]["id"])
        data = {"service_id": live.users["service_id"], "username": "alice", "password": password}
        accounts.create_account(user, accounts.clean_account(user, {**data, "email": "alice@example.com"}))
        db.session.remove()


def run_service_test(admin, live, password):
    admin.goto(live.url + "/admin/email/services")
    admin.locator('#services tr[data-service-name="Corp Private CA"] [data-action="test-service"]').click()
    admin.fill("#test-username", "alice")
    admin.fill("#test-password", password)
    admin.click("#test-form button[value=run]")
    output = admin.locator("#test-dialog .test-output .check")
    expect(output).to_be_visible(timeout=JOB_MS)
    return output


def save_trust(admin, live, ca_text="", skip=False):
    admin.goto(live.url + f"/admin/email/services/{live.users['service_id']}/edit")
    admin.fill("#ca_certificate", ca_text)
    admin.set_checked("#skip_certificate_verification", skip)
    admin.click("button[type=submit]:has-text('Save')")


def test_private_ca_pasted_into_the_service_makes_its_test_pass(live, new_page, clean_dovecot, certs):
    password = clean_dovecot.users["alice"]
    add_dovecot_mailbox(live, password)
    admin = login(new_page(), live, "admin")

    failed = run_service_test(admin, live, password)
    expect(failed).to_have_class("check check-failed")
    expect(failed.locator('.diagnosis[data-error-class="certificate"]').first).to_be_visible()
    # The administrator's fix is the service's own trust setting, named by its label.
    expect(failed.locator(".hint").first).to_contain_text('"CA certificate"')

    save_trust(admin, live, certs.valid.cert.read_text())  # a server's certificate, not a CA
    expect(admin.locator('[data-field="ca_certificate"]')).to_contain_text("is not a CA certificate")
    save_trust(admin, live, certs.ca_cert.read_text())
    expect(admin.locator(".flash-success")).to_contain_text("saved")
    expect(admin.locator('#services tr[data-service-name="Corp Private CA"] .own-ca')).to_be_visible()
    passed = run_service_test(admin, live, password)
    expect(passed).to_have_class("check check-ok")
    shot(admin, "service-trust-ca")

    save_trust(admin, live, "", skip=True)
    row = admin.locator('#services tr[data-service-name="Corp Private CA"]')
    expect(row.locator(".cert-not-verified")).to_be_visible()
    admin.goto(live.url + f"/admin/email/services/{live.users['service_id']}/edit")
    expect(admin.locator("#service-cert-warning")).to_contain_text("not verified")
    expect(run_service_test(admin, live, password)).to_have_class("check check-ok")

    alice = login(new_page(), live, "alice")
    expect(alice.locator(".service-cert-warning")).to_be_visible()
    alice.locator('[data-action="test"]').click()
    expect(alice.locator(".check-result .check")).to_have_class("check check-ok", timeout=JOB_MS)
    shot(alice, "service-trust-mailbox-warning")
