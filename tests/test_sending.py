"""Sending through a connected mailbox, against the real Dovecot and the aiosmtpd server.

Jobs run in a real RQ worker on the test Redis (``SimpleWorker``, in this process) or, where a
test checks one run on its own, by calling the job function directly.
"""

from __future__ import annotations

import base64

import pytest

from connectors import plugins
from connectors.plugins import hookimpl
from tests.conftest import login
from tests.support.job_worker import run_burst
from tests.support.send_support import parsed, sending_mailbox, server_message_ids
from webapp.extensions import db
from webapp.jobs.send import send_outgoing
from webapp.jobs.sync import sync_account
from webapp.models import Account, Alias, Folder, LogEntry, Message, OutgoingMessage

pytestmark = pytest.mark.usefixtures("fresh_plugins")


@pytest.fixture
def app(send_app):
    return send_app


@pytest.fixture
def mailbox(app, users, clean_dovecot, clean_smtp_server):
    return sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"])


def outgoing(row_id: int) -> OutgoingMessage:
    db.session.expire_all()
    return db.session.get(OutgoingMessage, row_id)


def send(api_client, **fields):
    body = {"to": ["bob@example.org"], "subject": "Hello", "text": "Hi Bob.", **fields}
    return api_client.post("/api/v1/messages/send", json=body)


def test_send_arrives_with_headers_and_lands_once_in_sent(
    api, client, users, mailbox, clean_dovecot, smtp_server
):
    mailbox.signature_mode, mailbox.signature_text = "custom", "Alice Example\nSales"
    users["alice"]["user"].first_name, users["alice"]["user"].last_name = "Alice", "Ëxample"
    db.session.commit()
    response = send(
        api["alice"],
        to=["Bob Builder <bob@example.org>"],
        cc=["carol@example.net"],
        bcc=["secret@example.com"],
        subject="Réunion — budget",
        text="Bonjour Bob,\nvoici le budget.",
        html="<p>Bonjour <b>Bob</b></p><script>alert(1)</script>",
        attachments=[
            {
                "filename": "budget.csv",
                "content_type": "text/csv",
                "content_base64": base64.b64encode(b"a,b\n1,2\n").decode(),
            }
        ],
    )
    assert response.status_code == 202, response.json
    body = response.json
    assert body["state"] == "queued" and body["status_url"] == f"/api/v1/outgoing/{body['id']}"
    assert body["message_id"].startswith("<") and body["message_id"].endswith("@example.com>")
    run_burst()

    row = outgoing(body["id"])
    assert row.state == "sent", (row.error, row.error_class)
    assert row.smtp_accepted_at is not None and row.sent_copy_saved_at is not None and row.attempts == 1
    (received,) = smtp_server.messages
    assert received.mail_from == "alice@example.com" and received.login == "alice" and received.tls
    assert received.rcpt_tos == ["bob@example.org", "carol@example.net", "secret@example.com"]
    msg = parsed(received.data)
    assert msg["Message-ID"] == body["message_id"]
    assert str(msg["From"]) == "Alice Ëxample <alice@example.com>"
    assert str(msg["To"]) == "Bob Builder <bob@example.org>" and str(msg["Cc"]) == "carol@example.net"
    assert msg["Bcc"] is None and b"secret@example.com" not in received.data
    assert str(msg["Subject"]) == "Réunion — budget" and b"=?utf-8?" in received.data  # RFC 2047 on the wire
    assert msg["Date"] is not None
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Bonjour Bob,\nvoici le budget.") and "\n-- \nAlice Example\nSales" in text
    html = msg.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert "<b>Bob</b>" in html and "<script>" not in html and "Alice Example<br>" in html
    (attachment,) = msg.iter_attachments()
    assert attachment.get_filename() == "budget.csv" and attachment.get_content() == "a,b\n1,2\n"

    # The Sent copy is on the server once, seen, with the same Message-ID.
    assert server_message_ids(clean_dovecot) == [(body["message_id"], (rb"\Seen",))]
    # The next sync stores it once, and the unified Sent view shows it once.
    assert sync_account(mailbox.id)["ok"]
    rows = Message.query.filter_by(account_id=mailbox.id, message_id=body["message_id"]).all()
    assert len(rows) == 1
    login(client, "alice", users["alice"]["password"])
    page = client.get("/messages/?role=sent").get_data(as_text=True)
    assert page.count("Réunion — budget</a>") == 1  # one row (its checkbox's label names it too)

    status = api["alice"].get(body["status_url"]).json
    assert status["state"] == "sent" and status["error"] is None and status["sent_at"]
    assert api["bob"].get(body["status_url"]).status_code == 404
    log = LogEntry.query.filter_by(account_id=mailbox.id, source="Email Logger").all()
    assert any("Sent" in e.message and body["message_id"] in e.message for e in log)


