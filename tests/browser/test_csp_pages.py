"""Every page of the console in Chromium under the real Content-Security-Policy, as an
administrator and as a user: no CSP violation, no JavaScript error, nothing loaded from
elsewhere; and the features whose script moved out of the templates still work.

The pages are collected from ``app.url_map`` (every GET rule), with ids filled from data
made here; a GET rule that is neither visited nor listed in SKIPPED fails the test, so a
new page cannot escape it.
"""

from __future__ import annotations

import datetime
import email.message
import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.support.message_factory import make_message
from webapp.extensions import db

from .conftest import USERS, login, serve
from .helpers import add_corporate_server, dovecot_mailbox_with_folders

pytestmark = pytest.mark.browser

#: GET rules not opened as pages, and why.
SKIPPED = {
    "static": "files, loaded by every page",
    "mailboxes.job_status": "JSON polled by the pages' scripts",
    "mailboxes.job_report": "an HTML fragment fetched by the connection test's script",
    "mailboxes.row": "an HTML fragment fetched after Test / Sync now (exercised below)",
    "mailboxes.folders_form": "an HTML fragment fetched after Refresh folder list (exercised below)",
    "compose.state": "JSON polled by the outgoing status page",
    "mailboxes.oauth_start": "redirects to the provider's sign-in",
    "messages.attachment": "a download (Content-Disposition: attachment; its headers checked below)",
    "compose.attachment": "a download of an outgoing message's attachment, like messages.attachment",
    "metrics.metrics": "Prometheus text for a scraper, not a page (tests/test_operations.py)",
}
#: Pages that answer an error or a redirect when opened bare; they are still checked.
NOT_OK = {"mailboxes.oauth_callback", "mailboxes.oauth_email"}
#: Pages that need a query argument: {endpoint: {argument: the seeded value's name}}.
QUERY_ARGS = {"messages.thread": {"key": "thread_key"}, "messages.history": {"address": "address"}}
#: Console lines that are not faults of the page: a 4xx page's own status line.
FAILED_LOAD = "Failed to load resource"

# Reports every violation to Python, in every frame that runs script (Playwright injects it
# through the DevTools protocol, so the page's own policy does not block it).
WATCH_CSP = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolation(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
}, true);
"""

HTML_MAIL = """\
<html><head><style>p {{ color: red }}</style></head><body>
<p style="font-weight:bold">Quarterly <b>figures</b></p>
<img src="https://tracker.example/pixel.png?{tag}"><script>alert(1)</script>
</body></html>"""


class Watch:
    """The faults one browser context sees: CSP violations, JS errors, requests elsewhere."""

    def __init__(self, context, origin: str):
        self.origin = origin
        self.faults: list[str] = []
        context.expose_function("__cspViolation", lambda text: self.faults.append("CSP: " + text))
        context.add_init_script(WATCH_CSP)
        context.on("page", self.attach)

    def attach(self, page) -> None:
        page.on("pageerror", lambda err: self.faults.append(f"JS error on {page.url}: {err}"))
        page.on("console", lambda msg: self._console(page, msg))
        page.on("request", lambda req: self._request(req))

    def _console(self, page, msg) -> None:
        if msg.type == "error" and not msg.text.startswith(FAILED_LOAD):
            self.faults.append(f"console error on {page.url}: {msg.text}")
        elif "Content Security Policy" in msg.text or "Refused to" in msg.text:
            self.faults.append(f"console CSP on {page.url}: {msg.text}")

    def _request(self, request) -> None:
        url = request.url
        if not (url.startswith(self.origin) or url.startswith(("data:", "about:"))):
            self.faults.append(f"request elsewhere: {url}")


@pytest.fixture
def live(make_app, clean_dovecot, tmp_path):
    from webapp.users import create_user

    app = make_app(WTF_CSRF_ENABLED=True)
    users = {}
    with app.app_context():
        for name, admin in USERS:
            users[name] = {"id": create_user(name, f"{name}-console-pw", admin=admin).id}
        db.session.remove()
    with serve(app, users, worker_dir=tmp_path) as live:
        yield live


@pytest.fixture
def session_for(browser, live):
    """``session_for("alice")``: a logged-in page in its own context, with its Watch."""
    contexts = []

    def make(name):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        watch = Watch(context, live.url)
        page = context.new_page()
        contexts.append(context)
        return login(page, live, name), watch

    yield make
    for context in contexts:
        context.close()


def _seed(live, dovecot) -> dict:
    """Alice's Dovecot mailbox with a nested folder and a cached HTML message; a corporate server."""
    from webapp.models import Folder, MessageBody

    dovecot.create_folder("alice", "Projects")
    dovecot.create_folder("alice", "Projects/2026")
    account_id = dovecot_mailbox_with_folders(live, dovecot, "alice")
    with live.app.app_context():
        inbox = Folder.query.filter_by(account_id=account_id, name="INBOX").one()
        message = make_message(
            inbox, subject="Quarterly figures", from_addr="carol@example.com", message_id="<q@example.com>"
        )
        mail = email.message.EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = (
            "carol@example.com",
            "alice@example.com",
            "Quarterly figures",
        )
        mail.set_content("Quarterly figures (text part)")
        mail.add_alternative(HTML_MAIL.format(tag="body"), subtype="html")
        mail.add_attachment(HTML_MAIL.format(tag="attachment"), subtype="html", filename="page.html")
        db.session.add(MessageBody(message_pk=message.id, raw=mail.as_bytes()))
        db.session.commit()
        ids = {"account_id": account_id, "folder_id": inbox.id, "message_id": message.id}
        ids["thread_key"], ids["address"] = message.thread_key, message.from_addr
        db.session.remove()
    ids["service_id"] = add_corporate_server(live, "Corp Mail")
    return ids


