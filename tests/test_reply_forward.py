"""Reply, Reply all and Forward: the rules (webapp.replies, webapp.quoting) and the whole path.

The rules are checked on their own (subjects, References, recipients, From, quote, signature);
then a reply from the compose page and a forward through the API go through the real send path:
the original is delivered to Dovecot, synced, its body fetched by the body job, and the answer
sent through aiosmtpd with its Sent copy appended to Dovecot — both checked for In-Reply-To,
References and the forwarded attachments.
"""

from __future__ import annotations

import email.message
import json
import re

import pytest

from tests.conftest import login
from tests.support.job_worker import run_burst
from tests.support.message_factory import make_account, make_folder, make_message
from tests.support.send_support import parsed, sending_mailbox
from tests.support.sync_support import imap_login
from webapp import replies
from webapp.body_cache import mark_gone
from webapp.extensions import db
from webapp.jobs.sync import sync_account
from webapp.models import Alias, Message, MessageBody, OutgoingMessage

pytestmark = pytest.mark.usefixtures("fresh_plugins")


# -- subjects and thread headers (pure) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "reply", "forward"),
    [
        ("Budget", "Re: Budget", "Fwd: Budget"),
        ("Re: Budget", "Re: Budget", "Fwd: Re: Budget"),
        ("RE: re:  Re[2]: Budget", "Re: Budget", "Fwd: RE: re:  Re[2]: Budget"),
        ("AW: R: Odp: Budget", "Re: Budget", "Fwd: AW: R: Odp: Budget"),
        ("Fwd: FW: Budget", "Re: Fwd: FW: Budget", "Fwd: Budget"),
        ("Re: Fwd: Budget", "Re: Fwd: Budget", "Fwd: Re: Fwd: Budget"),
        ("", "Re:", "Fwd:"),
        ("Rebate: 10%", "Re: Rebate: 10%", "Fwd: Rebate: 10%"),
    ],
)
def test_subject_gets_one_prefix_never_stacked(subject, reply, forward):
    assert replies.reply_subject(subject) == reply
    assert replies.forward_subject(subject) == forward


def test_references_are_the_parents_references_then_its_message_id():
    # The parent's References, then its Message-ID: the thread stays one.
    assert replies.thread_headers("<c@x>", "<a@x> <b@x>", "<b@x>") == ("<c@x>", "<a@x> <b@x> <c@x>")
    # No References but a single In-Reply-To: that, then the Message-ID (RFC 5322 3.6.4).
    assert replies.thread_headers("<c@x>", None, "<b@x>") == ("<c@x>", "<b@x> <c@x>")
    assert replies.thread_headers("<c@x>", None, "<a@x> <b@x>") == ("<c@x>", "<c@x>")
    # The first message of a thread; junk and repeats dropped; no Message-ID: no In-Reply-To.
    assert replies.thread_headers("<c@x>", None, None) == ("<c@x>", "<c@x>")
    assert replies.thread_headers("<c@x>", "junk <a@x> <c@x> <a@x>", None) == ("<c@x>", "<a@x> <c@x>")
    assert replies.thread_headers(None, "<a@x>", None) == (None, "<a@x>")
    # A very long chain keeps the first message and the latest ones.
    chain = " ".join(f"<{i}@x>" for i in range(60))
    _, refs = replies.thread_headers("<new@x>", chain, None)
    ids = refs.split()
    assert len(ids) == replies.MAX_REFERENCES and ids[0] == "<0@x>" and ids[-2:] == ["<59@x>", "<new@x>"]


# -- recipients, From, quote and signature (database, no servers) ----------------------------------


def _original(folder, **headers) -> replies.Original:
    """A message as sync stores it plus its raw bytes cached, with ``headers`` (``Reply_To`` …)."""
    mail = email.message.EmailMessage()
    for name, value in headers.items():
        if name not in ("body", "html"):
            mail[name.replace("_", "-")] = value
    mail.set_content(headers.get("body", "Line one\n> earlier\n\nLine three"))
    if headers.get("html"):
        mail.add_alternative(headers["html"], subtype="html")
    row = make_message(
        folder,
        subject=headers.get("Subject", ""),
        from_addr="x@example.org",
        message_id=headers.get("Message_ID"),
    )
    db.session.add(MessageBody(message_pk=row.id, raw=mail.as_bytes()))
    db.session.commit()
    return replies.original_of(row, mail.as_bytes())


