"""Users and sign-in in Chromium, at a laptop's width (1366 px) and a phone's (390 px):
an administrator creates a user and disables another, whose open browser is signed out on
its next click; a user changes their password and their other browser is signed out."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import DEFAULT_TIMEOUT_MS, login, shot

pytestmark = pytest.mark.browser

WIDTHS = {"laptop": (1366, 900), "phone": (390, 844)}


@pytest.fixture
def at_width(browser, request):
    """A page factory for one viewport; each page has its own cookies (one per person)."""
    contexts = []

    def make(size):
        context = browser.new_context(viewport={"width": size[0], "height": size[1]})
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def _no_sideways_scroll(page):
    page.wait_for_load_state()  # after a click that navigates, measure the page it led to
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.url


@pytest.mark.parametrize("width", WIDTHS)
def test_admin_creates_a_user_and_disables_one_whose_open_browser_is_signed_out(live_server, at_width, width):
    size = WIDTHS[width]
    admin = login(at_width(size), live_server, "admin")
    alice = login(at_width(size), live_server, "alice")
    alice.goto(live_server.url + "/profile/")

    admin.goto(live_server.url + "/admin/email/users")
    _no_sideways_scroll(admin)
    admin.click("#new-user")
    admin.fill("#username", "carol")
    admin.fill("#password", "carol-password-1")
    admin.fill("#confirm", "carol-password-2")
    admin.click("button:has-text('Create user')")
    expect(admin.locator('.error[data-field="confirm"]')).to_contain_text("differ")
    admin.fill("#password", "carol-password-1")
    admin.fill("#confirm", "carol-password-1")
    admin.click("button:has-text('Create user')")
    expect(admin.locator(".flash-success")).to_contain_text("User carol created.")
    expect(admin.locator('tr[data-username="carol"]')).to_contain_text("Active")

    admin.click('tr[data-username="alice"] [data-action="disable"]')
    expect(admin.locator("#disable-impact")).to_contain_text("1 signed-in browser is signed out.")
    _no_sideways_scroll(admin)
    shot(admin, f"admin-user-disable-{size[0]}")
    admin.click("#confirm-disable")
    expect(admin.locator('tr[data-username="alice"] .badge.state-disabled')).to_be_visible()
    _no_sideways_scroll(admin)
    shot(admin, f"admin-users-{size[0]}")

    # alice's open page: her next click lands on the sign-in page, where she is told why.
    alice.click("#profile-password")
    alice.wait_for_url("**/login**")
    alice.fill("#username", "alice")
    alice.fill("#password", live_server.password("alice"))
    alice.click("button[type=submit]:has-text('Log in')")
    expect(alice.locator("body")).to_contain_text(
        "This account is disabled. Ask an administrator to enable it."
    )

    admin.click('tr[data-username="alice"] [data-action="enable"]')
    expect(admin.locator('tr[data-username="alice"]')).to_contain_text("Active")
    login(alice, live_server, "alice")
    expect(alice).not_to_have_url("**/login**")


@pytest.mark.parametrize("width", WIDTHS)
def test_a_user_changes_their_password_and_their_other_browser_is_signed_out(live_server, at_width, width):
    size = WIDTHS[width]
    laptop = login(at_width(size), live_server, "bob")
    phone = login(at_width(size), live_server, "bob")
    phone.goto(live_server.url + "/profile/")

    laptop.goto(live_server.url + "/profile/")
    laptop.click("#profile-password")
    expect(laptop.locator("#current_password")).to_be_visible()  # the password page, not the one it left
    _no_sideways_scroll(laptop)
    laptop.fill("#current_password", "not-my-password")
    laptop.fill("#new_password", "bob-brand-new-pw")
    laptop.fill("#confirm", "bob-brand-new-pw")
    laptop.click("button:has-text('Change password')")
    expect(laptop.locator('.error[data-field="current_password"]')).to_contain_text("not right")
    laptop.fill("#current_password", live_server.password("bob"))
    laptop.fill("#new_password", "bob-brand-new-pw")
    laptop.fill("#confirm", "bob-brand-new-pw")
    laptop.click("button:has-text('Change password')")
    expect(laptop.locator(".flash-success")).to_contain_text("1 other signed-in browser was signed out.")
    shot(laptop, f"profile-password-{size[0]}")

    phone.click("#profile-tokens")
    phone.wait_for_url("**/login**")
    login(phone, live_server, "bob", "bob-brand-new-pw")
    laptop.click("main a:has-text('API tokens')")
    expect(laptop).to_have_url(live_server.url + "/profile/tokens")
    laptop.fill("#name", "nightly backup")
    laptop.click("button:has-text('Create token')")
    assert laptop.input_value("#new-token-value").startswith("mr_")
    _no_sideways_scroll(laptop)
    laptop.once("dialog", lambda dialog: dialog.accept())
    laptop.click('tr:has-text("nightly backup") [data-action="revoke"]')
    expect(laptop.locator('tr[data-state="revoked"]')).to_contain_text("nightly backup")
