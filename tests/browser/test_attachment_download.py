"""In Chromium: a synced message's preview is its text, and its attachment downloads by its own name.

The message is on the real Dovecot and synced by the real sync job; the body is fetched by the
real body job; the download is Chromium's own (suggested file name from Content-Disposition).
"""

from __future__ import annotations

import email.message

from tests.browser.conftest import login, shot
from tests.support.job_worker import run_burst
from tests.support.sync_support import make_mailbox
from webapp import settings_store
from webapp.extensions import db
from webapp.jobs.sync import sync_account
from webapp.models import Message, User

NAME = "Fattura März – 日本.pdf"
DATA = b"%PDF-1.4 " + bytes(range(256)) * 8


def _synced_message(live, dovecot) -> tuple[int, int]:
    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Carol <carol@example.com>", "alice@example.com", "Invoice"
    msg.set_content("Grüße! Die Rechnung für März ist angehängt.\n", cte="base64")
    msg.add_alternative("<p>Grüße! Die Rechnung für <b>März</b> ist angehängt.</p>", subtype="html")
    msg.add_attachment(DATA, maintype="application", subtype="pdf", filename=NAME)
    msg.add_attachment(b"<script>alert(1)</script>", maintype="text", subtype="html", filename="page.html")
    dovecot.add_message("alice", msg)
    with live.app.app_context():
        settings_store.update({"allowed_internal_hosts": ["127.0.0.1"]})
        account = make_mailbox(dovecot, owner=db.session.get(User, live.users["alice"]["id"]))
        assert sync_account(account.id)["ok"]
        message = Message.query.filter_by(account_id=account.id).one()
        ids = message.id, message.folder_id
        db.session.remove()
    return ids


def test_attachment_with_a_non_ascii_name_downloads_with_its_name_and_bytes(live_server, page, clean_dovecot):
    message_id, folder_id = _synced_message(live_server, clean_dovecot)
    login(page, live_server, "alice")
    page.goto(f"{live_server.url}/messages/?folder={folder_id}")
    row = page.locator(f"#messages tr[data-id='{message_id}']")
    # The preview is the decoded text part, not base64 or MIME headers.
    assert "Grüße! Die Rechnung für März ist angehängt." in row.locator(".preview").inner_text()

    row.locator("a.open").click()
    page.wait_for_selector("#body-pending")
    run_burst(live_server.app)
    page.wait_for_selector("#attachments a.attachment")
    links = page.locator("#attachments a.attachment")
    assert links.all_inner_texts() == [NAME, "page.html"]
    shot(page, "message-attachments")

    with page.expect_download() as info:
        links.nth(0).click()
    download = info.value
    assert download.suggested_filename == NAME
    with open(download.path(), "rb") as fh:
        assert fh.read() == DATA

    # The HTML attachment is a download too (never rendered on Mailroom's origin).
    with page.expect_download() as info:
        links.nth(1).click()
    assert info.value.suggested_filename == "page.html"
    assert page.url.endswith(f"/messages/{message_id}")
