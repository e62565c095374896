"""The connect form names every wrong field in one answer (as the other forms do since e85d70e)."""

from __future__ import annotations

import re

from tests.conftest import login
from webapp.models import Account


def _flagged(page: str) -> set[str]:
    return set(re.findall(r'class="error" data-field="([a-z_0-9]+)"', page))


def test_a_service_not_offered_does_not_hide_the_other_fields_errors(client, users):
    login(client, "alice", users["alice"]["password"])
    page = client.post(
        "/mailboxes/connect",
        data={"service": "987654", "username": "alice@acme.test", "email": "not an address", "password": ""},
    )
    assert page.status_code == 200 and Account.query.count() == 0
    assert {"service", "email", "password"} <= _flagged(page.get_data(as_text=True))


def test_other_names_a_bad_email_and_an_empty_password_with_the_server_errors(client, users):
    login(client, "alice", users["alice"]["password"])
    page = client.post(
        "/mailboxes/connect",
        data={
            "service": "other",
            "username": "alice@acme.test",
            "email": "not an address",
            "password": "",
            "imap_server": "imap.acme.test:notaport",
            "imap_security": "tls",
            "smtp_server": "smtp.acme.test:465",
            "smtp_use_tls": "y",
        },
    )
    assert page.status_code == 200 and Account.query.count() == 0
    flagged = _flagged(page.get_data(as_text=True))
    assert {"imap_server", "email", "password"} <= flagged, flagged
