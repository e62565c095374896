"""Attachment downloads of received (synced from Dovecot) and sent messages: API and pages.

Received attachments come from the cached body, fetched by the real body job when not cached;
sent ones from the outgoing message.  Access is the message's: another user's is a 404.
"""

from __future__ import annotations

import base64
import email.message
from urllib.parse import quote

import pytest

from tests.conftest import login
from tests.support.job_worker import run_burst
from tests.support.sync_support import make_mailbox
from webapp import settings_store
from webapp.extensions import db
from webapp.jobs.sync import sync_account
from webapp.models import Message

NAME = "Fattura März – 日本.pdf"
PDF = b"%PDF-1.4 " + bytes(range(256)) * 4
HTML = b"<script>alert(document.cookie)</script>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'


@pytest.fixture
def local(app):
    settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
    db.session.commit()


@pytest.fixture
def received(app, local, users, clean_dovecot) -> Message:
    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "carol@example.com", "alice@example.com", "Invoice"
    msg.set_content("See the attachments.\n")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename=NAME)
    msg.add_attachment(HTML, maintype="text", subtype="html", filename="page.html")
    msg.add_attachment(SVG, maintype="image", subtype="svg+xml", filename="../../logo.svg")
    clean_dovecot.add_message("alice", msg)
    account = make_mailbox(clean_dovecot, owner=users["alice"]["user"])
    assert sync_account(account.id)["ok"]
    return Message.query.filter_by(account_id=account.id).one()


def _assert_download(response, filename: str, content_type: str, data: bytes) -> None:
    """A download: RFC 6266 name (``filename*=UTF-8''…`` when not ASCII), neutral and sandboxed."""
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == content_type
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    if filename.isascii():
        assert f"filename={filename}" in disposition
    else:
        assert f"filename*=UTF-8''{quote(filename)}" in disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"].startswith("sandbox")
    assert response.get_data() == data


def test_received_attachments_download_from_the_cached_body(api, client, users, received):
    url = f"/api/v1/messages/{received.id}/attachments/1"
    # Not cached yet: the body job is queued, as for the message itself.
    pending = api["alice"].get(url)
    assert pending.status_code == 202 and pending.json["status_url"].startswith("/api/v1/jobs/")
    run_burst()
    body = api["alice"].get(f"/api/v1/messages/{received.id}").json["body"]
    assert [(a["number"], a["filename"], a["download_url"]) for a in body["attachments"]] == [
        (1, NAME, url),
        (2, "page.html", f"/api/v1/messages/{received.id}/attachments/2"),
        (3, "../../logo.svg", f"/api/v1/messages/{received.id}/attachments/3"),
    ]
    _assert_download(api["alice"].get(url), NAME, "application/pdf", PDF)
    # HTML and SVG never go out as a document type of Mailroom's origin.
    _assert_download(
        api["alice"].get(body["attachments"][1]["download_url"]),
        "page.html",
        "application/octet-stream",
        HTML,
    )
    _assert_download(
        api["alice"].get(body["attachments"][2]["download_url"]), "logo.svg", "application/octet-stream", SVG
    )
    assert api["alice"].get(f"/api/v1/messages/{received.id}/attachments/4").status_code == 404
    assert api["bob"].get(url).status_code == 404

    # The message page links each attachment; the link downloads the same bytes.
    login(client, "alice", users["alice"]["password"])
    page = client.get(f"/messages/{received.id}").get_data(as_text=True)
    web_url = f"/messages/{received.id}/attachments/1"
    assert f'href="{web_url}"' in page
    _assert_download(client.get(web_url), NAME, "application/pdf", PDF)
    client.post("/logout")
    login(client, "bob", users["bob"]["password"])
    assert client.get(web_url).status_code == 404


def test_a_received_attachment_not_cached_yet_is_fetched_first(client, users, received):
    login(client, "alice", users["alice"]["password"])
    web_url = f"/messages/{received.id}/attachments/1"
    response = client.get(web_url)
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/messages/{received.id}")
    run_burst()
    _assert_download(client.get(web_url), NAME, "application/pdf", PDF)


def test_sent_attachments_download_by_their_owner_only(
    app, api, client, users, clean_dovecot, clean_smtp_server
):
    from tests.support.send_support import sending_mailbox

    sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"])
    files = [(NAME, "application/pdf", PDF), ("page.html", "text/html", HTML)]
    response = api["alice"].post(
        "/api/v1/messages/send",
        json={
            "to": ["bob@example.org"],
            "subject": "With files",
            "text": "Files.",
            "attachments": [
                {"filename": n, "content_type": t, "content_base64": base64.b64encode(d).decode()}
                for n, t, d in files
            ],
        },
    )
    assert response.status_code == 202, response.json
    row_id = response.json["id"]
    listed = api["alice"].get(f"/api/v1/outgoing/{row_id}").json["attachments"]
    assert [a["filename"] for a in listed] == [NAME, "page.html"]
    first, second = listed
    assert first["download_url"] == f"/api/v1/outgoing/{row_id}/attachments/{first['id']}"
    _assert_download(api["alice"].get(first["download_url"]), NAME, "application/pdf", PDF)
    _assert_download(api["alice"].get(second["download_url"]), "page.html", "application/octet-stream", HTML)
    assert api["bob"].get(first["download_url"]).status_code == 404
    assert api["alice"].get(f"/api/v1/outgoing/{row_id}/attachments/{second['id'] + 100}").status_code == 404

    login(client, "alice", users["alice"]["password"])
    web_url = f"/compose/outgoing/{row_id}/attachments/{first['id']}"
    assert f'href="{web_url}"' in client.get(f"/compose/outgoing/{row_id}").get_data(as_text=True)
    _assert_download(client.get(web_url), NAME, "application/pdf", PDF)
    client.post("/logout")
    login(client, "bob", users["bob"]["password"])
    assert client.get(web_url).status_code == 404
