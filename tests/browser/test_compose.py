"""In Chromium: compose and send a message, watch it go from queued to "sent" without reloading,
find it in Outgoing; schedule one and cancel it from the Scheduled folder.  A real
``mailroom worker`` sends through the aiosmtpd server and appends the Sent copy to Dovecot."""

from __future__ import annotations

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
