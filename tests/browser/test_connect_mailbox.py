"""A user connects mailboxes through the connect form, in Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import login, shot
from .helpers import mailboxes_of

pytestmark = pytest.mark.browser


def test_user_connects_a_provider_mailbox_then_one_with_typed_server_details(live_server, page):
    login(page, live_server, "alice")
    expect(page.locator(".empty")).to_contain_text("No mailbox connected yet.")
    page.click("#connect-mailbox")
    expect(page.locator("#manual-fields")).to_be_hidden()

    page.select_option("#service", label="Gmail / Google Workspace")
    expect(page.locator("#service-hints")).to_contain_text("imap.gmail.com:993")
    expect(page.locator("#manual-fields")).to_be_hidden()
    page.fill("#username", "alice@gmail.com")
    page.fill("#password", "app-password-1234")
    shot(page, "connect")
    page.click("button[type=submit]:has-text('Connect')")

    # Connecting starts the connection test; the list follows it (no worker here: it stays queued).
    expect(page).to_have_url(re.compile(r"/mailboxes/\?testing=\d+&job="))
    expect(page.locator(".flash-success")).to_contain_text(
        "Mailbox alice@gmail.com saved; testing its connection now."
    )
    rows = page.locator("#mailboxes tbody.mailbox")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".badge.main")).to_have_text("Main")
    expect(rows.first).to_contain_text("Gmail / Google Workspace")
    expect(rows.first.locator("[data-state]")).to_have_text("Not tested yet")

    page.click("#connect-mailbox")
    page.select_option("#service", "other")
    expect(page.locator("#manual-fields")).to_be_visible()
    page.fill("#imap_server", "imap.example.org")
    page.fill("#smtp_server", "smtp.example.org:587")
    page.fill("#username", "alice@example.org")
    page.fill("#password", "second-secret")
    page.click("button[type=submit]:has-text('Connect')")

    expect(page.locator('.error[data-field="imap_server"]')).to_contain_text("Add the port")
    expect(page.locator("#manual-fields")).to_be_visible()  # "Other" stays chosen after the error
    expect(page.locator("#service")).to_have_value("other")
    assert len(mailboxes_of(live_server, "alice")) == 1

    page.fill("#imap_server", "imap.example.org:993")
    page.fill("#password", "second-secret")  # a password field is not refilled after an error
    page.click("button[type=submit]:has-text('Connect')")

    expect(page.locator(".flash-success")).to_contain_text(
        "Mailbox alice@example.org saved; testing its connection now."
    )
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("alice@gmail.com")
    expect(rows.nth(0).locator(".badge.main")).to_have_count(1)
    expect(rows.nth(1)).to_contain_text("Other: imap.example.org")
    expect(rows.nth(1).locator(".badge.main")).to_have_count(0)
    stored = mailboxes_of(live_server, "alice")
    assert [(m["email"], m["is_main"], m["manual"]) for m in stored] == [
        ("alice@gmail.com", True, False),
        ("alice@example.org", False, True),
    ]
    assert stored[1]["imap"] == {"host": "imap.example.org", "port": 993, "security": "tls"}


def test_a_plugins_hint_shows_its_address_as_a_link(live_server, page):
    """Gmail's app-password address was plain text: hints stay plain text in the plugin and become
    links when shown (built as elements, so a hint cannot inject markup)."""
    login(page, live_server, "alice")
    page.goto(live_server.url + "/mailboxes/connect")
    page.select_option("#service", label="Gmail / Google Workspace")
    link = page.locator("#service-hints .hint a")
    expect(link).to_have_count(1)
    expect(link).to_have_attribute("href", "https://myaccount.google.com/apppasswords")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(page.locator("#service-hints")).to_contain_text("https://myaccount.google.com/apppasswords.")
