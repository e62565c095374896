"""What a new company found on its first day: words not translated, actions offered then refused,
focus in the wrong field, a folder named as the server names it."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import login
from tests.support.message_factory import make_account, make_folder, make_message
from webapp.extensions import db
from webapp.validation import email

STEPS = ["connect", "tls", "capabilities", "login", "list"]


def _chips(html: str) -> list[str]:
    return [
        re.sub(r"\s+\d+ ms$", "", chip.strip())
        for chip in re.findall(r'<span class="step ok">([^<]*)</span>', html)
    ]


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", ["connect", "TLS", "capabilities", "login", "folder list"]),
        ("it", ["connessione", "TLS", "funzionalità", "accesso", "elenco cartelle"]),
        ("pl", ["połączenie", "TLS", "możliwości serwera", "logowanie", "lista folderów"]),
    ],
)
def test_the_connection_tests_steps_are_named_in_the_readers_language(client, users, language, expected):
    account = make_account(users["alice"]["id"], "alice@example.com")
    steps = [{"name": name, "ok": True, "duration_ms": 12.0} for name in STEPS]
    account.last_check = json.dumps(
        {"ok": True, "checks": {"imap": {"ok": True, "steps": steps, "error": None}}}
    )
    db.session.commit()
    login(client, "alice", "alice-console-pw")
    html = client.get("/mailboxes/", headers={"Accept-Language": language}).get_data(as_text=True)
    assert _chips(html) == expected


@pytest.mark.parametrize(
    ("language", "sentence"),
    [
        ("en", "An email address needs a domain after the @-sign, e.g. name@example.com."),
        ("it", "Un indirizzo email ha bisogno di un dominio dopo la @, ad es. nome@example.com."),
        ("pl", "Adres e-mail potrzebuje domeny po znaku @, np. nazwa@example.com."),
    ],
)
def test_an_address_without_a_domain_says_so_without_empty_brackets(app, language, sentence):
    with app.test_request_context("/", headers={"Accept-Language": language}):
        with pytest.raises(ValueError) as error:
            email("alice@")
    assert str(error.value) == sentence


def test_the_last_active_administrator_is_not_offered_make_user(client, users):
    login(client, "admin", "admin-console-pw")
    page = client.get("/admin/email/users").get_data(as_text=True)
    admin_row = page.split('data-username="admin"')[1].split("</tr>")[0]
    assert 'data-action="unmake-admin"' not in admin_row and 'data-action="last-admin"' in admin_row
    alice_row = page.split('data-username="alice"')[1].split("</tr>")[0]
    assert 'data-action="make-admin"' in alice_row
    client.post(f"/admin/email/users/{users['alice']['id']}/role", data={"admin": "1"})
    page = client.get("/admin/email/users").get_data(as_text=True)
    admin_row = page.split('data-username="admin"')[1].split("</tr>")[0]
    assert 'data-action="unmake-admin"' in admin_row  # two administrators: either may step down


def test_after_a_wrong_password_the_focus_is_on_the_password(client, users):
    first = client.get("/login").get_data(as_text=True)
    assert re.search(
        r'<input[^>]*autofocus[^>]*name="username"|<input[^>]*name="username"[^>]*autofocus', first
    )
    page = client.post("/login", data={"username": "alice", "password": "wrong"}).get_data(as_text=True)
    (password,) = re.findall(r'<input[^>]*name="password"[^>]*>', page)
    (username,) = re.findall(r'<input[^>]*name="username"[^>]*>', page)
    assert "autofocus" in password and "autofocus" not in username


def test_the_message_page_names_the_inbox_as_the_sidebar_does(client, users):
    account = make_account(users["alice"]["id"], "alice@example.com")
    message = make_message(make_folder(account, "INBOX", role="inbox", display_name="INBOX"))
    login(client, "alice", "alice-console-pw")
    for language, word in (("en", "Inbox"), ("it", "Posta in arrivo")):
        page = client.get(f"/messages/{message.id}", headers={"Accept-Language": language}).get_data(
            as_text=True
        )
        assert f"alice@example.com › {word}</dd>" in page, language


def test_a_diagnosis_hint_shows_its_address_as_a_link_and_stays_escaped(client, users):
    account = make_account(users["alice"]["id"], "alice@example.com")
    hint = "Create an app password (https://myaccount.google.com/apppasswords). <b>not markup</b>"
    error = {"class": "auth", "message": "The server refused the login.", "hints": [hint], "field": None}
    account.last_check = json.dumps(
        {"ok": False, "checks": {"imap": {"ok": False, "steps": [], "error": error}}}
    )
    db.session.commit()
    login(client, "alice", "alice-console-pw")
    html = client.get("/mailboxes/").get_data(as_text=True)
    link = '<a href="https://myaccount.google.com/apppasswords" target="_blank" rel="noopener noreferrer">'
    assert f"({link}https://myaccount.google.com/apppasswords</a>). &lt;b&gt;not markup&lt;/b&gt;" in html
