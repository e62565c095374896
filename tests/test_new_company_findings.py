"""Defects a new company met using Mailroom in English (30 Nov 2026), each through the whole path:
the compose page, a real worker, the aiosmtpd server and the pages that show what was sent."""

from __future__ import annotations

import html
import re

import pytest

from tests.conftest import login
from tests.support.job_worker import run_burst
from tests.support.send_support import parsed, sending_mailbox
from webapp import replies, sending, service_catalog
from webapp.extensions import db
from webapp.models import Alias, OutgoingMessage

pytestmark = pytest.mark.usefixtures("fresh_plugins")


@pytest.fixture
def app(send_app):
    return send_app


@pytest.fixture
def mailbox(app, users, clean_dovecot, clean_smtp_server):
    return sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"])


def _send_from_the_page(client, **fields):
    response = client.post("/compose/", data={"subject": "Quote", "body": "Hello Bob.", **fields})
    assert response.status_code == 302, response.get_data(as_text=True)
    run_burst()
    db.session.expire_all()
    row = OutgoingMessage.query.order_by(OutgoingMessage.id.desc()).first()
    assert row.state == "sent", (row.error, row.error_class)
    return row


def test_names_with_accents_or_emoji_read_as_typed_not_as_encoded_words(client, users, mailbox, smtp_server):
    db.session.add(Alias(account_id=mailbox.id, address="sales@example.com", display_name="Acme Sales 😀"))
    db.session.commit()
    login(client, "alice", users["alice"]["password"])
    row = _send_from_the_page(
        client,
        **{"from": "sales@example.com", "to": 'Jürgen Müller <bob@example.org>, "Doe, John" <j@example.org>'},
    )

    # On the wire the names are RFC 2047 words, and a mail reader decodes them back.
    (received,) = smtp_server.messages
    msg = parsed(received.data)
    assert b"=?utf-8?" in received.data
    assert str(msg["From"]) == "Acme Sales 😀 <sales@example.com>"
    assert str(msg["To"]) == 'Jürgen Müller <bob@example.org>, "Doe, John" <j@example.org>'

    # The person who sent it reads the names as typed: status page, Outgoing list, the JSON.
    info = sending.outgoing_as_dict(row)
    assert info["from"] == "Acme Sales 😀 <sales@example.com>"
    assert info["to"] == ["Jürgen Müller <bob@example.org>", '"Doe, John" <j@example.org>']
    for url in (f"/compose/outgoing/{row.id}", "/compose/outgoing"):
        page = html.unescape(client.get(url).get_data(as_text=True))
        assert "=?utf-8?" not in page, url
        assert "Jürgen Müller <bob@example.org>" in page, url
    status = html.unescape(client.get(f"/compose/outgoing/{row.id}").get_data(as_text=True))
    assert "Acme Sales 😀 <sales@example.com>" in status


@pytest.mark.parametrize(
    ("text", "markup"),
    [("-- \nAlice Example\nSales", None), ("--\r\nAlice Example\nSales", "<p>--</p><p>Alice Example</p>")],
)
def test_a_signature_typed_with_its_own_separator_line_gets_one_separator(
    client, users, mailbox, smtp_server, text, markup
):
    mailbox.signature_mode, mailbox.signature_text, mailbox.signature_html = "custom", text, markup
    db.session.commit()
    login(client, "alice", users["alice"]["password"])
    _send_from_the_page(client, to="bob@example.org")

    (received,) = smtp_server.messages
    msg = parsed(received.data)
    sent_text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert sent_text.endswith("Hello Bob.\n\n-- \nAlice Example\nSales\n") or sent_text.endswith(
        "Hello Bob.\n\n-- \nAlice Example\nSales"
    )
    assert sent_text.count("--") == 1

    # A reply's or forward's draft places the signature above the quote: one separator there too.
    block = replies.signature_block(
        users["alice"]["user"], {"account_id": mailbox.id, "email": mailbox.email}
    )
    assert block["text"].count("--") == 1 and block["text"].startswith("-- \nAlice Example")
    assert block["html"].count("--") == 1


def test_the_service_test_names_the_password_field_by_its_label(
    client, users, clean_dovecot, clean_smtp_server
):
    """The administrator's test of a corporate server with a wrong password said "Field to correct:
    password" (the field's key), where the dialog's field is labelled "Password"."""
    service = service_catalog.create_service(
        service_catalog.clean_service(
            {
                "name": "Acme Mail",
                "imap": {"host": "127.0.0.1", "port": clean_dovecot.imap_port, "security": "none"},
                "smtp": {"host": "127.0.0.1", "port": clean_smtp_server.smtps_port, "security": "tls"},
            }
        )
    )
    login(client, "admin", users["admin"]["password"])
    started = client.post(
        f"/admin/email/services/{service.id}/test", json={"username": "alice", "password": "wrong"}
    )
    assert started.status_code == 202, started.get_data(as_text=True)
    run_burst()
    report = client.get(started.json["status_url"] + "/report").get_data(as_text=True)
    fields = re.findall(r'<strong class="field-name" data-field="([^"]+)">([^<]+)</strong>', report)
    assert fields and set(fields) == {("password", "Password")}, report


@pytest.mark.parametrize("port", ["-1", "+0", "-993"])
def test_a_signed_port_is_out_of_range_not_a_non_number(client, users, port):
    """ "smtp.acme.example:-1" was answered "The port '-1' is not a number."; it is a number, out of range."""
    login(client, "admin", users["admin"]["password"])
    page = client.post(
        "/admin/email/services/new",
        data={
            "name": "Acme",
            "imap_server": "imap.acme.example:993",
            "smtp_server": f"smtp.acme.example:{port}",
        },
    )
    text = html.unescape(page.get_data(as_text=True))
    assert "The port must be between 1 and 65535." in text
    assert "is not a number" not in text


def test_the_connect_form_opens_on_the_company_server_not_on_gmail(client, users):
    """A company that added its own server: the form opened on Gmail, the company's server last."""
    login(client, "alice", users["alice"]["password"])
    first = re.search(
        r'<select[^>]*id="service"[^>]*>\s*<optgroup label="([^"]+)">\s*<option[^>]*>([^<]+)<',
        _connect(client),
    )
    assert first and first.group(1) == "Providers"  # no company server yet: the providers, Gmail first
    service_catalog.create_service(
        service_catalog.clean_service(
            {
                "name": "Acme Mail",
                "imap": {"host": "imap.acme.example", "port": 993, "security": "tls"},
                "smtp": {"host": "smtp.acme.example", "port": 465, "security": "tls"},
            }
        )
    )
    page = _connect(client)
    first = re.search(
        r'<select[^>]*id="service"[^>]*>\s*<optgroup label="([^"]+)">\s*<option[^>]*>([^<]+)<', page
    )
    assert first and first.groups() == ("Company servers", "Acme Mail"), page
    assert "Gmail / Google Workspace" in page  # the providers are still offered, after it


def _connect(client) -> str:
    response = client.get("/mailboxes/connect")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_too_long_search_is_named_as_the_page_names_it(client, users):
    """A 201-character search said "q: must be text of at most 200 characters" (the URL's key)."""
    login(client, "alice", users["alice"]["password"])
    page = client.get("/messages/", query_string={"q": "x" * 201})
    text = html.unescape(page.get_data(as_text=True))
    assert page.status_code == 422
    assert "Search: must be text of at most 200 characters" in text and "q: must" not in text