def test_from_defaults_to_main_and_forbidden_from_is_403(
    app, api, users, mailbox, clean_dovecot, smtp_server
):
    bob_box = sending_mailbox(clean_dovecot, smtp_server, users["bob"]["user"], user="bob")
    assert [s["email"] for s in api["alice"].get("/api/v1/senders").json] == ["alice@example.com"]

    refused = send(api["alice"], **{"from": "bob@example.com"})
    assert refused.status_code == 403 and "from" in refused.json["fields"]
    refused = send(api["alice"], **{"from": "someone@else.example"})
    assert refused.status_code == 403
    assert OutgoingMessage.query.count() == 0

    # An alias of her mailbox is allowed, and goes through that mailbox.
    db.session.add(Alias(account_id=mailbox.id, address="sales@example.com", display_name="Sales"))
    db.session.commit()
    ok = send(api["alice"], **{"from": "sales@example.com"})
    assert ok.status_code == 202, ok.json
    assert outgoing(ok.json["id"]).account_id == mailbox.id

    # A shared sender (set by an administrator) is allowed to everyone, for sending only.
    bob_box = db.session.get(Account, bob_box.id)
    bob_box.shared_sender = True
    db.session.commit()
    senders = api["alice"].get("/api/v1/senders").json
    assert [(s["email"], s["kind"]) for s in senders] == [
        ("alice@example.com", "mailbox"),
        ("sales@example.com", "alias"),
        ("bob@example.com", "shared"),
    ]
    assert senders[0]["is_main"] is True
    shared = send(api["alice"], **{"from": "bob@example.com"})
    assert shared.status_code == 202
    assert outgoing(shared.json["id"]).account_id == bob_box.id
    # Bob's messages stay his: Alice's API does not show his mailbox.
    assert api["alice"].get(f"/api/v1/accounts/{bob_box.id}").status_code == 404

    default = send(api["alice"])
    assert outgoing(default.json["id"]).from_addr == "alice@example.com"
    run_burst()
    froms = sorted((m.mail_from, m.login) for m in smtp_server.messages)
    assert froms == [
        ("alice@example.com", "alice"),
        ("bob@example.com", "bob"),
        ("sales@example.com", "alice"),
    ]


def test_fields_are_validated_and_named(app, api, mailbox):
    cases = [
        ({"to": []}, "to"),
        ({"to": ["not-an-address"]}, "to"),
        ({"cc": "x@"}, "cc"),
        ({"bcc": [3]}, "bcc"),
        ({"text": None, "html": None}, "text"),
        ({"subject": "two\nlines"}, "subject"),
        ({"send_at": "2001-01-01T00:00:00Z"}, "send_at"),
        ({"send_at": "tomorrow"}, "send_at"),
        ({"attachments": [{"filename": "a.bin", "content_base64": "%%%"}]}, "attachments.0.content_base64"),
        ({"attachments": [{"content_base64": "aGk="}]}, "attachments.0.filename"),
        (
            {"attachments": [{"filename": "a", "content_type": "bad type", "content_base64": "aGk="}]},
            "attachments.0.content_type",
        ),
        ({"extra_headers": {"From": "x@y.z"}}, "extra_headers.From"),
        ({"in_reply_to": "no-brackets"}, "in_reply_to"),
        ({"colour": "red"}, "colour"),
        ({"from": "not an address"}, "from"),
    ]
    for fields, field in cases:
        response = send(api["alice"], **fields)
        assert response.status_code == 422, (fields, response.json)
        assert field in response.json["fields"], (fields, response.json)
    assert api["alice"].post("/api/v1/messages/send", data="x").status_code == 400
    assert OutgoingMessage.query.count() == 0


def test_attachment_size_limit(make_app, certs, users_factory=None):
    app = make_app(SEND_MAX_ATTACHMENT_BYTES=10)
    with app.app_context():
        from webapp.errors import Invalid
        from webapp.sending import create_outgoing
        from webapp.users import create_user

        user = create_user("dora", "dora-console-pw")
        db.session.add(
            Account(user_id=user.id, username="d", email="dora@example.com", is_main=True, manual=True)
        )
        db.session.commit()
        big = base64.b64encode(b"x" * 11).decode()
        with pytest.raises(Invalid) as exc:
            create_outgoing(
                user,
                {
                    "to": ["a@b.example"],
                    "text": "t",
                    "attachments": [{"filename": "big.bin", "content_base64": big}],
                },
            )
        assert "attachments" in exc.value.fields
        db.session.remove()