@pytest.fixture
def app(send_app):
    return send_app


@pytest.fixture
def alice_boxes(app, users):
    alice = users["alice"]["user"]
    main = make_account(alice.id, "alice@example.com", state="connected", is_main=True, active=True)
    work = make_account(alice.id, "alice@work.example", state="connected", active=True)
    db.session.add(Alias(account_id=work.id, address="sales@work.example", display_name="Sales"))
    db.session.commit()
    return alice, main, work, make_folder(work)


def test_reply_all_drops_own_addresses_and_aliases_and_repeats(alice_boxes):
    alice, _main, _work, inbox = alice_boxes
    original = _original(
        inbox,
        From="Carol <carol@example.org>",
        Reply_To="Team list <team@example.org>",
        To="Sales <sales@work.example>, Dan <dan@example.org>, alice@example.com",
        Cc='"Doe, Erin" <erin@example.org>, DAN@example.org, carol@example.org',
        Subject="Offer",
    )
    draft = replies.build(alice, "reply", original)
    assert draft.to == ["Team list <team@example.org>"] and draft.cc == []  # Reply-To honoured
    draft = replies.build(alice, "reply_all", original)
    assert draft.to == ["Team list <team@example.org>", "Dan <dan@example.org>"]
    assert draft.cc == ['"Doe, Erin" <erin@example.org>', "carol@example.org"]
    # From: the alias the message was sent to, in the mailbox it came to.
    assert draft.sender["email"] == "sales@work.example" and draft.subject == "Re: Offer"
    assert replies.build(alice, "forward", original).to == []


def test_reply_to_ones_own_message_goes_to_its_recipients(alice_boxes):
    alice, _main, work, _inbox = alice_boxes
    sent = make_folder(work, "Sent", role="sent")
    original = _original(
        sent, From="alice@work.example", To="bob@example.org", Cc="alice@example.com, eve@example.org"
    )
    draft = replies.build(alice, "reply", original)
    assert draft.to == ["bob@example.org"] and draft.sender["email"] == "alice@work.example"
    draft = replies.build(alice, "reply_all", original)
    assert draft.to == ["bob@example.org"] and draft.cc == ["eve@example.org"]


def test_from_falls_back_to_the_mailbox_the_message_is_in(alice_boxes):
    alice, _main, _work, inbox = alice_boxes
    original = _original(inbox, From="carol@example.org", To="undisclosed-recipients:;")
    assert replies.build(alice, "reply", original).sender["email"] == "alice@work.example"
    bcc_to_main = _original(inbox, From="carol@example.org", Delivered_To="alice@example.com")
    assert replies.build(alice, "reply", bcc_to_main).sender["email"] == "alice@example.com"


def test_quote_text_and_html_with_the_signature_once_above_it(alice_boxes):
    alice, _main, work, inbox = alice_boxes
    work.signature_mode, work.signature_text = "custom", "Alice\nWork Ltd"
    db.session.commit()
    original = _original(
        inbox,
        From="Carol <carol@example.org>",
        To="alice@work.example",
        Date="Tue, 03 Mar 2026 12:00:00 +0000",
        Message_ID="<orig@example.org>",
        References="<root@example.org>",
        html='<p onclick="x()">Hello <b>there</b></p><script>alert(1)</script><img src="https://t.example/p.png">',
    )
    draft = replies.build(alice, "reply", original, text="Thanks!")
    text = draft.text
    assert text.startswith("Thanks!\n\n-- \nAlice\nWork Ltd\n\nOn ")
    assert "Carol <carol@example.org> wrote:\n> Line one\n>> earlier\n>\n> Line three" in text
    assert "2026" in text.split("wrote:")[0] and text.count("Work Ltd") == 1
    html = draft.html
    assert html.index("Work Ltd") < html.index("<blockquote>") and html.count("Work Ltd") == 1
    assert "<b>there</b>" in html and "script" not in html and "onclick" not in html and "<img" not in html
    assert (draft.in_reply_to, draft.references) == (
        "<orig@example.org>",
        "<root@example.org> <orig@example.org>",
    )

    forward = replies.build(alice, "forward", original)
    assert forward.in_reply_to is None and forward.references == draft.references
    assert forward.subject == "Fwd:" and forward.text.count("Work Ltd") == 1
    block = forward.text.split("---------- Forwarded message ----------\n", 1)[1]
    assert (
        block.startswith("From: Carol <carol@example.org>\nDate: ") and "\nTo: alice@work.example\n" in block
    )
    assert "\n\nLine one\n> earlier\n" in block  # forwarded as it was, not quoted

    # Texts written into the mail follow the sender's language, not the page's.
    alice.language, alice.time_zone = "it", "Europe/Rome"
    db.session.commit()
    italian = replies.build(alice, "reply", original).text
    assert "3 mar 2026, 13:00:00" in italian and "Mar 3, 2026" not in italian  # 12:00 UTC in Rome


