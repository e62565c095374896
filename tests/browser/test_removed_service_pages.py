"""In Chromium: what a person sees of a mailbox whose service an administrator removed.

Its edit page says so plainly and offers only "connect it again through another service"
(nothing preselected: Save once moved it to Gmail) or "remove it"; compose does not offer it
as From, even as the main mailbox; the removal notice names its scheduled messages, each of
which can get another From; a failed message offers no Edit/Cancel, and every state badge has
its own colour and word.  A real ``mailroom worker`` sends through the real aiosmtpd.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from webapp import accounts, service_catalog, settings_store
from webapp.extensions import db
from webapp.models import Account, OutgoingMessage, Service, User
from webapp.queue import get_queue, get_redis

from .conftest import USERS, login, serve, shot

pytestmark = pytest.mark.browser

JOB_MS = 30_000


@pytest.fixture
def live(make_app, certs, clean_dovecot, clean_smtp_server, tmp_path):
    from tests.support.send_support import sending_mailbox
    from webapp.users import create_user

    app = make_app(WTF_CSRF_ENABLED=True, MAIL_CA_FILE=str(certs.ca_cert), SEND_RETRY_INTERVALS=[])
    users = {}
    with app.app_context():
        settings_store.update({"allowed_internal_hosts": ["127.0.0.1"], "connection_timeout": 5})
        for name, admin in USERS:
            users[name] = {"id": create_user(name, f"{name}-console-pw", admin=admin).id}
        alice = db.session.get(User, users["alice"]["id"])
        working = sending_mailbox(clean_dovecot, clean_smtp_server, alice, is_main=False)
        users["working_id"] = working.id
        service = service_catalog.create_service(
            service_catalog.clean_service(
                {
                    "name": "Doomed Corp",
                    "imap": {"host": "imap.doomed.example", "port": 993, "security": "tls"},
                    "smtp": {"host": "smtp.doomed.example", "port": 465, "security": "tls"},
                }
            )
        )
        data = {
            "service_id": service.id,
            "username": "alice@doomed.example",
            "password": "pw",
            "is_main": True,
        }
        users["doomed_id"] = accounts.create_account(alice, accounts.clean_account(alice, data)).id
        db.session.remove()
    with serve(app, users, worker_dir=tmp_path) as live:
        yield live


def schedule(live, subject, hours=2):
    from webapp import send_queue

    with live.app.app_context():
        alice = db.session.get(User, live.users["alice"]["id"])
        fields = {
            "from": "alice@doomed.example",
            "to": ["bob@example.org"],
            "subject": subject,
            "text": "Hi.",
            "send_at": (datetime.now(UTC) + timedelta(hours=hours)).isoformat(),
        }
        row_id = send_queue.submit(alice, fields, "compose")[0].id
        db.session.remove()
        return row_id


def remove_service(live):
    with live.app.app_context():
        service_catalog.delete_service(Service.query.filter_by(name="Doomed Corp").one())
        db.session.remove()


def test_removed_service_mailbox_offers_only_reconnect_or_remove(live, page):
    remove_service(live)
    login(page, live, "alice")
    row = page.locator(f'tbody[data-account-id="{live.users["doomed_id"]}"]')
    row.locator(".edit-link").click()
    expect(page.locator("#service-removed-notice")).to_contain_text("“Doomed Corp”")
    expect(page.locator("#service-removed-notice")).to_contain_text("removed by an administrator")
    select = page.locator("#service")
    expect(select).to_have_value("")  # nothing preselected: no silent move to Gmail
    expect(select.locator("option:checked")).to_have_text("— Choose a mail service —")
    expect(page.locator("#imap_server, #email, #description, #is_main")).to_have_count(0)
    shot(page, "removed-service-edit")

    page.click("#reconnect-form button[type=submit]")  # Save without a choice changes nothing
    expect(page.locator('[data-field="service"]')).to_contain_text("Choose the mail service")
    with live.app.app_context():
        account = db.session.get(Account, live.users["doomed_id"])
        assert (account.state, account.service_id) == ("service_removed", None)
        gmail = Service.query.filter_by(key="gmail").one().id
        db.session.remove()

    page.select_option("#service", str(gmail))
    page.fill("#password", "an-app-password")
    page.click("#reconnect-form button[type=submit]")
    expect(page.locator(".flash-success")).to_contain_text("now connects through Gmail")
    expect(page.locator(".notification")).to_have_count(0)
    with live.app.app_context():
        account = db.session.get(Account, live.users["doomed_id"])
        assert (account.state, account.service_id) == ("new", gmail)
        db.session.remove()


def test_removed_mailbox_can_be_removed_from_its_page(live, page):
    remove_service(live)
    login(page, live, "alice")
    page.goto(live.url + f"/mailboxes/{live.users['doomed_id']}/edit")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#remove-form button")
    expect(page.locator(".flash-success")).to_contain_text("Mailbox alice@doomed.example removed.")
    expect(page.locator(f'tbody[data-account-id="{live.users["doomed_id"]}"]')).to_have_count(0)


def test_compose_offers_no_removed_from_and_scheduled_messages_get_another_from(
    live, page, clean_smtp_server
):
    kept = schedule(live, "Quarterly report")
    doomed_fail = schedule(live, "Never goes", hours=3)
    remove_service(live)
    login(page, live, "alice")

    note = page.locator('.notification[data-notification="service_removed"]')
    expect(note).to_contain_text('"Quarterly report" (scheduled for')
    expect(note).to_contain_text("can no longer be sent")
    page.goto(live.url + "/compose/")
    expect(page.locator('#from option[value="alice@doomed.example"]')).to_have_count(0)
    expect(page.locator("#from option")).to_have_text(["alice@example.com"])

    note.get_by_role("link", name="Choose another From for “Quarterly report”").click()
    expect(page).to_have_url(re.compile(rf"/compose/outgoing/{kept}/edit$"))
    expect(page.locator("#stranded-from")).to_contain_text("was removed by an administrator")
    expect(page.locator("#from")).to_have_value("alice@example.com")
    page.click("button[name=action][value=send]")
    page.goto(live.url + f"/compose/outgoing/{kept}")
    expect(page.locator("#outgoing-state")).to_have_text("Sent", timeout=JOB_MS)
    assert [m.mail_from for m in clean_smtp_server.messages] == ["alice@example.com"]

    # The other one is left; when its time comes it fails: Edit and Cancel are gone.
    page.goto(live.url + f"/compose/outgoing/{doomed_fail}")
    expect(page.locator("#outgoing-actions")).to_be_visible()
    with live.app.app_context():  # its time comes: as RQ's scheduler does, move its job to the queue
        queue = get_queue()
        job = Job.fetch(db.session.get(OutgoingMessage, doomed_fail).job_id, connection=get_redis())
        ScheduledJobRegistry(queue=queue).remove(job)
        queue.enqueue_job(job)
        db.session.remove()
    expect(page.locator("#outgoing-state")).to_have_text("Failed", timeout=JOB_MS)
    expect(page.locator("#outgoing-actions")).to_be_hidden()
    page.reload()
    expect(page.locator("#outgoing-actions")).to_have_count(0)
    shot(page, "scheduled-failed")


def test_every_outgoing_state_badge_has_its_own_colour_and_word(live, page):
    states = ("scheduled", "queued", "sending", "sent", "failed", "cancelled")
    with live.app.app_context():
        for state in states:
            db.session.add(
                OutgoingMessage(
                    user_id=live.users["alice"]["id"],
                    account_id=live.users["working_id"],
                    from_addr="alice@example.com",
                    to_addrs='["bob@example.org"]',
                    subject=f"In state {state}",
                    message_id=f"<{state}@mailroom.test>",
                    state=state,
                )
            )
        db.session.commit()
        db.session.remove()
    login(page, live, "alice")
    page.goto(live.url + "/compose/outgoing")
    seen = {}
    for state in states:
        badge = page.locator(f'#outgoing tr[data-state="{state}"] .badge')
        expect(badge).to_have_text(state.capitalize())
        seen[state] = badge.evaluate(
            "(el) => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]"
        )
    colours = [tuple(c) for c in seen.values()]
    assert len(set(colours)) == len(states), seen
    assert seen["failed"] != seen["sent"]
    # Edit and Cancel only beside a message that still waits.
    page.goto(live.url + "/compose/outgoing?state=scheduled")
    expect(page.locator('#outgoing tr[data-state="scheduled"] a:has-text("Edit")')).to_have_count(1)