def test_a_retried_send_does_not_send_twice(app, mailbox, clean_dovecot, smtp_server, api):
    response = send(api["alice"], subject="Once only")
    row_id = response.json["id"]
    run_burst()
    assert outgoing(row_id).state == "sent" and len(smtp_server.messages) == 1
    first_copy = server_message_ids(clean_dovecot)

    # A second run of the same job (a retry after a lost answer, a re-delivered job) sends nothing.
    row = outgoing(row_id)
    row.state = "sending"
    db.session.commit()
    result = send_outgoing(row_id)
    assert result["ok"] and len(smtp_server.messages) == 1
    assert server_message_ids(clean_dovecot) == first_copy  # and no second Sent copy either

    # Accepted by SMTP but the Sent copy failed (IMAP down): the next run only finishes the copy.
    second = send(api["alice"], subject="Copy later").json["id"]
    real_port = mailbox.imap_port
    mailbox.imap_port = 1  # nothing listens there
    db.session.commit()
    result = send_outgoing(second)  # called directly: no retries left, so it finishes as sent
    row = outgoing(second)
    assert row.smtp_accepted_at is not None and row.sent_copy_saved_at is None
    assert row.state == "sent" and "copy in Sent could not be saved" in row.error
    assert len(smtp_server.messages) == 2
    mailbox = db.session.get(Account, mailbox.id)
    mailbox.imap_port = real_port
    row.state = "sending"
    db.session.commit()
    assert send_outgoing(second)["ok"]
    assert len(smtp_server.messages) == 2
    ids = [mid for mid, _ in server_message_ids(clean_dovecot)]
    assert ids.count(row.message_id) == 1
    # The Date is the time of acceptance in both copies.
    assert parsed(smtp_server.messages[1].data)["Date"] is not None


def test_authentication_failure_is_not_retried(app, users, clean_dovecot, clean_smtp_server, api):
    account = sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"], smtp_password="wrong")
    row_id = send(api["alice"]).json["id"]
    run_burst()
    row = outgoing(row_id)
    assert row.state == "failed" and row.error_class == "auth" and row.attempts == 1
    assert clean_smtp_server.messages == []
    status = api["alice"].get(f"/api/v1/outgoing/{row_id}").json
    assert status["error_sentence"] == "Authentication failed due to incorrect credentials."
    (entry,) = LogEntry.query.filter_by(account_id=account.id, source="SMTP Auth").all()
    assert entry.level == "error" and "retried" not in entry.message


def test_transient_failure_is_retried_then_failed(app, users, clean_dovecot, clean_smtp_server, api):
    account = sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"])
    account.smtp_port = 1  # refused
    db.session.commit()
    row_id = send(api["alice"]).json["id"]
    run_burst()
    row = outgoing(row_id)
    assert row.state == "failed" and row.error_class == "refused" and row.attempts == 3
    entries = (
        LogEntry.query.filter_by(account_id=account.id, source="Email Logger").order_by(LogEntry.id).all()
    )
    assert [e.message.endswith("It will be retried.") for e in entries] == [True, True, False]


class SavesSent:
    """A provider plugin that files sent messages itself, like Gmail."""

    @hookimpl
    def mailroom_server_saves_sent(self, service_key):
        return True


def test_provider_that_files_sent_skips_the_append(app, mailbox, clean_dovecot, smtp_server, api):
    assert plugins.server_saves_sent("gmail") is True
    assert plugins.server_saves_sent(None) is False
    plugins.get_plugin_manager().register(SavesSent())
    row_id = send(api["alice"], subject="Filed by the provider").json["id"]
    run_burst()
    row = outgoing(row_id)
    assert row.state == "sent" and row.sent_copy_saved_at is None
    assert len(smtp_server.messages) == 1 and server_message_ids(clean_dovecot) == []


def test_no_sent_folder_still_sends_with_a_warning(app, users, clean_dovecot, clean_smtp_server, api):
    account = sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"], sent_folder=False)
    # Known but without the role: the user chose "no Sent folder" (with no folder rows at all the
    # job would find \Sent itself: tests/test_sent_folder_discovery.py).
    db.session.add(Folder(account_id=account.id, name="Sent", display_name="Sent"))
    db.session.commit()
    row_id = send(api["alice"]).json["id"]
    run_burst()
    assert outgoing(row_id).state == "sent" and len(clean_smtp_server.messages) == 1
    warning = LogEntry.query.filter_by(account_id=account.id, level="warning").one()
    assert "No Sent folder" in warning.message


def test_outgoing_list_filters_by_state(app, api, mailbox):
    from datetime import datetime, timedelta, timezone

    when = (datetime.now(timezone(timedelta(hours=1))) + timedelta(days=30)).replace(microsecond=0)
    a = send(api["alice"]).json["id"]
    b = send(api["alice"], send_at=when.isoformat()).json["id"]
    assert [r["id"] for r in api["alice"].get("/api/v1/outgoing").json] == [b, a]
    scheduled = api["alice"].get("/api/v1/outgoing?state=scheduled").json
    assert [r["id"] for r in scheduled] == [b]
    assert datetime.fromisoformat(scheduled[0]["send_at"]) == when
    assert api["alice"].get("/api/v1/outgoing?state=nope").status_code == 422
    assert api["bob"].get("/api/v1/outgoing").json == []


