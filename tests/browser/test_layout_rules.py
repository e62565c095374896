"""Layout rules a new company found broken, measured with bounding boxes in Chromium at 1366 and
390 px, in English and in Italian (longer words): Email Service Settings' rows keep each cell on
one line, the folder roles sit in one even grid below a spaced heading, a phone shows the message
before the folder column, and Compose uses a wide screen with its fields aligned (docs/look.md).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from webapp.extensions import db

from .conftest import login
from .helpers import add_corporate_server

pytestmark = pytest.mark.browser

# Lines a text takes: one client rect per line box for an inline element or a cell's text.
LINES = """(el) => {
  const range = document.createRange();
  range.selectNodeContents(el);
  const rects = el.children.length ? [...el.getClientRects()] : [...range.getClientRects()];
  return new Set(rects.filter((r) => r.width > 0).map((r) => Math.round(r.top))).size;
}"""
BOX = "(el) => { const r = el.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width}; }"
ROLES = ("inbox", "drafts", "sent", "spam", "trash")


@pytest.fixture(params=["en", "it"])
def seeded(request, live_server):
    """A corporate server (four actions on its row), alice's mailbox with a folder for every role
    and one message, everyone reading the console in the language of the run."""
    from tests.support.message_factory import make_account, make_folder, make_message
    from webapp.models import User

    live = live_server
    service_id = add_corporate_server(live, "Corporate mail (Dovecot)")
    with live.app.app_context():
        for who in ("admin", "alice"):
            db.session.get(User, live.users[who]["id"]).language = (
                None if request.param == "en" else request.param
            )
        db.session.commit()
        account = make_account(live.users["alice"]["id"], "alice@corp.example")
        folders = {
            role: make_folder(account, role.capitalize() if role != "inbox" else "INBOX", role)
            for role in ROLES
        }
        message = make_message(folders["inbox"], subject="Quarterly figures", preview="Hello Alice")
        ids = {"service_id": service_id, "account_id": account.id, "message_id": message.id}
        db.session.remove()
    return live, ids


def _page(browser, live, who: str, width: int):
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(15_000)
    return login(context.new_page(), live, who)


def test_service_rows_stay_on_one_line_with_a_compact_keyboard_reachable_action_group(browser, seeded):
    live, ids = seeded
    page = _page(browser, live, "admin", 1366)
    page.goto(live.url + "/admin/email/services")
    row = page.locator(f'#services tr[data-service-id="{ids["service_id"]}"]')
    for row_ in page.locator("#services tbody tr").all():
        name = row_.get_attribute("data-service-name")
        assert row_.locator("td.mailbox-count").evaluate(LINES) == 1, f"{name}: the mailbox count wraps"
        for endpoint in row_.locator(".endpoint").all():
            assert endpoint.evaluate(LINES) == 1, f"{name}: {endpoint.inner_text()} wraps before its badge"
    # The corporate row's four actions: one row of buttons, each named and reachable by keyboard.
    actions = row.locator("td.actions > *, td.actions form > button")
    tops = {round(a.evaluate(BOX)["top"]) for a in row.locator("td.actions a, td.actions button").all()}
    assert len(tops) == 1, f"the actions wrap: {tops}"
    assert actions.count() >= 4
    names = []
    for action in ("toggle-hidden", "test-service", "edit", "delete"):
        element = row.locator(f'[data-action="{action}"]')
        element.focus()
        expect(element).to_be_focused()
        names.append(element.evaluate("(el) => el.getAttribute('aria-label') || el.textContent.trim()"))
    assert all(names) and len(set(names)) == 4, names
    expect(row.get_by_role("button", name=names[1])).to_have_attribute(
        "aria-describedby", f"service-name-{ids['service_id']}"
    )
    page.keyboard.press("Enter")  # the focused Delete link opens its confirmation page
    expect(page).to_have_url(f"{live.url}/admin/email/services/{ids['service_id']}/delete")
    page.context.close()


def test_folder_roles_are_one_even_grid_below_a_spaced_heading(browser, seeded):
    live, ids = seeded
    for width in (1366, 390):
        page = _page(browser, live, "alice", width)
        page.goto(f"{live.url}/mailboxes/{ids['account_id']}/folders")
        boxes = [page.locator(f"#field-role_{role}").evaluate(BOX) for role in ROLES]
        widths = {round(b["width"]) for b in boxes}
        assert max(widths) - min(widths) <= 1, f"{width}px: the role fields differ in width: {widths}"
        if width == 1366:
            assert len({round(b["top"]) for b in boxes}) == 1, (
                f"the role fields take more than one row: {boxes}"
            )
        table, heading = (
            page.locator("#folders").evaluate(BOX),
            page.locator("h2.folder-roles-title").evaluate(BOX),
        )
        assert heading["top"] - table["bottom"] >= 16, f"{width}px: the heading touches the table"
        page.context.close()


def test_a_phone_shows_the_message_before_the_folders_and_a_wide_screen_beside_them(browser, seeded):
    live, ids = seeded
    for width in (390, 1366):
        page = _page(browser, live, "alice", width)
        page.goto(f"{live.url}/messages/{ids['message_id']}")
        message, folders = page.locator("#message").evaluate(BOX), page.locator("#mail-nav").evaluate(BOX)
        if width == 390:
            assert message["bottom"] <= folders["top"], (
                f"the folders come before the message: {message} {folders}"
            )
            page.locator(".to-folders a").click()
            expect(page.locator("#mail-nav")).to_be_in_viewport()
        else:
            assert folders["right"] <= message["left"] and folders["top"] <= message["top"] + 1, (
                message,
                folders,
            )
            expect(page.locator(".to-folders")).to_be_hidden()
        page.context.close()


def test_compose_uses_a_wide_screen_with_aligned_fields(browser, seeded):
    live, _ids = seeded
    page = _page(browser, live, "alice", 1366)
    page.goto(live.url + "/compose/")
    boxes = {
        name: page.locator(f"#{name}").evaluate(BOX)
        for name in ("from", "to", "cc", "bcc", "subject", "body")
    }
    assert len({round(b["left"]) for b in boxes.values()}) == 1, (
        f"the boxes start at different places: {boxes}"
    )
    assert len({round(b["right"]) for b in boxes.values()}) == 1, (
        f"the boxes end at different places: {boxes}"
    )
    assert 600 <= boxes["body"]["width"] <= 900, (
        f"the message box is not a comfortable measure: {boxes['body']}"
    )
    label = page.locator("label[for=to]").evaluate(BOX)
    assert label["right"] <= boxes["to"]["left"] and label["top"] < boxes["to"]["bottom"], (
        "To is not beside its box"
    )
    page.context.close()
