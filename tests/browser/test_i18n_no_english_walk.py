"""In Chromium, an Italian and a Polish user and administrator walk the console through real jobs
(a connection test that fails and one that passes against the test Dovecot, a sync, a message sent
through the test SMTP server) and every page's text as the reader sees it, what the page scripts
wrote included, holds no common English word (``tests.test_i18n_no_english.ENGLISH``).

The jobs run on the queue the pages enqueued them on, worked in the test process (``run_burst``).
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.i18n_catalogues import compile_catalogues
from tests.support.job_worker import run_burst
from tests.test_i18n_no_english import english_in

from .conftest import USERS, login, serve

pytestmark = pytest.mark.browser

#: What a page shows: its visible text and the words a screen reader reads in attributes; a
#: server's own words (``code.raw``, "Server said: …") stay as the server wrote them.
PAGE_TEXTS = """() => {
  const raw = [...document.querySelectorAll('code.raw')];
  raw.forEach(el => { el.dataset.display = el.style.display; el.style.display = 'none'; });
  const out = document.body.innerText.split(/\\n+/).map(s => s.trim()).filter(Boolean);
  raw.forEach(el => { el.style.display = el.dataset.display; });
  for (const el of document.querySelectorAll('[placeholder], [title], [aria-label], img[alt]')) {
    if (el.closest('[hidden]') || el.offsetParent === null && el.tagName !== 'BODY') continue;
    for (const name of ['placeholder', 'title', 'aria-label', 'alt']) {
      const value = el.getAttribute(name);
      if (value) out.push(value);
    }
  }
  return out;
}"""


MESSAGE = (
    "From: Mario Rossi <mario@example.com>\r\nTo: alice@example.com\r\nSubject: Preventivo {number}\r\n"
    "Message-ID: <preventivo-{number}@example.com>\r\nDate: Sun, 01 Mar 2026 09:00:00 +0000\r\n\r\n"
    "Buongiorno, ecco il preventivo {number}.\r\n"
)


@pytest.fixture
def live(make_app, certs):
    from webapp import settings_store
    from webapp.extensions import db
    from webapp.users import create_user

    compile_catalogues()
    app = make_app(WTF_CSRF_ENABLED=True, MAIL_CA_FILE=str(certs.ca_cert))
    users = {}
    with app.app_context():
        settings_store.update({"allowed_internal_hosts": ["127.0.0.1"], "connection_timeout": 5})
        for name, admin in USERS:
            users[name] = {"id": create_user(name, f"{name}-console-pw", admin=admin).id, "password": None}
        db.session.commit()
        db.session.remove()
    with serve(app, users) as live:
        yield live


class Walk:
    """Collects the English a page shows, page by page."""

    def __init__(self, page, live, language: str):
        self.page, self.live, self.language, self.found = page, live, language, {}
        page.set_default_timeout(30_000)  # a loaded machine: pages and their jobs take their time

    def check(self, label: str) -> None:
        self.page.wait_for_load_state()
        hits = english_in(self.page.evaluate(PAGE_TEXTS), self.language, keep=_server_folders(self.live))
        if hits:
            self.found[f"{label} ({self.page.url})"] = hits

    def submit(self, path: str | None, form: str) -> None:
        """Send ``form`` (of the page at ``path``, else of the page open) with its first submit button."""
        if path:
            self.page.goto(self.live.url + path)
        with self.page.expect_navigation():
            self.page.locator(f"{form} button[type=submit]").first.click()
        self.check(f"{form} sent from {path or 'the page'}")

    def visit(self, path: str, label: str | None = None) -> None:
        self.page.goto(self.live.url + path)
        self.check(label or path)


def _server_folders(live) -> tuple[str, ...]:
    """The server's folder names (``Drafts``, ``Sent``…) and special-use flags: the server's data."""
    from webapp.models import Folder

    with live.app.app_context():
        names = {f.name for f in Folder.query.all()}
    return tuple(sorted({*(f"\\{n}" for n in names), *names}, key=len, reverse=True))


def _set_language(live, language: str) -> None:
    from webapp.extensions import db
    from webapp.models import User

    with live.app.app_context():
        for name in ("admin", "alice"):
            db.session.get(User, live.users[name]["id"]).language = language
        db.session.commit()
        db.session.remove()


def _connect(page, dovecot, smtp_server, password: str) -> None:
    page.select_option("#service", "other")
    page.fill("#username", "alice")
    page.fill("#email", "alice@example.com")
    page.fill("#password", password)
    page.fill("#imap_server", f"127.0.0.1:{dovecot.imaps_port}")
    page.fill("#smtp_server", f"127.0.0.1:{smtp_server.starttls_port}")
    page.locator("#connect-form button[type=submit]").click()
    page.wait_for_url(lambda url: "/mailboxes/" in url and "/connect" not in url)


def _message_gone_from_server(live, account_id: int) -> int:
    from tests.support.message_factory import make_message
    from webapp.models import Folder

    with live.app.app_context():
        inbox = Folder.query.filter_by(account_id=account_id, name="INBOX").one()
        return make_message(inbox, subject="Vecchio preventivo", uid=9999).id


def _mailbox_id(live) -> int:
    from webapp.models import Account

    with live.app.app_context():
        return Account.query.order_by(Account.id.desc()).first().id


@pytest.mark.parametrize("language", ["it", "pl"])
def test_no_english_on_italian_and_polish_pages(live, new_page, clean_dovecot, smtp_server, language):
    _set_language(live, language)
    for number in (1, 2):
        clean_dovecot.add_message("alice", MESSAGE.format(number=number))
    walk = Walk(login(new_page(), live, "alice"), live, language)
    page = walk.page

    # A bad address, then a wrong password: refused by the form, then by the server.
    walk.visit("/mailboxes/connect")
    page.select_option("#service", "other")
    page.fill("#email", "a..b@example.com")
    page.locator("#connect-form button[type=submit]").click()
    walk.check("connect form errors")
    walk.visit("/mailboxes/connect")
    _connect(page, clean_dovecot, smtp_server, "not-the-right-one")
    walk.check("saved, testing")
    run_burst(live.app)
    expect(page.locator(".check-protocol[data-protocol=imap] .diagnosis")).to_be_visible(timeout=30_000)
    walk.check("failed connection test")

    # The right password on the edit page: it passes; then a sync.
    account_id = _mailbox_id(live)
    walk.visit(f"/mailboxes/{account_id}/edit")
    page.fill("#password", "secret-alice-pw")
    page.locator("#connect-form button[type=submit]").click()
    page.wait_for_load_state()
    run_burst(live.app)
    walk.visit("/mailboxes/", "after a passed test")
    with page.expect_response(lambda r: "/sync" in r.url and r.request.method == "POST"):
        page.locator(f"tbody[data-account-id='{account_id}'] [data-action=sync]").click()
    walk.check("sync queued")
    run_burst(live.app)
    expect(page.locator(".sync-result.ok, .sync-result.error").first).to_be_visible(timeout=30_000)
    walk.check("synced")

    for path in (
        f"/mailboxes/{account_id}/folders",
        f"/mailboxes/{account_id}/filters",
        f"/mailboxes/{account_id}/filters/new",
        f"/mailboxes/{account_id}/out-of-office",
        "/mailboxes/log",
        "/messages/",
        "/profile/",
        "/profile/tokens",
        "/profile/password",
        "/compose/scheduled",
        "/no-such-page",
        "/admin/email/users",
    ):
        walk.visit(path)
    page.goto(live.url + "/messages/")
    page.locator("a.open").first.click()
    walk.check("a message")
    # A message the server no longer has: the page script says so (mailroomT), in the language.
    walk.visit(f"/messages/{_message_gone_from_server(live, account_id)}", "fetching a message")
    run_burst(live.app)
    expect(page.locator("#gone")).to_be_visible(timeout=30_000)
    walk.check("a message gone from the server")

    # Compose: a refused recipient, then a message sent through the test SMTP server.
    walk.visit("/compose/")
    page.fill("#to", "a b@example.com")
    page.fill("#subject", "Prova")
    page.locator("#send-now").click()
    walk.check("compose errors")
    page.fill("#to", "bob@example.com")
    page.fill("#body", "Ciao Bob, ecco il preventivo.")
    page.locator("#send-now").click()
    page.wait_for_load_state()
    walk.check("outgoing, queued")
    expect(page.locator("#compose-error")).to_have_count(0)
    run_burst(live.app)
    expect(page.locator("#outgoing-status")).to_have_attribute("data-state", "sent", timeout=30_000)
    walk.check("outgoing, sent")
    walk.visit("/compose/outgoing")

    # Forms sent as they stand, or half filled: their flash messages and field errors.
    for path, form in (
        ("/profile/", "#profile-form"),
        (f"/mailboxes/{account_id}/out-of-office", "#ooo-form"),
        (f"/mailboxes/{account_id}/filters/new", "#filter-form"),
    ):
        walk.submit(path, form)
    page.goto(live.url + "/profile/tokens")
    page.fill("#name", "script di prova")
    walk.submit(None, "#token-form")

    admin = Walk(login(new_page(), live, "admin"), live, language)
    for path, form in (
        ("/admin/email/users/new", "#new-user-form"),
        ("/admin/email/services/new", "form[method=post]:has(#name)"),
        ("/admin/email/signature", "#signature-form"),
        ("/admin/email/services", "#settings-form"),
    ):
        admin.submit(path, form)
    admin.page.goto(live.url + "/admin/email/users/new")
    admin.page.fill("#username", "carla")
    admin.page.fill("#password", "carla-console-password-1")
    admin.page.fill("#confirm", "carla-console-password-1")
    admin.submit(None, "#new-user-form")
    for path in (
        "/admin/email/services",
        "/admin/email/services/new",
        "/admin/email/users",
        "/admin/email/users/new",
        f"/admin/email/users/{live.users['alice']['id']}/disable",
        "/admin/email/operations",
        "/admin/email/log",
        "/admin/email/senders",
        "/admin/email/signature",
        "/admin/email/oauth-apps",
        "/admin/email/locked-sign-ins",
    ):
        admin.visit(path)

    found = {**walk.found, **admin.found}
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)