def _get_rules(app) -> dict[str, set[str]]:
    """{endpoint: its GET rules' argument names}."""
    out: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and not rule.rule.startswith("/api/"):
            out.setdefault(rule.endpoint, set()).update(rule.arguments)
    return out


def _urls(app, endpoints, values: dict) -> dict[str, str]:
    """The URL of each endpoint whose arguments ``values`` can fill (query arguments added by hand)."""
    from flask import url_for

    out = {}
    with app.test_request_context():
        for endpoint, args in endpoints.items():
            query = QUERY_ARGS.get(endpoint, {})
            if endpoint in SKIPPED or not (args | set(query.values())) <= values.keys():
                continue
            filled = {a: values[a] for a in args} | {q: values[v] for q, v in query.items()}
            out[endpoint] = url_for(endpoint, **filled)
    return out


def _visit_all(page, watch, live, urls: dict[str, str]) -> None:
    for endpoint, url in sorted(urls.items()):
        response = page.goto(live.url + url)
        try:
            page.wait_for_load_state("networkidle", timeout=5_000)
        except Exception:  # a page that polls never goes idle; its load is what counts
            pass
        if endpoint not in NOT_OK:
            assert response is not None and response.status == 200, (
                endpoint,
                url,
                response and response.status,
            )
            assert response.headers.get("content-security-policy", "").startswith("default-src 'self'"), (
                endpoint
            )
    assert not watch.faults, "\n".join(watch.faults)


def test_every_page_under_the_policy_as_admin_and_user(live, session_for, clean_dovecot):
    ids = _seed(live, clean_dovecot)
    admin, admin_watch = session_for("admin")
    alice, alice_watch = session_for("alice")

    # Ids only known once pages made them: a filter (through its form) and a scheduled send.
    ids["filter_id"] = _make_filter_through_the_form(alice, live, ids)
    ids["outgoing_id"] = _schedule_through_compose(alice, live)

    endpoints = _get_rules(live.app)
    admin_pages = {e: a for e, a in endpoints.items() if e.startswith("admin.") or not a}
    admin_urls = _urls(live.app, admin_pages, {"service_id": ids["service_id"], "user_id": live.users["alice"]["id"]})
    alice_urls = _urls(live.app, {e: a for e, a in endpoints.items() if not e.startswith("admin.")}, ids)
    missing = set(endpoints) - set(admin_urls) - set(alice_urls) - set(SKIPPED)
    assert not missing, f"GET pages neither visited nor skipped with a reason: {sorted(missing)}"

    _visit_all(admin, admin_watch, live, admin_urls)
    _visit_all(alice, alice_watch, live, alice_urls)

    # The HTML mail is shown as text: its remote image, style and script never reach the page.
    alice.goto(live.url + alice_urls["messages.show"])
    expect(alice.locator("#body")).to_contain_text("Quarterly figures")
    assert alice.locator("#message img, #message iframe").count() == 0
    if "messages.attachment" in endpoints:  # attachment downloads carry the headers too
        download = alice.request.get(f"{live.url}/messages/{ids['message_id']}/attachments/1")
        assert download.ok and "attachment" in download.headers["content-disposition"]
        assert "sandbox" in download.headers["content-security-policy"]  # the download's own, stricter
        assert (
            download.headers["x-frame-options"] == "DENY"
            and download.headers["x-content-type-options"] == "nosniff"
        )
    # A nested folder is indented by its class (was a style attribute).
    alice.goto(live.url + alice_urls["mailboxes.folders"])
    label = alice.locator("tr.folder[data-name='Projects/2026'] label")
    expect(label).to_have_class(re.compile(r"\bdepth-1\b"))
    assert alice.evaluate("(el) => getComputedStyle(el).paddingLeft", label.element_handle()) != "0px"
    assert not admin_watch.faults and not alice_watch.faults, admin_watch.faults + alice_watch.faults


