"""The push option of a mailbox: a checkbox on the edit page and ``push`` in the accounts API,
validated like the other options (a boolean; IMAP only)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import login

MANUAL = {
    "imap": {"host": "mail.example.test", "port": 993, "security": "tls"},
    "smtp": {"host": "mail.example.test", "port": 465, "security": "tls"},
}


def _push_input(page: str) -> str:
    return re.search(r'<input[^>]*name="push"[^>]*>', page).group(0)


@pytest.fixture
def account_id(api):
    api["admin"].patch("/api/v1/settings", json={"allow_manual_entry": True})
    created = api["alice"].post(
        "/api/v1/accounts", json={"manual": MANUAL, "username": "alice@example.test", "password": "pw"}
    )
    assert created.status_code == 201, created.get_json()
    return created.get_json()["id"]


def test_push_is_off_by_default_and_set_through_the_api(api, account_id):
    url = f"/api/v1/accounts/{account_id}"
    assert api["alice"].get(url).get_json()["push"] is False
    changed = api["alice"].patch(url, json={"push": True})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["push"] is True and api["alice"].get(url).get_json()["push"] is True


@pytest.mark.parametrize("value", ["yes", 1, None, [], {"on": True}])
def test_push_that_is_not_a_boolean_is_named(api, account_id, value):
    answer = api["alice"].patch(f"/api/v1/accounts/{account_id}", json={"push": value})
    assert answer.status_code == 422 and set(answer.get_json()["fields"]) == {"push"}


def test_push_needs_imap(api, account_id):
    url = f"/api/v1/accounts/{account_id}"
    manual = dict(MANUAL, pop3={"host": "mail.example.test", "port": 995, "security": "tls"})
    answer = api["alice"].patch(url, json={"manual": manual, "incoming_protocol": "pop3", "push": True})
    assert answer.status_code == 422 and set(answer.get_json()["fields"]) == {"push"}
    assert "POP3" in answer.get_json()["fields"]["push"]
    assert api["alice"].get(url).get_json()["push"] is False


def test_the_edit_page_has_a_push_checkbox_that_saves(client, api, account_id):
    login(client, "alice", "alice-console-pw")
    page = client.get(f"/mailboxes/{account_id}/edit").get_data(as_text=True)
    assert "Push (IMAP IDLE)" in page and "checked" not in _push_input(page)
    form = {
        "service": "other",
        "username": "alice@example.test",
        "email": "alice@example.test",
        "imap_server": "mail.example.test:993",
        "imap_security": "tls",
        "smtp_server": "mail.example.test:465",
        "smtp_use_tls": "y",
        "incoming_protocol": "imap",
        "active": "y",
        "smtp_requires_auth": "y",
        "pop3_leave_on_server": "y",
    }
    saved = client.post(f"/mailboxes/{account_id}/edit", data=dict(form, push="y"))
    assert saved.status_code == 302, saved.get_data(as_text=True)[-3000:]
    assert api["alice"].get(f"/api/v1/accounts/{account_id}").get_json()["push"] is True
    page = client.get(f"/mailboxes/{account_id}/edit").get_data(as_text=True)
    assert "checked" in _push_input(page)
    client.post(f"/mailboxes/{account_id}/edit", data=form)  # unticked: off again
    assert api["alice"].get(f"/api/v1/accounts/{account_id}").get_json()["push"] is False
