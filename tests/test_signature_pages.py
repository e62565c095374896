"""The pages of signatures and identities: My profile, admin Signature and Shared senders, mailbox edit."""

from __future__ import annotations

import html
import re

from tests.conftest import login
from tests.support.message_factory import make_account
from webapp import settings_store
from webapp.extensions import db
from webapp.models import Account, Alias, LogEntry


def _admin_template(client):
    return client.post(
        "/admin/email/signature",
        data={
            "company_name": "ACME",
            "central_signature_text": "{{full_name}}, {{role}} at {{company}}",
            "central_signature_html": "<p><b>{{full_name}}</b> <script>x()</script>{{email}}</p>",
        },
    )


def test_admin_signature_page_saves_lists_placeholders_and_refuses_unknown_ones(client, users):
    login(client, "alice", "alice-console-pw")
    assert client.get("/admin/email/signature").status_code == 403
    assert client.post("/admin/email/signature/preview", json={}).status_code == 403
    client.post("/logout")

    login(client, "admin", "admin-console-pw")
    page = client.get("/admin/email/signature").get_data(as_text=True)
    for name in ("first_name", "last_name", "full_name", "role", "email", "phone", "company"):
        assert "{{" + name + "}}" in page
    assert 'id="nav-signature"' in page and 'id="nav-senders"' in page
    assert _admin_template(client).status_code == 302
    assert settings_store.get("central_signature_html") == "<p><b>{{full_name}}</b> {{email}}</p>"

    response = client.post(
        "/admin/email/signature",
        data={
            "company_name": "ACME",
            "central_signature_text": "Hi {{nickname}}",
            "central_signature_html": "",
        },
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    error = re.search(r'<div class="error" data-field="central_signature_text">([^<]*)</div>', body)
    assert error and "Unknown placeholder" in error.group(1) and "{{nickname}}" in error.group(1)
    assert settings_store.get("central_signature_text") == "{{full_name}}, {{role}} at {{company}}"

    users["admin"]["user"].first_name = "Ada"
    db.session.commit()
    preview = client.post(
        "/admin/email/signature/preview",
        json={"company_name": "ACME", "central_signature_text": "{{first_name}} / {{company}}"},
    ).get_json()
    assert preview["text"] == "Ada / ACME" and preview["errors"] == {}
    bad = client.post("/admin/email/signature/preview", json={"central_signature_text": "{{x}}"}).get_json()
    assert "central_signature_text" in bad["errors"]


def test_profile_page_saves_fields_and_shows_the_filled_signature(client, users):
    login(client, "admin", "admin-console-pw")
    _admin_template(client)
    client.post("/logout")
    make_account(users["alice"]["id"], "alice@acme.test", is_main=True)
    login(client, "alice", "alice-console-pw")
    page = client.get("/profile/").get_data(as_text=True)
    assert 'id="nav-profile"' in page and "alice@acme.test" in page

    bad = client.post("/profile/", data={"first_name": "Alice", "phone": "call me maybe"})
    assert bad.status_code == 422 and 'data-field="phone"' in bad.get_data(as_text=True)
    assert (
        client.post(
            "/profile/",
            data={"first_name": "Alice", "last_name": "Liddell", "job_title": "Buyer", "phone": "+39 02"},
        ).status_code
        == 302
    )
    page = client.get("/profile/").get_data(as_text=True)
    assert "Alice Liddell, Buyer at ACME" in page
    # The HTML preview goes to a sandboxed frame: escaped into the form that posts it there.
    assert "sandbox" in page and html.escape("<b>Alice Liddell</b> alice@acme.test", quote=True) in page

    live = client.post(
        "/profile/preview", json={"first_name": "<Al>", "last_name": "L", "job_title": "", "phone": ""}
    )
    assert live.get_json()["html"] == "<p><b>&lt;Al&gt; L</b> alice@acme.test</p>"
    assert users["alice"]["user"].first_name == "Alice"  # a preview never saves
    assert client.post("/profile/preview", json={"phone": "x"}).status_code == 422


def test_mailbox_edit_page_sets_the_signature_and_manages_aliases(client, users):
    account = make_account(users["alice"]["id"], "alice@acme.test", is_main=True)
    login(client, "alice", "alice-console-pw")
    page = client.get(f"/mailboxes/{account.id}/edit").get_data(as_text=True)
    assert 'id="signature_mode"' in page and 'id="aliases"' in page and "No aliases." in page

    form = {
        "service": "other",
        "imap_server": "127.0.0.1:993",
        "imap_security": "tls",
        "smtp_server": "127.0.0.1:993",
        "smtp_use_tls": "y",
        "username": account.username,
        "email": account.email,
        "description": "mine",
        "is_main": "y",
        "active": "y",
        "smtp_requires_auth": "y",
        "incoming_protocol": "imap",
        "signature_mode": "custom",
        "signature_text": "",
    }
    refused = client.post(f"/mailboxes/{account.id}/edit", data=form)
    assert refused.status_code == 200 and 'data-field="signature_text"' in refused.get_data(as_text=True)
    form.update(signature_text="Cheers,\nAlice", signature_html='<i onclick="x()">Alice</i>')
    assert client.post(f"/mailboxes/{account.id}/edit", data=form).status_code == 302
    db.session.expire_all()
    saved = db.session.get(Account, account.id)
    assert (saved.signature_mode, saved.signature_text, saved.signature_html) == (
        "custom",
        "Cheers,\nAlice",
        "<i>Alice</i>",
    )

    added = client.post(f"/mailboxes/{account.id}/aliases", data={"address": "Sales@acme.test"})
    assert added.status_code == 302 and added.headers["Location"].endswith(
        f"/mailboxes/{account.id}/edit#aliases"
    )
    page = client.get(f"/mailboxes/{account.id}/edit").get_data(as_text=True)
    assert 'data-alias="sales@acme.test"' in page
    again = client.post(
        f"/mailboxes/{account.id}/aliases", data={"address": "sales@acme.test"}, follow_redirects=True
    )
    assert "Alias address: already an alias of this mailbox" in again.get_data(as_text=True)
    own = client.post(
        f"/mailboxes/{account.id}/aliases", data={"address": "alice@acme.test"}, follow_redirects=True
    )
    assert "Alias address: This is the mailbox&#39;s own address" in own.get_data(as_text=True)
    alias = Alias.query.one()

    # Bob can neither add nor remove aliases of Alice's mailbox.
    client.post("/logout")
    login(client, "bob", "bob-console-pw")
    assert client.post(f"/mailboxes/{account.id}/aliases", data={"address": "b@acme.test"}).status_code == 404
    assert client.post(f"/mailboxes/{account.id}/aliases/{alias.id}/delete").status_code == 404
    client.post("/logout")

    login(client, "alice", "alice-console-pw")
    assert client.post(f"/mailboxes/{account.id}/aliases/{alias.id}/delete").status_code == 302
    assert Alias.query.count() == 0


def test_admin_shares_a_mailbox_for_sending_from_the_senders_page(client, users):
    account = make_account(users["alice"]["id"], "sales@acme.test", is_main=True)
    login(client, "bob", "bob-console-pw")
    assert client.get("/admin/email/senders").status_code == 403
    assert client.post(f"/admin/email/senders/{account.id}/toggle").status_code == 403
    client.post("/logout")

    login(client, "admin", "admin-console-pw")
    page = client.get("/admin/email/senders").get_data(as_text=True)
    assert 'data-email="sales@acme.test"' in page and "alice" in page
    assert client.post(f"/admin/email/senders/{account.id}/toggle").status_code == 302
    db.session.expire_all()
    assert db.session.get(Account, account.id).shared_sender is True
    assert 'class="badge shared"' in client.get("/admin/email/senders").get_data(as_text=True)
    assert client.post("/admin/email/senders/99999/toggle").status_code == 404
    entry = LogEntry.query.filter_by(source="Admin", account_id=account.id).one()
    assert entry.created_by == "admin" and "now shared for sending" in entry.message
    client.post("/logout")

    # The owner sees the badge on the mailbox list.
    login(client, "alice", "alice-console-pw")
    assert "Shared for sending" in client.get("/mailboxes/").get_data(as_text=True)


def test_profile_preview_without_a_mailbox_uses_an_example_address(client, users):
    login(client, "bob", "bob-console-pw")
    assert "no mailbox yet" in client.get("/profile/").get_data(as_text=True)
    live = client.post("/profile/preview", json={"first_name": "Bob"}).get_json()
    assert live["address"] == "name@example.com" and live["errors"] == {}