def _make_filter_through_the_form(page, live, ids) -> int:
    """The filter form's rows (add, remove, the header field and the folder shown when used)."""
    page.goto(f"{live.url}/mailboxes/{ids['account_id']}/filters/new")
    page.fill("#name", "Invoices")
    rows = page.locator("#conditions .cond-row")
    for extra in rows.all():  # a new form may start with a row: remove it (its Remove button)
        extra.locator(".remove-row").click()
    expect(rows).to_have_count(0)
    page.click("#add-condition")
    page.click("#add-condition")
    expect(rows).to_have_count(2)
    rows.nth(1).locator(".remove-row").click()
    expect(rows).to_have_count(1)
    header = rows.first.locator("input[name=cond_header]")
    expect(header).to_be_hidden()
    rows.first.locator("select[name=cond_field]").select_option("header")
    expect(header).to_be_visible()
    header.fill("X-Kind")
    rows.first.locator("input[name=cond_value]").fill("invoice")
    for extra in page.locator("#actions .act-row").all():
        extra.locator(".remove-row").click()
    page.click("#add-action")
    action = page.locator("#actions .act-row").first
    expect(action.locator("select[name=act_folder]")).to_be_visible()  # "move" needs a folder
    action.locator("select[name=act_type]").select_option("flag")
    expect(action.locator("select[name=act_folder]")).to_be_hidden()
    page.click("button[type=submit]:has-text('Save filter')")
    row = page.locator("#filters tr[data-filter-id]").first
    expect(row).to_contain_text("Invoices")
    # The page's deferred scripts (filters.js's "Run now") run before "load": a click before then
    # has no listener (CI: the status stayed at the template's empty "running" for 60 s).
    page.wait_for_load_state("load")
    return int(row.get_attribute("data-filter-id"))


def _schedule_through_compose(page, live) -> int:
    """Compose: the From select lists the mailbox; "Send later" converts the local time (compose.js)."""
    page.goto(live.url + "/compose/")
    expect(page.locator("#from option")).to_contain_text(["alice@example.com"])
    page.select_option("#from", "alice@example.com")
    page.fill("#to", "bob@example.org")
    page.fill("#subject", "For tomorrow")
    page.fill("#body", "Later.")
    tomorrow = datetime.datetime.now() + datetime.timedelta(days=1)
    page.fill("#send_at_local", tomorrow.strftime("%Y-%m-%dT%H:%M"))
    page.click("#send-later")
    expect(page.locator("#outgoing-state")).to_have_class(re.compile(r"\bstate-scheduled\b"))
    return int(re.search(r"/compose/outgoing/(\d+)", page.url).group(1))


