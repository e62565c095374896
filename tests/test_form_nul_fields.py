"""A NUL character typed in a page form's field is an error under that field on the same form,
named by its label, the other input kept (webapp.input_guard.form_page); the API still answers
422 naming the field.  Before, the whole page was replaced by a refusal page naming raw keys."""

from __future__ import annotations

import re

import pytest

from tests.conftest import login
from tests.support.send_support import sending_mailbox
from webapp.models import Account, OutgoingMessage, Service

FORM = {
    "service": "other",
    "username": "alice@acme.test",
    "email": "alice@acme.test",
    "password": "kept-secret",
    "imap_server": "imap.acme\x00.test:993",
    "imap_security": "tls",
    "smtp_server": "smtp.acme.test:465",
    "smtp_use_tls": "y",
}


def field_error(page: str, field: str) -> str:
    match = re.search(rf'class="error" data-field="{field}"[^>]*>([^<]*)<', page)
    assert match, f"no error under {field}"
    return match.group(1)


def test_nul_in_the_connect_form_is_an_error_under_its_field(client, users):
    login(client, "alice", users["alice"]["password"])
    response = client.post("/mailboxes/connect", data=FORM)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and Account.query.count() == 0
    assert 'id="error-page"' not in page
    assert "NUL" in field_error(page, "imap_server")
    assert re.search(r'<label[^>]*for="imap_server"[^>]*>IMAP server', page)
    assert 'value="alice@acme.test"' in page and 'value="smtp.acme.test:465"' in page
    assert 'value="imap.acme\ufffd.test:993"' in page  # shown back, the NUL made visible


def test_nul_in_the_service_form_is_an_error_under_its_field(client, users):
    login(client, "admin", users["admin"]["password"])
    data = {"name": "Acme\x00 Mail", "imap_server": "imap.acme.test:993", "smtp_server": "smtp.acme.test:465"}
    response = client.post("/admin/email/services/new", data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and Service.query.filter(Service.name.like("Acme%")).count() == 0
    assert "NUL" in field_error(page, "name")
    assert 'value="imap.acme.test:993"' in page


def test_in_polish_the_field_error_is_polish(client, users):
    login(client, "alice", users["alice"]["password"])
    response = client.post("/mailboxes/connect", data=FORM, headers={"Accept-Language": "pl"})
    assert "NUL" in field_error(response.get_data(as_text=True), "imap_server")
    assert "must not contain" not in response.get_data(as_text=True)


def test_the_api_still_answers_422_naming_the_field(api, users):
    response = api["alice"].post("/api/v1/accounts", json={"email": "a\x00@acme.test"})
    assert response.status_code == 422 and "email" in response.json["fields"]


def test_nul_in_the_compose_form_is_an_error_under_its_field(client, users, clean_dovecot, clean_smtp_server):
    sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"])
    login(client, "alice", users["alice"]["password"])
    data = {"to": "bob@example.org", "subject": "Hi", "body": "Hello\x00 Bob", "action": "send"}
    response = client.post("/compose/", data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="error-page"' not in page
    assert "NUL" in field_error(page, "text")
    assert 'value="bob@example.org"' in page and 'value="Hi"' in page
    assert OutgoingMessage.query.count() == 0


def test_nul_in_a_posted_key_that_is_a_form_attribute_not_a_field_is_a_general_error(client, users):
    """``errors``, ``validate`` and ``data`` are attributes of every form, not fields: a NUL
    posted under such a name is the form's general error, never a 500 (getattr found them)."""
    login(client, "alice", users["alice"]["password"])
    for key in ("errors", "validate", "data", "_fields"):
        data = {**FORM, "imap_server": "imap.acme.test:993", key: "x\x00"}
        response = client.post("/mailboxes/connect", data=data)
        page = response.get_data(as_text=True)
        assert response.status_code in (200, 400, 422), (key, response.status_code)
        assert f"{key}: must not contain NUL characters" in page, key
        assert 'value="alice@acme.test"' in page
    assert Account.query.count() == 0


def test_nul_in_a_form_attribute_key_on_the_service_form_is_no_500(client, users):
    login(client, "admin", users["admin"]["password"])
    data = {"name": "Acme Mail", "imap_server": "imap.acme.test:993", "validate": "\x00"}
    response = client.post("/admin/email/services/new", data=data, headers={"Accept-Language": "it"})
    page = response.get_data(as_text=True)
    assert response.status_code in (200, 400, 422)
    assert "validate: non deve contenere caratteri NUL" in page
    assert Service.query.filter(Service.name.like("Acme%")).count() == 0


@pytest.mark.parametrize(
    "language, sentence",
    [("en", "the field name must not contain NUL"), ("it", "il nome del campo"), ("pl", "nazwa pola")],
)
def test_a_nul_in_a_field_name_is_refused_in_one_whole_translated_sentence(api, users, language, sentence):
    """Before, "field name " was glued in English before the translated problem."""
    body = {"e\x00mail": "a@acme.test"}
    response = api["alice"].post("/api/v1/accounts", json=body, headers={"Accept-Language": language})
    assert response.status_code == 422
    (message,) = response.json["fields"].values()
    assert message.startswith(sentence) and "NUL" in message, message
    assert language == "en" or "field name" not in message
