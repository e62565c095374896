"""A user sets up an out-of-office window and creates, reorders and runs a filter, in Chromium."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.sync_support import imap_login
from webapp.extensions import db
from webapp.jobs.sync import sync_account
from webapp.models import Filter, Folder, OutOfOffice

from .conftest import login, shot
from .helpers import dovecot_mailbox_with_folders

pytestmark = pytest.mark.browser


def test_out_of_office_window(live_server, page, clean_dovecot):
    account_id = dovecot_mailbox_with_folders(live_server, clean_dovecot)
    login(page, live_server, "alice")
    page.click(f"tbody[data-account-id='{account_id}'] a.ooo-link")
    page.check("#enabled")
    page.fill("#starts_at", "2030-07-01T09:00")
    page.fill("#ends_at", "2030-06-01T09:00")
    page.fill("#body", "")
    page.click("button:has-text('Save')")
    expect(page.locator(".error[data-field='ends_at']")).to_contain_text("after the start")
    expect(page.locator(".error[data-field='body']")).to_be_visible()
    page.fill("#ends_at", "2030-07-15T18:00")
    page.fill("#subject", "Away until mid-July")
    page.fill("#body", "I am on holiday; back on 15 July.")
    page.fill("#interval_days", "7")
    page.click("button:has-text('Save')")
    expect(page.locator(".flash-success")).to_contain_text("saved")
    expect(page.locator("#ends_at")).to_have_value("2030-07-15T18:00")
    shot(page, "out-of-office")
    with live_server.app.app_context():
        row = db.session.get(OutOfOffice, account_id)
        assert row.enabled and row.interval_days == 7 and row.subject == "Away until mid-July"
        assert (
            row.starts_at.isoformat() == "2030-07-01T09:00:00"
            and row.ends_at.isoformat() == "2030-07-15T18:00:00"
        )
        db.session.remove()


def test_create_reorder_and_run_a_filter(live_server, page, clean_dovecot, tmp_path):
    clean_dovecot.create_folder("alice", "Receipts")
    account_id = dovecot_mailbox_with_folders(live_server, clean_dovecot)
    clean_dovecot.add_message(
        "alice", "From: shop@store.test\r\nTo: alice@example.com\r\nSubject: Your receipt\r\n\r\nThanks.\r\n"
    )
    clean_dovecot.add_message(
        "alice", "From: bob@ext.test\r\nTo: alice@example.com\r\nSubject: Hello\r\n\r\nHi.\r\n"
    )
    with live_server.app.app_context():
        sync_account(account_id)
        receipts = Folder.query.filter_by(account_id=account_id, name="Receipts").one().id
        db.session.remove()
    login(page, live_server, "alice")
    page.click(f"tbody[data-account-id='{account_id}'] a.filters-link")
    expect(page.locator("#no-filters")).to_be_visible()
    page.click("#add-filter")
    page.fill("#name", "Receipts")
    row = page.locator(".cond-row").first
    row.locator("select[name=cond_field]").select_option("subject")
    row.locator("input[name=cond_value]").fill("")
    page.locator(".act-row").first.locator("select[name=act_type]").select_option("move")
    page.click("button:has-text('Save filter')")  # empty value, no folder: refused row by row
    expect(page.locator(".error[data-field='conditions[0].value']")).to_be_visible()
    expect(page.locator(".error[data-field='actions[0].folder_id']")).to_be_visible()
    page.locator(".cond-row").first.locator("input[name=cond_value]").fill("receipt")
    page.locator(".act-row").first.locator("select[name=act_folder]").select_option(str(receipts))
    page.click("#add-condition")
    second = page.locator(".cond-row").nth(1)
    second.locator("select[name=cond_field]").select_option("header")
    expect(second.locator("input[name=cond_header]")).to_be_visible()
    second.locator("input[name=cond_header]").fill("X-Shop")
    second.locator("input[name=cond_value]").fill("yes")
    page.select_option("#match", "any")
    page.click("#add-action")
    page.locator(".act-row").nth(1).locator("select[name=act_type]").select_option("mark_read")
    expect(page.locator(".act-row").nth(1).locator("select[name=act_folder]")).to_be_hidden()
    page.click("button:has-text('Save filter')")
    expect(page.locator(".flash-success")).to_contain_text("Filter added")
    expect(page.locator("#filters tbody tr")).to_have_count(1)
    expect(page.locator("#filters")).to_contain_text("move to Receipts, mark as read")

    # A second rule, then moved to the top.
    page.click("#add-filter")
    page.fill("#name", "Flag Bob")
    page.locator(".cond-row").first.locator("input[name=cond_value]").fill("bob@")
    page.locator(".act-row").first.locator("select[name=act_type]").select_option("flag")
    page.click("button:has-text('Save filter')")
    page.locator("tr:has-text('Flag Bob') button[data-action=up]").click()
    expect(page.locator("#filters tbody tr").first.locator(".filter-name")).to_have_text("Flag Bob")
    with live_server.app.app_context():
        assert [f.name for f in Filter.query.order_by(Filter.position)] == ["Flag Bob", "Receipts"]
        db.session.remove()

    # Run now on the inbox, with a real worker serving the queue.
    from tests.support.job_worker import WorkerProcess

    page.select_option("#run-folder", label="INBOX")
    worker = WorkerProcess(live_server.app, tmp_path, burst=False).start()
    try:
        worker.wait_ready()
        page.click("#run-filters")
        expect(page.locator("#run-status.done")).to_contain_text(
            "2 of 2 messages matched: 1 moved", timeout=30_000
        )
    finally:
        worker.stop()
    shot(page, "filters")
    with imap_login(clean_dovecot) as imap:
        imap.select_folder("Receipts", readonly=True)
        assert len(imap.search("ALL")) == 1
        imap.select_folder("INBOX", readonly=True)
        (uid,) = imap.search("ALL")
        assert b"\\Flagged" in imap.get_flags([uid])[uid]
