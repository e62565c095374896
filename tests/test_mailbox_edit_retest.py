"""Correcting a mailbox on its edit page tests it again at once, as connecting does.

Seen trying Mailroom as a new company would: a mailbox connected with a wrong password showed
"Authentication error"; after the right password was saved on the edit page the list still
showed the old error (a state cron skips) until the person thought of "Test connection".
Real Dovecot and aiosmtpd, the test job on a real RQ worker.
"""

from __future__ import annotations

from tests.conftest import login
from tests.support.job_worker import run_burst
from tests.test_connection_jobs import PASSWORD, japp, make_mailbox, people  # noqa: F401 (fixtures)
from webapp.extensions import db
from webapp.models import Account


def _edit_form(account: Account, **changes) -> dict:
    form = {
        "service": "other",
        "username": account.username,
        "password": "",
        "email": account.email,
        "description": account.description,
        "imap_server": f"{account.imap_host}:{account.imap_port}",
        "imap_security": account.imap_security,
        "smtp_server": f"ssl://{account.smtp_host}:{account.smtp_port}",  # as the page fills it
        "smtp_use_tls": "y",
        "active": "y",
        "smtp_requires_auth": "y",
        "incoming_protocol": "imap",
        "signature_mode": "none",
        "is_main": "y",
    }
    form.update(changes)
    return form


def _state(account_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Account, account_id).state


def test_saving_a_corrected_password_tests_the_mailbox_again(japp, people, dovecot, smtp_server):  # noqa: F811
    imap = ("127.0.0.1", dovecot.imaps_port, "tls")
    smtp = ("127.0.0.1", smtp_server.smtps_port, "tls")
    account_id = make_mailbox(people["alice"], imap, smtp, password="not-the-password")
    run_burst(japp)
    assert _state(account_id) == "auth_error"

    client = japp.test_client()
    login(client, "alice", "alice-console-pw")
    account = db.session.get(Account, account_id)
    saved = client.post(f"/mailboxes/{account_id}/edit", data=_edit_form(account, password=PASSWORD))
    assert saved.status_code == 302, saved.get_data(as_text=True)
    # The list the person lands on follows the new test on the mailbox's row, as after connecting.
    assert f"testing={account_id}" in saved.location and "job=" in saved.location
    listing = client.get(saved.location).get_data(as_text=True)
    assert "testing its connection now" in listing and "data-test-status-url=" in listing
    run_burst(japp)
    assert _state(account_id) == "connected", db.session.get(Account, account_id).last_check


def test_saving_only_the_description_starts_no_test(japp, people, dovecot, smtp_server):  # noqa: F811
    imap = ("127.0.0.1", dovecot.imaps_port, "tls")
    smtp = ("127.0.0.1", smtp_server.smtps_port, "tls")
    account_id = make_mailbox(people["alice"], imap, smtp)
    run_burst(japp)
    assert _state(account_id) == "connected"

    client = japp.test_client()
    login(client, "alice", "alice-console-pw")
    account = db.session.get(Account, account_id)
    saved = client.post(f"/mailboxes/{account_id}/edit", data=_edit_form(account, description="Work"))
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert "testing=" not in saved.location
    assert db.session.get(Account, account_id).description == "Work"


def test_an_api_patch_of_the_password_tests_again_and_one_of_the_description_does_not(
    japp, people, dovecot, smtp_server  # noqa: F811
):
    imap = ("127.0.0.1", dovecot.imaps_port, "tls")
    smtp = ("127.0.0.1", smtp_server.smtps_port, "tls")
    account_id = make_mailbox(people["alice"], imap, smtp, password="not-the-password")
    run_burst(japp)
    assert _state(account_id) == "auth_error"

    patched = people["alice"].patch(f"/api/v1/accounts/{account_id}", json={"password": PASSWORD})
    assert patched.status_code == 200, patched.get_json()
    test = patched.get_json()["test"]
    assert set(test) == {"job_id", "status_url"}
    run_burst(japp)
    assert people["alice"].get(test["status_url"]).get_json()["status"] == "finished"
    assert _state(account_id) == "connected"

    described = people["alice"].patch(f"/api/v1/accounts/{account_id}", json={"description": "Work"})
    assert described.status_code == 200 and "test" not in described.get_json()
