"""In Chromium: compose and send a message, watch it go from queued to "sent" without reloading,
find it in Outgoing; schedule one and cancel it from the Scheduled folder.  A real
``mailroom worker`` sends through the aiosmtpd server and appends the Sent copy to Dovecot."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.send_support import parsed, sending_mailbox, server_message_ids

from .conftest import USERS, login, serve, shot

pytestmark = pytest.mark.browser


@pytest.fixture
def live(make_app, clean_dovecot, clean_smtp_server, certs, tmp_path):
    from webapp import settings_store
    from webapp.extensions import db
    from webapp.users import create_user

    app = make_app(WTF_CSRF_ENABLED=True, MAIL_CA_FILE=str(certs.ca_cert), SEND_RETRY_INTERVALS=[])
    users = {}
    with app.app_context():
        settings_store.update({"allowed_internal_hosts": ["127.0.0.1"]})
        for name, admin in USERS:
            user = create_user(name, f"{name}-console-pw", admin=admin)
            users[name] = {"id": user.id}
            if name == "alice":
                users[name]["account_id"] = sending_mailbox(clean_dovecot, clean_smtp_server, user).id
        db.session.commit()
        db.session.remove()
    with serve(app, users, worker_dir=tmp_path) as live:
        yield live


def test_compose_and_send_shows_sent(live, page, clean_dovecot, smtp_server):
    login(page, live, "alice")
    page.click("#nav-compose")
    expect(page.locator("#from")).to_have_value("alice@example.com")
    page.fill("#to", "Bob <bob@example.org>")
    page.fill("#bcc", "hidden@example.net")
    page.fill("#subject", "Hello from Chromium")
    page.fill("#body", "Sent from the compose page.")
    shot(page, "compose")
    page.click("#send-now")
    expect(page.locator("#outgoing-state")).to_have_text("Sent", timeout=60_000)
    # The shared state badge (templates/_badges.html), redrawn by the page's script as the state
    # changed: the state's colour class, its icon and its word.
    badge = page.locator("#outgoing-state")
    expect(badge).to_have_class(re.compile(r"^badge state state-sent$"))
    expect(badge.locator("svg.icon")).to_have_count(1)
    expect(badge.locator("svg.icon-check use")).to_have_attribute("href", re.compile(r"icons\.svg#check$"))
    shot(page, "compose-sent")
    (received,) = smtp_server.messages
    msg = parsed(received.data)
    assert str(msg["Subject"]) == "Hello from Chromium" and msg["Bcc"] is None
    assert received.rcpt_tos == ["bob@example.org", "hidden@example.net"]
    assert [mid for mid, _ in server_message_ids(clean_dovecot)] == [msg["Message-ID"]]

    page.click("#compose-nav >> text=Outgoing")
    row = page.locator("#outgoing tbody tr").first
    expect(row).to_contain_text("Hello from Chromium")
    expect(row.locator(".badge")).to_have_text("Sent")


def test_compose_errors_then_schedule_and_cancel(live, page, smtp_server):
    login(page, live, "alice")
    page.goto(live.url + "/compose/")
    page.fill("#to", "not-an-address")
    page.click("#send-now")
    expect(page.locator('.error[data-field="to"]')).to_be_visible()
    expect(page.locator('.error[data-field="text"]')).to_be_visible()
    page.fill("#to", "bob@example.org")
    page.fill("#subject", "For tomorrow")
    page.fill("#body", "Later.")
    page.fill("#send_at_local", "2099-01-01T09:00")  # beyond a year: refused, named
    page.click("#send-later")
    expect(page.locator('.error[data-field="send_at"]')).to_be_visible()

    import datetime

    tomorrow = datetime.datetime.now() + datetime.timedelta(days=1)
    page.fill("#body", "Later.")
    page.fill("#send_at_local", tomorrow.strftime("%Y-%m-%dT%H:%M"))
    page.click("#send-later")
    expect(page.locator("#outgoing-state")).to_have_text("Scheduled")
    page.click("#nav-scheduled")
    row = page.locator("#outgoing tbody tr", has_text="For tomorrow")
    expect(row).to_be_visible()
    row.get_by_role("button", name="Cancel").click()
    expect(page.locator(".flash-success")).to_contain_text("will not be sent")
    expect(page.locator("p.empty")).to_have_text("Nothing is scheduled.")
    assert smtp_server.messages == []


def _synced_original(live, dovecot, smtp) -> int:
    """A message with a PDF delivered to Alice's Dovecot INBOX and synced (its body not fetched yet);
    Alice has a second mailbox with another signature."""
    import email.message

    from webapp.extensions import db
    from webapp.jobs.sync import sync_account
    from webapp.models import Account, Message

    mail = email.message.EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "Carol <carol@example.org>", "alice@example.com", "Contract"
    mail["Message-ID"], mail["Date"] = "<contract@example.org>", "Tue, 03 Mar 2026 12:00:00 +0000"
    mail.set_content("Please sign the contract.")
    mail.add_attachment(b"%PDF-1.4 x", maintype="application", subtype="pdf", filename="contract.pdf")
    dovecot.add_message("alice", mail)
    with live.app.app_context():
        account = db.session.get(Account, live.users["alice"]["account_id"])
        account.signature_mode, account.signature_text = "custom", "Alice Example"
        other = sending_mailbox(dovecot, smtp, account.user, user="bob", is_main=False)
        other.signature_mode, other.signature_text = "custom", "Desk of Bob"
        db.session.commit()
        assert sync_account(account.id)["ok"]
        message_id = Message.query.filter_by(message_id="<contract@example.org>").one().id
        db.session.remove()
    return message_id


# The compose form fits the window (the whole page's width is checked for every page by the look tests).
NO_SIDE_SCROLL = """() => { const f = document.getElementById("compose-form");
  return f.getBoundingClientRect().right <= window.innerWidth && f.scrollWidth <= f.clientWidth; }"""


def test_reply_and_forward_from_the_message_page(live, page, clean_dovecot, smtp_server):
    message_id = _synced_original(live, clean_dovecot, smtp_server)
    login(page, live, "alice")
    page.set_viewport_size({"width": 1366, "height": 900})
    # Not fetched yet: the reply page says so while the worker fetches it, then shows the form, filled.
    page.goto(f"{live.url}/compose/reply/{message_id}")
    expect(page.locator("#to")).to_have_value("Carol <carol@example.org>", timeout=30_000)
    expect(page.locator("#subject")).to_have_value("Re: Contract")
    expect(page.locator("#from")).to_have_value("alice@example.com")
    body = page.locator("#body")
    text = body.input_value()
    assert text.startswith("\n\n-- \nAlice Example\n\nOn ") and "wrote:\n> Please sign the contract." in text
    page.check('input[name="as_html"]')  # untouched: the HTML form of the same draft
    expect(body).to_have_value(re.compile(r"<blockquote>"))
    page.uncheck('input[name="as_html"]')
    expect(body).to_have_value(text)
    # Another From: its signature replaces the first one, in place; and back.
    page.select_option("#from", "bob@example.com")
    expect(body).to_have_value(text.replace("Alice Example", "Desk of Bob"))
    page.select_option("#from", "alice@example.com")
    expect(body).to_have_value(text)
    body.fill("Signed, see you Monday." + text)
    assert page.evaluate(NO_SIDE_SCROLL)
    shot(page, "compose-reply")
    page.click("#send-now")
    expect(page.locator("#outgoing-state")).to_have_text("Sent", timeout=60_000)
    msg = parsed(smtp_server.messages[-1].data)
    assert msg["In-Reply-To"] == "<contract@example.org>" and msg["References"] == "<contract@example.org>"
    sent_text = msg.get_body(("plain",)).get_content()
    assert sent_text.count("Alice Example") == 1 and sent_text.startswith("Signed, see you Monday.")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live.url}/messages/{message_id}")
    expect(page.locator("#body")).to_contain_text("Please sign the contract.")
    page.click("#action-forward")
    expect(page.locator("#subject")).to_have_value("Fwd: Contract")
    carried = page.locator('#forward-attachments input[name="forward_attachment"]')
    expect(carried).to_have_count(1)
    expect(carried).to_be_checked()
    assert page.evaluate(NO_SIDE_SCROLL)
    page.fill("#to", "erin@example.org")
    shot(page, "compose-forward-390")
    page.click("#send-now")
    expect(page.locator("#outgoing-state")).to_have_text("Sent", timeout=60_000)
    msg = parsed(smtp_server.messages[-1].data)
    (attachment,) = msg.iter_attachments()
    assert attachment.get_filename() == "contract.pdf" and attachment.get_content() == b"%PDF-1.4 x"
    assert [mid for mid, _ in server_message_ids(clean_dovecot)][-1] == msg["Message-ID"]
