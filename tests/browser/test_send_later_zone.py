"""In Chromium on UTC, a user whose profile zone is Pacific/Kiritimati (UTC+14) types a "send
later" time: it means 09:00 in Kiritimati (as every page shows times), the field names the zone,
and the status page and the edit form show 09:00 back.  Before, the page's script read the field
in the browser's zone: 09:00 became 23:00 in Kiritimati."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.support.send_support import sending_mailbox

from .conftest import USERS, login, serve, shot

pytestmark = pytest.mark.browser
ZONE = "Pacific/Kiritimati"


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
                user.time_zone = ZONE
                users[name]["account_id"] = sending_mailbox(clean_dovecot, clean_smtp_server, user).id
        db.session.commit()
        db.session.remove()
    with serve(app, users, worker_dir=tmp_path) as live:
        yield live


@pytest.fixture
def utc_page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
    yield context.new_page()
    context.close()


def test_send_later_means_the_profile_zone(live, utc_page):
    from webapp.extensions import db
    from webapp.models import OutgoingMessage

    page = utc_page
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "UTC"
    local = (datetime.now(zoneinfo.ZoneInfo(ZONE)) + timedelta(days=2)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    login(page, live, "alice")
    page.goto(live.url + "/compose/")
    expect(page.locator("#send_at_zone")).to_have_text(f"Time zone: {ZONE}")
    page.fill("#to", "bob@example.org")
    page.fill("#subject", "At nine in Kiritimati")
    page.fill("#body", "Later.")
    page.fill("#send_at_local", local.strftime("%Y-%m-%dT%H:%M"))
    shot(page, "compose-send-later-zone")
    page.click("#send-later")
    expect(page.locator("#outgoing-state")).to_have_text("Scheduled")
    expect(page.locator("#outgoing-when")).to_contain_text("9:00 AM")
    expect(page.locator("#outgoing-when")).to_contain_text(ZONE)
    with live.app.app_context():
        row = OutgoingMessage.query.filter_by(subject="At nine in Kiritimati").one()
        assert row.send_at == local.astimezone(UTC).replace(tzinfo=None)
        row_id = row.id
        db.session.remove()
    page.goto(f"{live.url}/compose/outgoing/{row_id}/edit")
    expect(page.locator("#send_at_local")).to_have_value(local.strftime("%Y-%m-%dT%H:%M"))
