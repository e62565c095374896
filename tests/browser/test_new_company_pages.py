"""What a new company met in Chromium (30 Nov 2026): the pages' behaviour, not their words."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import login
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
