"""A working mailbox edited with a wrong new password keeps its working settings, and the person is
told: the new settings are tested before they are saved (webapp/jobs/edit_trial.py).

Real Dovecot and aiosmtpd, the trial job on a real RQ worker.
"""

from __future__ import annotations

from tests.conftest import login
from tests.support.job_worker import run_burst
from tests.test_connection_jobs import PASSWORD, japp, make_mailbox, people  # noqa: F401 (fixtures)
from tests.test_mailbox_edit_retest import _edit_form
from webapp.extensions import db
from webapp.models import Account
from webapp.secretbox import box


def _account(account_id: int) -> Account:
    db.session.expire_all()
    return db.session.get(Account, account_id)


def test_a_wrong_new_password_is_refused_and_the_working_one_kept(
    japp,  # noqa: F811
    people,  # noqa: F811
    dovecot,
    smtp_server,
):
    imap = ("127.0.0.1", dovecot.imaps_port, "tls")
    smtp = ("127.0.0.1", smtp_server.smtps_port, "tls")
    account_id = make_mailbox(people["alice"], imap, smtp)
    run_burst(japp)
    assert _account(account_id).state == "connected"

    client = japp.test_client()
    login(client, "alice", "alice-console-pw")
    form = _edit_form(_account(account_id), password="a-wrong-new-password", description="Work")
    saved = client.post(f"/mailboxes/{account_id}/edit", data=form)
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert f"testing={account_id}" in saved.location and "job=" in saved.location
    assert "saved once the test passes" in client.get(saved.location).get_data(as_text=True)
    account = _account(account_id)
    assert box().decrypt(account.password_encrypted) == PASSWORD  # not replaced while it is tested
    assert account.description == "Work"  # the rest of the edit is saved at once
    run_burst(japp)

    account = _account(account_id)
    assert box().decrypt(account.password_encrypted) == PASSWORD
    assert account.state == "connected" and account.last_error is None
    row = client.get(f"/mailboxes/{account_id}/row").get_data(as_text=True)
    assert "were not saved" in row and 'data-error-class="auth"' in row
    page = client.get(f"/mailboxes/{account_id}/edit").get_data(as_text=True)
    assert "were not saved" in page and "Not working yet" not in page  # it does work
    # The kept settings still work: a connection test passes.
    assert people["alice"].post(f"/api/v1/accounts/{account_id}/test").status_code == 202
    run_burst(japp)
    assert _account(account_id).state == "connected"

    # The right password typed again is tested and saved.
    form = _edit_form(_account(account_id), password=PASSWORD, description="Work")
    assert client.post(f"/mailboxes/{account_id}/edit", data=form).status_code == 302
    before = _account(account_id).password_encrypted
    run_burst(japp)
    account = _account(account_id)
    assert account.password_encrypted != before and box().decrypt(account.password_encrypted) == PASSWORD
    assert account.state == "connected"
    assert "were not saved" not in client.get(f"/mailboxes/{account_id}/row").get_data(as_text=True)