def test_a_styled_html_signature_keeps_its_inline_style_in_the_sent_reply(alice_boxes, client, users):
    """The reply page's HTML draft holds the signature; posted back as the message, it passes the
    OUTGOING policy and keeps the signature's layout style (the properties a signature may use),
    as a new message's signature does; what could load a URL or move the page is still removed."""
    alice, _main, work, inbox = alice_boxes
    work.signature_mode = "custom"
    work.signature_html = ('<p style="color:#1d4fb3; font-weight:bold; position:absolute; '
                           'background:url(https://t.example/x.png)">Alice Example</p>')  # fmt: skip
    db.session.commit()
    original = _original(inbox, From="Carol <carol@example.org>", To="alice@work.example",
                         Subject="Offer", Message_ID="<offer@example.org>", html="<p>Our offer</p>")  # fmt: skip
    login(client, "alice", users["alice"]["password"])
    page = client.get(f"/compose/reply/{original.message.id}").get_data(as_text=True)
    draft_html = page.split('id="draft-html" aria-hidden="true">', 1)[1].split("</textarea>", 1)[0]
    draft_html = draft_html.replace("&lt;", "<").replace("&gt;", ">").replace("&#34;", '"').replace("&quot;", '"')
    assert 'style="color:#1d4fb3;font-weight:bold"' in draft_html.replace("; ", ";")
    sent = client.post(f"/compose/reply/{original.message.id}", data={
        "from": "alice@work.example", "to": "carol@example.org", "subject": "Re: Offer",
        "body": draft_html.replace("&amp;", "&"), "as_html": "1"})  # fmt: skip
    assert sent.status_code == 302, sent.get_data(as_text=True)[:500]
    row = OutgoingMessage.query.one()
    (style,) = re.findall(r'<p style="([^"]*)">Alice Example</p>', row.html_body)
    assert style.replace(" ", "") == "color:#1d4fb3;font-weight:bold"
    assert "position" not in row.html_body and "url(" not in row.html_body


# -- the whole path: sync, fetch, reply from the page, forward through the API ----------------------


@pytest.fixture
def mailbox(app, users, clean_dovecot, clean_smtp_server):
    account = sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"])
    account.signature_mode, account.signature_text = "custom", "Alice Example"
    db.session.commit()
    return account


def _deliver_original(dovecot) -> str:
    mail = email.message.EmailMessage()
    mail["From"] = "Carol <carol@example.org>"
    mail["Reply-To"] = "carol.desk@example.org"
    mail["To"] = "alice@example.com, dan@example.org"
    mail["Subject"] = "Re: Contract"
    mail["Date"] = "Tue, 03 Mar 2026 12:00:00 +0000"
    mail["Message-ID"] = "<contract-2@example.org>"
    mail["In-Reply-To"] = "<contract-1@example.org>"
    mail["References"] = "<contract-1@example.org>"
    mail.set_content("Please sign the contract.\nCarol")
    mail.add_attachment(b"%PDF-1.4 contract", maintype="application", subtype="pdf", filename="contract.pdf")
    mail.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="prices.csv")
    dovecot.add_message("alice", mail)
    return "<contract-2@example.org>"


