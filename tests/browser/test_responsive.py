"""Every page of the console fits the screen from a phone (390 px) to a laptop (1366 px), as an
administrator and as a user: no horizontal scroll (``scrollWidth <= innerWidth``); at 1366 px
the navigation keeps each of its rows on one line, at 390 px it sits behind the menu button and
tables turn into cards whose cells name their column.

The pages are those of tests/browser/test_csp_pages.py (every GET rule of ``app.url_map``, with
the same seeded data), so a new page is measured here as soon as it exists.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from webapp.extensions import db

from .conftest import USERS, login, serve
from .test_csp_pages import _get_rules, _make_filter_through_the_form, _schedule_through_compose, _seed, _urls

pytestmark = pytest.mark.browser

WIDTHS = {390: 844, 1366: 900}

# What sticks out past the right edge of the window: the deepest such elements, for the message.
OVERFLOW = """() => {
  const width = window.innerWidth;
  const wide = document.documentElement.scrollWidth;
  if (wide <= width) return null;
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const r = el.getBoundingClientRect();
    if (r.right > width + 0.5 && r.width > 0 && ![...el.children].some((c) => c.getBoundingClientRect().right > width + 0.5)) {
      out.push(`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${[...el.classList].join(".")} right=${Math.round(r.right)}`);
      if (out.length >= 5) break;
    }
  }
  return {scrollWidth: wide, innerWidth: width, culprits: out};
}"""

# Rows of a flex list: the distinct top offsets of its items.
ROWS = "(ul) => new Set([...ul.children].map((li) => Math.round(li.getBoundingClientRect().top))).size"


@pytest.fixture
def live(make_app, clean_dovecot):
    """The app test_csp_pages.py serves, without its worker: no page here starts a job."""
    from webapp.users import create_user

    app = make_app(WTF_CSRF_ENABLED=True)
    users = {}
    with app.app_context():
        for name, admin in USERS:
            users[name] = {"id": create_user(name, f"{name}-console-pw", admin=admin).id}
        db.session.remove()
    with serve(app, users) as live:
        yield live


def _measure(browser, live, who: str, urls: dict[str, str], width: int) -> list[str]:
    context = browser.new_context(viewport={"width": width, "height": WIDTHS[width]})
    context.set_default_timeout(15_000)
    page = login(context.new_page(), live, who)
    faults = []
    for endpoint, url in sorted(urls.items()):
        page.goto(live.url + url, wait_until="domcontentloaded")
        overflow = page.evaluate(OVERFLOW)
        if overflow:
            faults.append(f"{who} {width}px {endpoint} ({url}): {overflow}")
    _check_navigation(page, live, who, width)
    context.close()
    return faults


def _check_navigation(page, live, who: str, width: int) -> None:
    page.goto(live.url + "/mailboxes/")
    nav, toggle = page.locator("#site-nav"), page.locator("#nav-toggle")
    if width >= 1366:
        expect(toggle).to_be_hidden()
        expect(nav).to_be_visible()
        assert page.locator("header .nav-main").evaluate(ROWS) == 1, f"{who}: main links wrap at {width}px"
        if who == "admin":
            assert page.locator("header .nav-admin ul").evaluate(ROWS) == 1, f"admin links wrap at {width}px"
        return
    # Small screen: the menu button opens and closes the navigation; every link is then reachable.
    expect(nav).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#nav-messages")).to_be_visible()
    if who == "admin":
        expect(page.locator("#nav-operations")).to_be_visible()
    assert page.evaluate(OVERFLOW) is None, "the open menu sticks out"
    page.keyboard.press("Escape")
    expect(nav).to_be_hidden()
    if who == "admin":
        return
    # Tables are cards: the heading row is only for screen readers, each cell names its column.
    cell = page.locator("#mailboxes td.last-error").first
    expect(cell).to_have_attribute("data-label", "Last error")
    label = cell.evaluate("(td) => getComputedStyle(td, '::before').content")
    assert label == '"Last error"', label
    expect(page.locator("#mailboxes thead th").nth(1)).not_to_be_in_viewport()


def test_every_page_fits_at_390_and_1366_as_admin_and_user(live, browser, clean_dovecot):
    ids = _seed(live, clean_dovecot)
    alice = login(browser.new_page(), live, "alice")
    ids["filter_id"] = _make_filter_through_the_form(alice, live, ids)
    ids["outgoing_id"] = _schedule_through_compose(alice, live)
    alice.context.close()
    _long_texts(live, ids)
    ids["user_id"] = live.users["alice"]["id"]  # Administration › Users' pages of one user

    endpoints = _get_rules(live.app)
    admin_urls = _urls(live.app, {e: a for e, a in endpoints.items() if e.startswith("admin.") or not a}, ids)
    alice_urls = _urls(live.app, {e: a for e, a in endpoints.items() if not e.startswith("admin.")}, ids)
    admin_urls["error 404"] = alice_urls["error 404"] = "/no-such-page"
    assert len(admin_urls) > 10 and len(alice_urls) > 20

    faults = []
    for width in WIDTHS:
        faults += _measure(browser, live, "admin", admin_urls, width)
        faults += _measure(browser, live, "alice", alice_urls, width)
    assert not faults, "\n".join(faults)


def _long_texts(live, ids: dict) -> None:
    """Long texts where pages show them: a mailbox's error with a 300-letter word, a message with
    a long preview (one line, cut, on wide screens) and a long unbroken subject. They must wrap
    (or be cut), never widen the page."""
    from tests.support.message_factory import make_message
    from webapp.models import Account, Folder

    with live.app.app_context():
        account = db.session.get(Account, ids["account_id"])
        account.last_error = "IMAP: " + "x" * 300 + " and more words after the long one"
        make_message(
            db.session.get(Folder, ids["folder_id"]),
            subject="Re: " + "y" * 200,
            from_addr="someone.with.a.very.long.address@subsidiary.example-corporation.com",
            preview="Hello Alice, please find the figures for the third quarter attached " * 5,
        )
        db.session.remove()