def test_features_whose_script_moved_out_still_work(live, session_for, clean_dovecot):
    ids = _seed(live, clean_dovecot)
    alice, watch = session_for("alice")

    # Connect form: the service switch shows the server fields for "Other", hints for a preset.
    alice.goto(live.url + "/mailboxes/connect")
    alice.select_option("#service", "other")
    expect(alice.locator("#manual-fields")).to_be_visible()
    alice.select_option("#service", str(ids["service_id"]))
    expect(alice.locator("#manual-fields")).to_be_hidden()
    expect(alice.locator("#service-hints")).to_contain_text("imap.corp.example:993")
    alice.click("details.advanced summary")
    alice.check("#disable_certificate_validation")
    expect(alice.locator("#cert-warning")).to_be_visible()

    # Mailbox row: Test connection and Sync now run their jobs and show the outcome in place.
    alice.goto(live.url + "/mailboxes/")
    row = alice.locator(f'tbody[data-account-id="{ids["account_id"]}"]')
    row.get_by_role("button", name="Sync now").click()
    expect(row.locator(".sync-result")).to_be_visible(timeout=60_000)
    row.locator('[data-action="test"]').click()
    expect(row).to_contain_text("tested ", timeout=60_000)  # the row came back from the job

    # Folders: Refresh folder list reloads the form in place.
    alice.goto(f"{live.url}/mailboxes/{ids['account_id']}/folders")
    alice.click("#refresh-folders")
    expect(alice.locator("#refresh-status")).to_contain_text("Folder list refreshed", timeout=60_000)

    # Filters: Run now; Delete asks first (data-confirm), and dismissing keeps the filter.
    ids["filter_id"] = _make_filter_through_the_form(alice, live, ids)
    alice.click("#run-filters")
    expect(alice.locator("#run-status")).to_have_class(re.compile(r"\bdone\b"), timeout=60_000)
    alice.once("dialog", lambda dialog: dialog.dismiss())
    alice.click("#filters button[data-action='delete']")
    expect(alice.locator("#filters tr[data-filter-id]")).to_have_count(1)
    alice.once("dialog", lambda dialog: dialog.accept())
    alice.click("#filters button[data-action='delete']")
    expect(alice.locator("#no-filters")).to_be_visible()

    # Signature preview: its own document in the sandboxed frame, inline style applied there.
    alice.goto(live.url + "/profile/")
    alice.fill("#first_name", "Alice")
    frame = alice.frame_locator("#preview-html")
    expect(frame.locator("body")).to_be_attached()

    admin, admin_watch = session_for("admin")
    # Admin: the service Test dialog opens from its button; Shared senders submits on change.
    admin.goto(live.url + "/admin/email/services")
    admin.click(f'tr[data-service-id="{ids["service_id"]}"] [data-action="test-service"]')
    expect(admin.locator("#test-dialog")).to_be_visible()
    expect(admin.locator("#test-dialog .service-name")).to_have_text("Corp Mail")
    admin.click("#test-dialog .close-dialog")
    expect(admin.locator("#test-dialog")).to_be_hidden()
    admin.goto(live.url + "/admin/email/senders")
    admin.check('input[data-action="toggle-shared"]')
    expect(admin.locator("#senders .badge.shared")).to_be_visible()
    # Admin: the company signature's style attribute shows in the preview frame, under its own policy.
    admin.goto(live.url + "/admin/email/signature")
    admin.fill("#central_signature_html", '<p><span style="color: rgb(0, 128, 0)">{{full_name}}</span></p>')
    span = admin.frame_locator("#preview-html").locator("span")
    expect(span).to_have_css("color", "rgb(0, 128, 0)")
    # The OAuth2 application page: the redirect URL field selects itself on focus.
    admin.goto(live.url + "/admin/email/oauth-apps")
    admin.locator("a[href*='/admin/email/oauth-apps/']").first.click()
    admin.wait_for_load_state("load")  # mailroom.js (the focus listener) runs at the end of the body
    admin.focus("#redirect-uri")
    admin.wait_for_function("() => document.activeElement.id === 'redirect-uri' && document.activeElement.selectionEnd > 0")
    admin.click("#copy-redirect-uri")
    expect(admin.locator("#copy-redirect-uri")).not_to_have_text("Copy")

    # Removing a mailbox asks first; dismissing keeps it.
    alice.goto(live.url + "/mailboxes/")
    alice.once("dialog", lambda dialog: dialog.dismiss())
    alice.locator(f'tbody[data-account-id="{ids["account_id"]}"] button:has-text("Remove")').click()
    expect(alice.locator(f'tbody[data-account-id="{ids["account_id"]}"]')).to_be_visible()
    assert urlsplit(alice.url).path == "/mailboxes/"
    assert not watch.faults and not admin_watch.faults, watch.faults + admin_watch.faults
