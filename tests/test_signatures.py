"""Signatures: the central template (placeholders checked at save), HTML sanitizing, per-mailbox modes."""

from __future__ import annotations

import pytest

from webapp import settings_store
from webapp.extensions import db
from webapp.html_safety import for_signature
from webapp.models import Account, LogEntry
from webapp.signatures import render_preview, signature_for, template_errors

MANUAL = {
    "imap": {"host": "mail.example.test", "port": 993, "security": "tls"},
    "smtp": {"host": "mail.example.test", "port": 465, "security": "tls"},
}
TEXT = "--\n{{full_name}} · {{ role }}\n{{company}} · {{email}} · {{phone}}"
HTML = '<p><b>{{first_name}} {{last_name}}</b><br>{{role}}, {{company}}<br><a href="mailto:{{email}}">{{email}}</a></p>'


def _mailbox(api, user, address, **extra):
    body = {"manual": MANUAL, "username": address, "password": "pw", **extra}
    response = api[user].post("/api/v1/accounts", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _profile(api, user, **fields):
    response = api[user].patch("/api/v1/me", json=fields)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _central(api):
    response = api["admin"].patch(
        "/api/v1/settings",
        json={"company_name": "ACME <Corp>", "central_signature_text": TEXT, "central_signature_html": HTML},
    )
    assert response.status_code == 200, response.get_json()


def test_central_template_is_filled_per_user_and_per_sending_address(api, users):
    _central(api)
    _profile(api, "alice", first_name="Alice", last_name="Liddell", job_title="Buyer", phone="+39 02 123")
    _profile(api, "bob", first_name="Bob", last_name="O'Brien & Sons", job_title="<CTO>")
    alice_box = db.session.get(
        Account, _mailbox(api, "alice", "alice@acme.test", signature_mode="central")["id"]
    )
    bob = users["bob"]["user"]

    text, html = signature_for(alice_box, users["alice"]["user"])
    assert text == "--\nAlice Liddell · Buyer\nACME <Corp> · alice@acme.test · +39 02 123"
    assert "<b>Alice Liddell</b>" in html and "ACME &lt;Corp&gt;" in html
    assert '<a href="mailto:alice@acme.test"' in html

    # Bob sending through the same (shared) mailbox signs as Bob, with the mailbox's address; values escaped.
    text, html = signature_for(alice_box, bob)
    assert text.startswith("--\nBob O'Brien & Sons · <CTO>\n")
    assert "<b>Bob O'Brien &amp; Sons</b>" in html and "&lt;CTO&gt;" in html and "<CTO>" not in html
    # From an alias: {{email}} is the alias.
    text, _ = signature_for(alice_box, bob, address="sales@acme.test")
    assert "sales@acme.test" in text and "alice@acme.test" not in text


def test_unknown_or_malformed_placeholders_are_refused_at_save_naming_field_and_placeholder(api, users):
    _central(api)
    cases = [
        ({"central_signature_text": "Hi {{firstname}}"}, "central_signature_text", "{{firstname}}"),
        ({"central_signature_html": "<p>{{ title }}</p>"}, "central_signature_html", "{{title}}"),
        ({"central_signature_text": "Hi {{first name}}"}, "central_signature_text", "{{first name}}"),
        ({"central_signature_text": "Hi {{first_name"}, "central_signature_text", "{{"),
        ({"central_signature_html": "<p>first_name}}</p>"}, "central_signature_html", "}}"),
    ]
    for body, field, named in cases:
        response = api["admin"].patch("/api/v1/settings", json=body)
        assert response.status_code == 422, body
        fields = response.get_json()["fields"]
        assert set(fields) == {field} and named in fields[field], fields
    # Nothing of the refused saves was stored; the good template stays.
    assert settings_store.get("central_signature_text") == TEXT
    assert settings_store.get("company_name") == "ACME <Corp>"
    # Users cannot change the template.
    assert api["alice"].patch("/api/v1/settings", json={"central_signature_text": "x"}).status_code == 403
    assert template_errors("{single} braces are text, {{email}} is fine") == []


def test_html_is_sanitized_in_templates_and_custom_signatures(api, users):
    dirty = (
        '<p onclick="steal()">Hi {{first_name}}<script>alert(1)</script>'
        '<img src="x.png" onerror="alert(2)"><img src="https://cdn.acme.test/logo.png" alt="logo">'
        '<img src="http://cdn.acme.test/plain.png"><img src="data:image/png;base64,AAAA">'
        '<a href="javascript:alert(3)">click</a><a href="https://acme.test" style="color:red;position:fixed">site</a>'
        "<style>p{}</style><iframe src='https://evil.test'></iframe></p>"
    )
    response = api["admin"].patch("/api/v1/settings", json={"central_signature_html": dirty})
    assert response.status_code == 200, response.get_json()
    stored = settings_store.get("central_signature_html")
    for clean in (stored, for_signature(dirty)):
        low = clean.lower()
        assert "script" not in low and "alert" not in low and "onerror" not in low and "onclick" not in low
        assert "javascript:" not in low and "iframe" not in low and "<style" not in low and "data:" not in low
        assert "http://cdn" not in low and "position" not in low
        assert '<img src="https://cdn.acme.test/logo.png" alt="logo">' in clean
        assert 'href="https://acme.test"' in clean and "color:red" in clean
        assert "Hi {{first_name}}" in clean

    box = _mailbox(api, "alice", "alice@acme.test")
    response = api["alice"].patch(
        f"/api/v1/accounts/{box['id']}",
        json={"signature_mode": "custom", "signature_text": "Alice\n-- ACME", "signature_html": dirty},
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert "script" not in body["signature_html"] and "onerror" not in body["signature_html"]
    account = db.session.get(Account, box["id"])
    # Even HTML written straight into the database is sanitized on the way out.
    account.signature_html = '<b onmouseover="x()">Alice</b><script>bad()</script>'
    db.session.commit()
    text, html = signature_for(account, users["alice"]["user"])
    assert text == "Alice\n-- ACME" and html == "<b>Alice</b>"


def test_modes_none_custom_central(api, users):
    _central(api)
    alice = users["alice"]["user"]
    _profile(api, "alice", first_name="Alice")
    box = _mailbox(api, "alice", "alice@acme.test")
    account = db.session.get(Account, box["id"])
    assert box["signature_mode"] == "none" and signature_for(account, alice) == (None, None)

    url = f"/api/v1/accounts/{box['id']}"
    refused = api["alice"].patch(url, json={"signature_mode": "custom"})
    assert refused.status_code == 422 and set(refused.get_json()["fields"]) == {"signature_text"}
    assert api["alice"].patch(url, json={"signature_mode": "fancy"}).get_json()["fields"] == {
        "signature_mode": "must be one of: none, custom, central"
    }
    assert set(api["alice"].patch(url, json={"signature_text": 5}).get_json()["fields"]) == {"signature_text"}

    assert (
        api["alice"].patch(url, json={"signature_mode": "custom", "signature_text": "Cheers, A"}).status_code
        == 200
    )
    db.session.expire_all()
    assert signature_for(account, alice) == ("Cheers, A", None)

    assert api["alice"].patch(url, json={"signature_mode": "central"}).status_code == 200
    db.session.expire_all()
    text, html = signature_for(account, alice)
    assert text.startswith("--\nAlice ·") and "<b>Alice </b>" in html

    # A central signature with only an HTML template has no text part.
    api["admin"].patch("/api/v1/settings", json={"central_signature_text": ""})
    assert signature_for(account, alice)[0] is None

    assert api["alice"].patch(url, json={"signature_mode": "none"}).status_code == 200
    db.session.expire_all()
    assert signature_for(account, alice) == (None, None)


def test_profile_api_validates_and_previews_the_central_signature(api, users):
    _central(api)
    me = api["alice"].get("/api/v1/me").get_json()
    assert (
        me["username"] == "alice"
        and me["first_name"] == ""
        and me["central_signature_preview"]["errors"] == {}
    )
    bad = api["alice"].patch(
        "/api/v1/me", json={"first_name": "x" * 121, "phone": "call me", "nickname": "Al", "job_title": 3}
    )
    assert bad.status_code == 422
    assert set(bad.get_json()["fields"]) == {"first_name", "phone", "nickname", "job_title"}
    _mailbox(api, "alice", "alice@acme.test")
    me = _profile(
        api, "alice", first_name=" Alice ", last_name="Liddell", job_title="Buyer", phone="+39 (02) 123"
    )
    assert me["first_name"] == "Alice" and me["phone"] == "+39 (02) 123"
    preview = me["central_signature_preview"]
    assert preview["address"] == "alice@acme.test"
    assert preview["text"] == "--\nAlice Liddell · Buyer\nACME <Corp> · alice@acme.test · +39 (02) 123"
    # Bob's profile is his own.
    assert api["bob"].get("/api/v1/me").get_json()["first_name"] == ""
    assert api["alice"].patch("/api/v1/me", data="x", content_type="text/plain").status_code == 400


def test_preview_of_unsaved_templates_reports_placeholder_errors(app, users):
    alice = users["alice"]["user"]
    alice.first_name = "Alice"
    preview = render_preview(alice, text_template="Hi {{first_name}} at {{company}}", company="ACME")
    assert preview["text"] == "Hi Alice at ACME" and preview["address"] == "name@example.com"
    bad = render_preview(alice, text_template="Hi {{nick}}", html_template="<b>{{first_name}}</b>")
    assert (
        set(bad["errors"]) == {"central_signature_text"}
        and "{{nick}}" in bad["errors"]["central_signature_text"]
    )


def test_template_changes_are_in_the_admin_log(api, users):
    _central(api)
    messages = [e.message for e in LogEntry.query.filter_by(source="Admin")]
    # Logged under the admin page's labels (settings_store.SETTING_LABELS), not the raw keys.
    assert any(m.startswith('Setting "Text signature" changed') for m in messages)
    assert any(m.startswith('Setting "Company name" changed') for m in messages)


@pytest.mark.parametrize("value", [None, ""])
def test_empty_central_template_gives_no_signature(api, users, value):
    box = _mailbox(api, "alice", "alice@acme.test", signature_mode="central")
    account = db.session.get(Account, box["id"])
    if value is not None:
        api["admin"].patch("/api/v1/settings", json={"central_signature_text": value})
    assert signature_for(account, users["alice"]["user"]) == (None, None)
