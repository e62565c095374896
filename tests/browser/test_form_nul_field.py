"""In Chromium: a NUL character in the connect form's IMAP server is an error under that field,
named by its label, on the same form, with the other input kept (webapp.input_guard.form_page).
Before, the whole page was replaced by a refusal page naming raw keys (imap_server)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import USERS, login, serve, shot

pytestmark = pytest.mark.browser


@pytest.fixture
def live(make_app, tmp_path):
    from webapp.extensions import db
    from webapp.users import create_user

    app = make_app(WTF_CSRF_ENABLED=True)
    users = {}
    with app.app_context():
        for name, admin in USERS:
            users[name] = {"id": create_user(name, f"{name}-console-pw", admin=admin).id}
        db.session.commit()
        db.session.remove()
    with serve(app, users) as live:
        yield live


def test_nul_in_the_imap_server_is_a_field_error_on_the_same_form(live, page):
    login(page, live, "alice")
    page.goto(live.url + "/mailboxes/connect")
    page.select_option("#service", "other")
    page.fill("#email", "alice@acme.test")
    page.fill("#username", "alice@acme.test")
    page.fill("#password", "secret")
    page.fill("#imap_server", "imap.acme\x00.test:993")
    page.fill("#smtp_server", "smtp.acme.test:465")
    page.locator("#connect-form button[type=submit]").click()
    expect(page.locator("#error-page")).to_have_count(0)
    error = page.locator('.error[data-field="imap_server"]')
    expect(error).to_contain_text("NUL")
    expect(page.locator('label[for="imap_server"]')).to_contain_text("IMAP server")
    expect(page.locator("#email")).to_have_value("alice@acme.test")
    expect(page.locator("#smtp_server")).to_have_value("smtp.acme.test:465")
    shot(page, "connect-nul-field-error")