def _sent_copy(dovecot, message_id: str):
    with imap_login(dovecot) as client:
        client.select_folder("Sent", readonly=True)
        uids = client.search(["HEADER", "Message-ID", message_id])
        assert len(uids) == 1, uids
        return parsed(client.fetch(uids, ["BODY.PEEK[]"])[uids[0]][b"BODY[]"])


def test_reply_from_the_page_and_forward_through_the_api(
    app, client, api, users, mailbox, clean_dovecot, smtp_server
):
    _deliver_original(clean_dovecot)
    assert sync_account(mailbox.id)["ok"]
    original = Message.query.filter_by(account_id=mailbox.id, message_id="<contract-2@example.org>").one()
    login(client, "alice", users["alice"]["password"])

    # The message page offers the three actions.
    page = client.get(f"/messages/{original.id}").get_data(as_text=True)
    for action in ("reply", "reply-all", "forward"):
        assert f'href="/compose/{action}/{original.id}"' in page

    # Not fetched yet: the API answers 202 with the fetch job, the page says so (same job);
    # after the job, the form is filled.
    pending = api["alice"].post(f"/api/v1/messages/{original.id}/reply")
    assert pending.status_code == 202 and pending.json["draft"] is None and pending.json["status_url"]
    waiting = client.get(f"/compose/reply/{original.id}")
    assert waiting.status_code == 200 and b'id="original-pending"' in waiting.data
    assert b'id="compose-form"' not in waiting.data
    run_burst()
    form = client.get(f"/compose/reply-all/{original.id}").get_data(as_text=True)
    assert 'value="carol.desk@example.org, dan@example.org"' in form  # Reply-To, others; not alice
    assert 'value="Re: Contract"' in form and "&gt; Please sign the contract." in form

    # A refused field comes back named, with the forward's choice of attachments kept.
    refused = client.post(
        f"/compose/forward/{original.id}",
        data={
            "to": "not-an-address",
            "subject": "Fwd",
            "body": "x",
            "forward_attachment": "2",
            "action": "send",
        },
    )
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and 'data-field="to"' in page
    assert 'value="1" >' in page and 'value="2" checked>' in page

    reply = client.post(
        f"/compose/reply/{original.id}",
        data={
            "from": "alice@example.com",
            "to": "carol.desk@example.org",
            "subject": "Re: Contract",
            "body": "Signed.\n\n-- \nAlice Example\n\nOn …, Carol wrote:\n> Please sign the contract.",
            "action": "send",
        },
    )
    assert reply.status_code == 302, reply.get_data(as_text=True)
    run_burst()
    row = OutgoingMessage.query.filter_by(origin="reply").one()
    assert row.state == "sent", (row.error, row.error_class)
    (received,) = smtp_server.messages
    msg = parsed(received.data)
    assert msg["In-Reply-To"] == "<contract-2@example.org>"
    assert msg["References"] == "<contract-1@example.org> <contract-2@example.org>"
    text = msg.get_body(("plain",)).get_content()
    assert text.count("Alice Example") == 1 and text.index("Alice Example") < text.index("> Please sign")
    copy = _sent_copy(clean_dovecot, row.message_id)
    assert copy["References"] == msg["References"] and copy["In-Reply-To"] == msg["In-Reply-To"]
    # Synced back, the Sent copy is in the original's thread.
    assert sync_account(mailbox.id)["ok"]
    synced = Message.query.filter_by(account_id=mailbox.id, message_id=row.message_id).one()
    assert synced.thread_key == original.thread_key == "<contract-1@example.org>"

    # The API: a draft first, then a forward of one of the two attachments, sent.
    draft = api["alice"].post(f"/api/v1/messages/{original.id}/forward", json={})
    assert draft.status_code == 200, draft.json
    assert draft.json["subject"] == "Fwd: Re: Contract" and draft.json["to"] == []
    assert [a["filename"] for a in draft.json["attachments"]] == ["contract.pdf", "prices.csv"]
    assert draft.json["references"] == "<contract-1@example.org> <contract-2@example.org>"
    assert api["bob"].post(f"/api/v1/messages/{original.id}/forward", json={}).status_code == 404
    refused = api["alice"].post(
        f"/api/v1/messages/{original.id}/forward", json={"forward_attachments": [7], "colour": 1}
    )
    assert refused.status_code == 422 and set(refused.json["fields"]) == {"forward_attachments", "colour"}
    foreign = api["alice"].post(f"/api/v1/messages/{original.id}/reply", json={"from": "bob@example.com"})
    assert foreign.status_code == 403 and "from" in foreign.json["fields"]

    sent = api["alice"].post(
        f"/api/v1/messages/{original.id}/forward",
        json={"send": True, "to": ["erin@example.org"], "text": "FYI", "forward_attachments": [1]},
        headers={"Idempotency-Key": "fwd-1"},
    )
    assert sent.status_code == 202, sent.json
    run_burst()
    forwarded = OutgoingMessage.query.filter_by(origin="forward").one()
    assert forwarded.state == "sent", (forwarded.error, forwarded.error_class)
    msg = parsed(smtp_server.messages[-1].data)
    assert str(msg["Subject"]) == "Fwd: Re: Contract" and msg["In-Reply-To"] is None
    assert msg["References"] == "<contract-1@example.org> <contract-2@example.org>"
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("FYI\n\n-- \nAlice Example\n\n") and text.count("Alice Example") == 1
    assert "Subject: Re: Contract" in text and "Please sign the contract." in text
    (attachment,) = msg.iter_attachments()
    assert attachment.get_filename() == "contract.pdf" and attachment.get_content() == b"%PDF-1.4 contract"
    copy = _sent_copy(clean_dovecot, forwarded.message_id)
    assert [a.get_filename() for a in copy.iter_attachments()] == ["contract.pdf"]
    # The same Idempotency-Key answers the same message again.
    again = api["alice"].post(
        f"/api/v1/messages/{original.id}/forward",
        json={"send": True, "to": ["erin@example.org"], "text": "FYI", "forward_attachments": [1]},
        headers={"Idempotency-Key": "fwd-1"},
    )
    assert again.status_code == 202 and again.json["id"] == sent.json["id"]
    assert json.loads(forwarded.to_addrs) == ["erin@example.org"]

    # Reply all through the API with HTML: the quote in a blockquote, the signature once above it.
    answered = api["alice"].post(
        f"/api/v1/messages/{original.id}/reply-all",
        json={"send": True, "html": "<p>Agreed<script>x()</script></p>"},
    )
    assert answered.status_code == 202, answered.json
    run_burst()
    msg = parsed(smtp_server.messages[-1].data)
    assert [str(msg["To"])] == ["carol.desk@example.org, dan@example.org"] and msg["Cc"] is None
    html = msg.get_body(("html",)).get_content()
    assert html.index("Agreed") < html.index("Alice Example") < html.index("<blockquote>")
    assert html.count("Alice Example") == 1 and "script" not in html and "Please sign the contract." in html
    assert msg.get_body(("plain",)).get_content().startswith("Agreed")  # the text part says it too

    # A message no longer on the server: the API says so (404), the page goes back to the message.
    mark_gone(original.id)
    gone = api["alice"].post(f"/api/v1/messages/{original.id}/reply", json={})
    assert gone.status_code == 404 and "no longer on the server" in gone.json["error"]
    back = client.get(f"/compose/reply/{original.id}")
    assert back.status_code == 302 and back.location.endswith(f"/messages/{original.id}")


def test_the_signature_note_shows_only_when_the_reply_has_a_signature(alice_boxes, client, users):
    """"Your signature is in the message" was said for a mailbox without a signature."""
    alice, _main, work, inbox = alice_boxes
    original = _original(inbox, From="Carol <carol@example.org>", To="alice@work.example", Subject="Hi")
    login(client, "alice", users["alice"]["password"])
    page = client.get(f"/compose/reply/{original.message.id}").get_data(as_text=True)
    assert 'id="signature-note" hidden>' in page
    work.signature_mode = "custom"
    work.signature_text = "Alice Example"
    db.session.commit()
    page = client.get(f"/compose/reply/{original.message.id}").get_data(as_text=True)
    assert 'id="signature-note">' in page and "Alice Example" in page