def test_compose_page_sends_and_shows_state(app, client, users, mailbox, smtp_server):
    import io

    login(client, "alice", users["alice"]["password"])
    page = client.get("/compose/").get_data(as_text=True)
    assert '<option value="alice@example.com"' in page and 'name="csrf_token"' in page
    assert 'id="nav-compose"' in page

    bad = client.post("/compose/", data={"to": "nobody", "subject": "x", "body": "", "action": "send"})
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert 'data-field="to"' in text and 'data-field="text"' in text and 'value="nobody"' in text
    forbidden = client.post("/compose/", data={"from": "bob@example.com", "to": "a@b.example", "body": "x"})
    assert forbidden.status_code == 403 and 'data-field="from"' in forbidden.get_data(as_text=True)
    later = client.post("/compose/", data={"to": "a@b.example", "body": "x", "action": "later"})
    assert later.status_code == 422 and 'data-field="send_at"' in later.get_data(as_text=True)

    response = client.post(
        "/compose/",
        data={
            "to": "Bob <bob@example.org>, carol@example.net",
            "subject": "From the page",
            "body": "Hello from the form.",
            "action": "send",
            "attachments": (io.BytesIO(b"PDF-ish"), "note.pdf", "application/pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    status_url = response.headers["Location"]
    row = OutgoingMessage.query.one()
    assert status_url.endswith(f"/compose/outgoing/{row.id}") and row.origin == "compose"
    assert client.get(status_url + "/state").json["state"] == "queued"
    run_burst()
    assert client.get(status_url + "/state").json["state"] == "sent"
    (received,) = smtp_server.messages
    msg = parsed(received.data)
    assert str(msg["To"]) == "Bob <bob@example.org>, carol@example.net"
    (attachment,) = msg.iter_attachments()
    assert attachment.get_filename() == "note.pdf" and attachment.get_content() == b"PDF-ish"
    listing = client.get("/compose/outgoing?state=sent").get_data(as_text=True)
    assert "From the page" in listing
    login(client, "bob", users["bob"]["password"])
    assert client.get(status_url).status_code == 404


def test_scheduled_page_lists_cancels_and_edits(app, client, users, mailbox):
    from datetime import UTC, datetime, timedelta

    login(client, "alice", users["alice"]["password"])
    when = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    response = client.post(
        "/compose/",
        data={
            "to": "a@b.example",
            "subject": "Tomorrow",
            "body": "x",
            "action": "later",
            "send_at": when.isoformat(),
        },
    )
    assert response.status_code == 302
    row = OutgoingMessage.query.one()
    assert row.state == "scheduled" and row.send_at == when.replace(tzinfo=None)
    page = client.get("/compose/scheduled").get_data(as_text=True)
    assert "Tomorrow" in page and f"/compose/outgoing/{row.id}/cancel" in page
    assert 'data-role="scheduled"' in client.get("/messages/").get_data(as_text=True)

    edit = client.get(f"/compose/outgoing/{row.id}/edit").get_data(as_text=True)
    assert 'value="Tomorrow"' in edit
    later = when + timedelta(hours=3)
    saved = client.post(
        f"/compose/outgoing/{row.id}/edit",
        data={
            "to": "a@b.example",
            "subject": "Tomorrow, later",
            "body": "y",
            "action": "later",
            "send_at": later.isoformat(),
        },
    )
    assert saved.status_code == 302
    row = outgoing(row.id)
    assert row.subject == "Tomorrow, later" and row.send_at == later.replace(tzinfo=None)

    assert client.post(f"/compose/outgoing/{row.id}/cancel").status_code == 302
    assert outgoing(row.id).state == "cancelled"
    assert "Nothing is scheduled." in client.get("/compose/scheduled").get_data(as_text=True)


def test_a_refused_recipient_is_named_and_nothing_is_sent(app, users, clean_dovecot, smtp_factory, api):
    server = smtp_factory()

    async def handle_RCPT(smtp, session, envelope, address, rcpt_options):
        if address == "gone@example.org":
            return "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    for controller in server._controllers:
        controller.handler.handle_RCPT = handle_RCPT
    account = sending_mailbox(clean_dovecot, server, users["alice"]["user"])
    row_id = send(api["alice"], to=["ok@example.org", "gone@example.org"]).json["id"]
    run_burst()
    row = outgoing(row_id)
    assert row.state == "failed" and row.error_class == "protocol" and row.attempts == 1  # 5xx: not retried
    assert "gone@example.org" in row.error and "User unknown" in row.error
    assert server.messages == []
    entry = LogEntry.query.filter_by(account_id=account.id, level="error").one()
    assert "gone@example.org" in entry.message
