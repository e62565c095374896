"""Previews come from the decoded text part, for every message: synced, downloaded over POP3, sent.

Real Dovecot (IMAP and POP3), real aiosmtpd and a real RQ worker; one function
(connectors.mime_text.preview) makes them all.
"""

from __future__ import annotations

import base64
from email.message import EmailMessage

import pytest

from tests.support.job_worker import run_burst
from tests.support.send_support import sending_mailbox
from tests.support.sync_support import make_mailbox
from webapp import message_bodies
from webapp.extensions import db
from webapp.jobs import pop3 as pop3_job
from webapp.jobs.sync import sync_account
from webapp.models import Folder, Message, OutgoingMessage

from .test_pop3_sync import make_account

JAPANESE = "日本語のテキストです。お元気ですか"
MIME_NOISE = ("Content-Type", "Content-Transfer-Encoding", "base64", "boundary", "==", "--")


pytestmark = pytest.mark.usefixtures("fresh_plugins")


@pytest.fixture
def app(send_app):
    return send_app


def _clean(preview: str) -> bool:
    return not any(noise in preview for noise in MIME_NOISE)


def test_a_sent_message_with_attachments_previews_its_text(app, api, users, clean_dovecot, clean_smtp_server):
    account = sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"])
    response = api["alice"].post(
        "/api/v1/messages/send",
        json={
            "to": ["bob@example.org"],
            "subject": "Budget",
            "text": f"{JAPANESE}\nGrüße aus Köln, the budget is attached.",
            "html": f"<p>{JAPANESE}</p><p>Grüße aus <b>Köln</b>, the budget is attached.</p>",
            "attachments": [
                {
                    "filename": "budget.pdf",
                    "content_type": "application/pdf",
                    "content_base64": base64.b64encode(b"%PDF-1.4 " + bytes(range(256)) * 20).decode(),
                }
            ],
        },
    )
    assert response.status_code == 202, response.json
    run_burst()
    assert db.session.get(OutgoingMessage, response.json["id"]).sent_copy_saved_at is not None
    assert sync_account(account.id)["ok"]

    sent = Folder.query.filter_by(account_id=account.id, role="sent").one()
    (message,) = Message.query.filter_by(folder_id=sent.id).all()
    assert message.preview.startswith(f"{JAPANESE} Grüße aus Köln, the budget is attached."), message.preview
    assert _clean(message.preview)


def _alternative_base64() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.org", "alice@example.com", "alternative"
    msg.set_content(f"{JAPANESE} plain wins.\n", cte="base64")
    msg.add_alternative(f"<p>{JAPANESE} html loses.</p>", subtype="html", cte="base64")
    msg.add_attachment(b"x" * 3000, maintype="application", subtype="octet-stream", filename="a.bin")
    return msg


def _html_only() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "b@example.org", "alice@example.com", "html only"
    msg.set_content(
        "<html><head><style>p { color: red }</style></head><body><p>Caf&eacute; &amp; cr&egrave;me"
        "</p><p>second <i>paragraph</i></p></body></html>",
        subtype="html",
        cte="quoted-printable",
    )
    return msg


def _attachment_first() -> EmailMessage:
    """A large attachment before the text: sync's first bytes never reach the text part."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "c@example.org", "alice@example.com", "scan first"
    msg.make_mixed()
    scan = EmailMessage()
    scan.set_content(
        bytes(range(256)) * 40, maintype="image", subtype="png", disposition="attachment", filename="scan.png"
    )
    text = EmailMessage()
    text.set_content("The scan is above; please sign it.", cte="quoted-printable")
    msg.attach(scan)
    msg.attach(text)
    return msg


EXPECTED = {
    "alternative": f"{JAPANESE} plain wins.",
    "html only": "Café & crème second paragraph",
    "scan first": "The scan is above; please sign it.",
}


def test_received_previews_come_from_the_decoded_text_part_over_imap_and_pop3(app, users, clean_dovecot):
    for msg in (_alternative_base64(), _html_only(), _attachment_first()):
        clean_dovecot.add_message("alice", msg)
    imap = make_mailbox(clean_dovecot, owner=users["alice"]["user"])
    assert sync_account(imap.id)["ok"]
    synced = {m.subject: m for m in Message.query.filter_by(account_id=imap.id)}
    assert synced["alternative"].preview == EXPECTED["alternative"]
    assert synced["html only"].preview == EXPECTED["html only"]
    # Sync's first bytes end inside the image: no text yet, and never the image's base64.
    assert synced["scan first"].preview == ""
    # Opening it fetches the whole message: the preview is then made from its text part.
    assert message_bodies.fetch_body(synced["scan first"].id)["ok"]
    db.session.expire_all()
    assert db.session.get(Message, synced["scan first"].id).preview == EXPECTED["scan first"]

    pop3 = make_account(users["bob"]["id"], clean_dovecot.pop3_port)
    pop3_job.download(pop3)
    downloaded = {m.subject: m.preview for m in Message.query.filter_by(account_id=pop3.id)}
    assert downloaded == EXPECTED
