"""A user chooses folders to sync and the Sent folder on the folder page, in Chromium, against Dovecot."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.job_worker import run_burst
from webapp.extensions import db
from webapp.models import Folder

from .conftest import login, shot
from .helpers import dovecot_mailbox_with_folders

pytestmark = pytest.mark.browser


def _folders(live, account_id) -> dict[str, tuple[bool, str | None]]:
    with live.app.app_context():
        out = {f.display_name: (f.sync, f.role) for f in Folder.query.filter_by(account_id=account_id)}
        db.session.remove()
        return out


def test_user_picks_folders_and_the_sent_folder(live_server, page, clean_dovecot):
    for name in ("Entrata/Posta ricevuta", "Über", "Posta inviata"):
        clean_dovecot.create_folder("alice", name)
    account_id = dovecot_mailbox_with_folders(live_server, clean_dovecot)

    login(page, live_server, "alice")
    page.click(f'tbody[data-account-id="{account_id}"] a.folders-link')
    expect(page).to_have_url(re.compile(rf"/mailboxes/{account_id}/folders$"))
    table = page.locator("#folders")
    expect(table).to_contain_text("Über")
    expect(table).to_contain_text("Posta ricevuta")
    # The parent "Entrata" only groups folders: listed, but its box cannot be ticked.
    expect(page.locator('tr[data-name="Entrata"] input[name=sync]')).to_be_disabled()
    expect(page.locator('tr[data-name="INBOX"] input[name=sync]')).to_be_checked()
    expect(page.locator("#role_sent option:checked")).to_have_text("Sent")

    page.check('tr[data-name="Über"] input[name=sync]')
    page.select_option("#role_sent", label="Posta inviata")
    shot(page, "folders")
    page.click("#save-folders")

    expect(page.locator(".flash-success")).to_contain_text("Folder settings saved.")
    page.reload()
    expect(page.locator('tr[data-name="Über"] input[name=sync]')).to_be_checked()
    expect(page.locator("#role_sent option:checked")).to_have_text("Posta inviata")
    saved = _folders(live_server, account_id)
    assert saved["Über"] == (True, None)
    assert saved["Posta inviata"][1] == "sent" and saved["Sent"][1] is None

    # "Refresh folder list": the job runs, the table comes back with the new folder, choices kept.
    clean_dovecot.create_folder("alice", "Fatture 2024")
    with page.expect_response(lambda r: r.url.endswith("/folders/refresh")) as answer:
        page.click("#refresh-folders")
    assert answer.value.status == 202
    expect(page.locator("#refresh-status")).to_contain_text("Refreshing")
    run_burst(live_server.app)
    expect(page.locator("#refresh-status")).to_contain_text("Folder list refreshed", timeout=15_000)
    expect(page.locator("#folders")).to_contain_text("Fatture 2024")
    expect(page.locator("#role_sent option:checked")).to_have_text("Posta inviata")
    expect(page.locator('tr[data-name="Über"] input[name=sync]')).to_be_checked()
