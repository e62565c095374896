"""The administrator's Email Service Settings, driven through Chromium, and what users see of it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import login, shot
from .helpers import add_corporate_server, add_mailbox, corporate_services, issue_token, mailboxes_of

pytestmark = pytest.mark.browser


def service_row(page, name):
    return page.locator(f'#services tr[data-service-name="{name}"]')


def service_options(page):
    return page.locator("#service option")


def fill_server_form(page, name=None, imap=None, imap_security=None, smtp=None, smtp_tls=None):
    if name is not None:
        page.fill("#name", name)
    if imap is not None:
        page.fill("#imap_server", imap)
    if imap_security is not None:
        page.select_option("#imap_security", imap_security)
    if smtp is not None:
        page.fill("#smtp_server", smtp)
    if smtp_tls is not None:
        page.set_checked("#smtp_use_tls", smtp_tls)
    page.click("button[type=submit]:has-text('Save')")


def test_hidden_server_and_manual_entry_disappear_from_the_users_connect_form(live_server, new_page):
    """The issue's scenario: add a corporate server, hide it, untick manual entry; the user's form follows."""
    admin = login(new_page(), live_server, "admin")
    admin.goto(live_server.url + "/admin/email/services")
    admin.click("#add-corporate-server")
    fill_server_form(admin, "Acme Mail", "imap.acme.example:993", "tls", "smtp.acme.example:587", True)
    expect(admin).to_have_url(re.compile(r"/admin/email/services$"))
    expect(admin.locator(".flash-success")).to_contain_text('Corporate server "Acme Mail" added.')
    row = service_row(admin, "Acme Mail")
    expect(row).to_contain_text("imap.acme.example:993")
    expect(row).to_contain_text("smtp.acme.example:587")
    expect(row.locator("td").nth(1)).to_have_text("Corporate")
    shot(admin, "services")

    alice = login(new_page(), live_server, "alice")
    alice.click("#connect-mailbox")
    expect(service_options(alice).filter(has_text="Acme Mail")).to_have_count(1)
    expect(alice.locator('#service option[value="other"]')).to_have_count(1)

    row.locator('[data-action="toggle-hidden"]').click()
    expect(admin.locator(".flash-success")).to_contain_text(
        '"Acme Mail" is now hidden from the connect form.'
    )
    expect(service_row(admin, "Acme Mail")).to_have_class(re.compile(r"\bis-hidden\b"))
    expect(service_row(admin, "Acme Mail").locator(".badge.muted")).to_have_text("hidden")

    alice.reload()
    expect(service_options(alice).filter(has_text="Acme Mail")).to_have_count(0)
    expect(alice.locator('#service option[value="other"]')).to_have_count(1)  # manual entry still allowed

    expect(admin.locator("#allow_manual_entry")).to_be_checked()
    admin.uncheck("#allow_manual_entry")
    admin.click("#settings-form button[type=submit]")
    expect(admin.locator(".flash-success")).to_contain_text("Settings saved.")
    expect(admin.locator("#allow_manual_entry")).not_to_be_checked()

    alice.reload()
    expect(alice.locator('#service option[value="other"]')).to_have_count(0)
    expect(service_options(alice).filter(has_text="Acme Mail")).to_have_count(0)
    expect(service_options(alice).filter(has_text="Gmail")).to_have_count(1)  # providers stay
    expect(alice.locator("#manual-fields")).to_be_hidden()


def test_bad_server_text_is_shown_under_its_field_and_nothing_is_stored(live_server, page):
    login(page, live_server, "admin")
    page.goto(live_server.url + "/admin/email/services/new")

    fill_server_form(page, "Aruba Corporate", "imap.myserver.com", "tls", "smtp.myserver.com:465", True)
    expect(page.locator('.error[data-field="imap_server"]')).to_contain_text("Add the port")
    shot(page, "server-form-error")
    expect(page.locator("#field-imap_server")).to_have_class(re.compile(r"\bhas-error\b"))
    expect(page.locator('.error[data-field="smtp_server"]')).to_have_count(0)
    expect(page.locator("#imap_server")).to_have_value("imap.myserver.com")  # what was typed is kept
    assert corporate_services(live_server) == {}

    fill_server_form(page, imap="ssl://x", imap_security="starttls")
    expect(page.locator('.error[data-field="imap_server"]')).to_have_text(
        "ssl:// means TLS, but STARTTLS is selected."
    )
    assert corporate_services(live_server) == {}

    fill_server_form(
        page, imap="imaps.aruba.it:993", imap_security="tls", smtp="ssl://smtps.aruba.it", smtp_tls=True
    )
    expect(page).to_have_url(re.compile(r"/admin/email/services$"))
    expect(service_row(page, "Aruba Corporate")).to_contain_text("smtps.aruba.it:465 TLS")
    assert corporate_services(live_server) == {
        "Aruba Corporate": (
            {"host": "imaps.aruba.it", "port": 993, "security": "tls"},
            {"host": "smtps.aruba.it", "port": 465, "security": "tls"},
            False,
        )
    }


def test_editing_a_server_moves_its_connected_mailboxes_to_the_new_host(live_server, page):
    service_id = add_corporate_server(live_server, "Corp Mail", imap=("imap.corp.example", 993, "tls"))
    account_id = add_mailbox(live_server, "alice", service_id, "alice@corp.example")

    login(page, live_server, "admin")
    page.goto(live_server.url + "/admin/email/services")
    service_row(page, "Corp Mail").locator('[data-action="edit"]').click()
    expect(page.locator("h1")).to_have_text("Edit Corp Mail")
    expect(page.locator("#imap_server")).to_have_value("imap.corp.example:993")
    expect(page.locator(".card .help").first).to_contain_text("1 connected mailbox uses this server")
    fill_server_form(page, imap="mail2.corp.example:143", imap_security="starttls")

    expect(page.locator(".flash-success")).to_contain_text('"Corp Mail" saved.')
    row = service_row(page, "Corp Mail")
    expect(row).to_contain_text("mail2.corp.example:143 STARTTLS")
    expect(row).not_to_contain_text("imap.corp.example")

    token = issue_token(live_server, "alice")
    response = page.request.get(
        f"{live_server.url}/api/v1/accounts/{account_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 200, response.text()
    assert response.json()["imap"] == {"host": "mail2.corp.example", "port": 143, "security": "starttls"}
    assert mailboxes_of(live_server, "alice")[0]["imap"]["host"] == "mail2.corp.example"


def test_deleting_a_server_lists_affected_users_and_tells_them_at_login(live_server, new_page):
    service_id = add_corporate_server(live_server, "Doomed Mail")
    add_mailbox(live_server, "alice", service_id, "alice@doomed.example")

    admin = login(new_page(), live_server, "admin")
    admin.goto(live_server.url + "/admin/email/services")
    service_row(admin, "Doomed Mail").locator('[data-action="delete"]').click()
    expect(admin.locator("h1")).to_contain_text("Doomed Mail")
    affected = admin.locator("#affected tbody tr")
    expect(affected).to_have_count(1)
    expect(affected.locator("td").nth(0)).to_have_text("alice")
    expect(affected.locator("td").nth(1)).to_have_text("alice@doomed.example")
    admin.click("#confirm-delete")
    expect(admin.locator(".flash-success")).to_contain_text('"Doomed Mail" deleted; 1 mailbox lost its service')
    expect(service_row(admin, "Doomed Mail")).to_have_count(0)

    alice = login(new_page(), live_server, "alice")
    note = alice.locator(".notification")
    expect(note).to_have_count(1)
    expect(note).to_have_class(re.compile(r"\bflash-error\b"))
    expect(note).to_contain_text('"Doomed Mail"')
    expect(note).to_contain_text("alice@doomed.example")
    mailbox = alice.locator("#mailboxes tbody.mailbox")
    expect(mailbox.locator("[data-state]")).to_have_text("Service removed")
    expect(mailbox.locator(".removed-service")).to_have_text("Doomed Mail")
    # Said once by the notification and once by the badge, not a third time in the row (390 px
    # stacks the row's cells, so each repeat was a screenful).
    expect(mailbox.locator(".last-error")).to_have_text("")
    assert mailboxes_of(live_server, "alice")[0]["state"] == "service_removed"
    shot(alice, "service-removed")

    note.locator("button:has-text('Dismiss')").click()
    expect(alice.locator(".notification")).to_have_count(0)
    expect(alice.locator("[data-state]")).to_have_text("Service removed")  # the mailbox keeps saying so


def test_a_removed_service_is_announced_once_at_login(live_server, page):
    from webapp import service_catalog
    from webapp.extensions import db
    from webapp.models import Service

    service_id = add_corporate_server(live_server, "Doomed Mail")
    add_mailbox(live_server, "alice", service_id, "alice@doomed.example")
    with live_server.app.app_context():
        service_catalog.delete_service(db.session.get(Service, service_id))
        db.session.remove()

    login(page, live_server, "alice")
    expect(page.locator(".notification")).to_have_count(1)
    assert page.locator("main [role=alert]").filter(has_text="stopped working").count() == 1


def test_ordinary_user_cannot_open_the_service_settings(live_server, page):
    login(page, live_server, "alice")
    expect(page.locator("header nav")).not_to_contain_text("Email Service Settings")
    response = page.goto(live_server.url + "/admin/email/services")
    assert response.status == 403
    expect(page.locator("#services")).to_have_count(0)
    expect(page.locator("#error-page")).to_contain_text("You may not open this page")  # the console's 403 page
    for path in ("/admin/email/services/new", "/admin/email/log"):
        assert page.goto(live_server.url + path).status == 403


def test_form_posts_without_a_csrf_token_are_refused(live_server, page):
    service_id = add_corporate_server(live_server, "Corp Mail")
    login(page, live_server, "admin")  # the session cookie is valid; only the token is missing

    refused = page.request.post(
        live_server.url + "/admin/email/services/new",
        form={
            "name": "Sneaky",
            "imap_server": "imap.sneaky.example:993",
            "imap_security": "tls",
            "smtp_server": "smtp.sneaky.example:465",
            "smtp_use_tls": "y",
        },
    )
    assert refused.status == 400
    hide = page.request.post(f"{live_server.url}/admin/email/services/{service_id}/visibility")
    assert hide.status == 400
    wrong = page.request.post(
        f"{live_server.url}/admin/email/services/{service_id}/visibility", form={"csrf_token": "forged"}
    )
    assert wrong.status == 400
    assert corporate_services(live_server) == {
        "Corp Mail": (
            {"host": "imap.corp.example", "port": 993, "security": "tls"},
            {"host": "smtp.corp.example", "port": 465, "security": "tls"},
            False,
        )
    }
