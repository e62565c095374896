"""PATCH /api/v1/accounts/<id> does not put a working mailbox at risk: new connection settings are
tried first and saved only if their test passes (as the edit page does, webapp/jobs/edit_trial.py).

Real Dovecot and aiosmtpd, the trial job on a real RQ worker.
"""

from __future__ import annotations

from tests.support.job_worker import run_burst
from tests.test_connection_jobs import PASSWORD, japp, make_mailbox, people  # noqa: F401 (fixtures)
from webapp.extensions import db
from webapp.models import Account
from webapp.secretbox import box


def _account(account_id: int) -> Account:
    db.session.expire_all()
    return db.session.get(Account, account_id)


def test_a_patch_of_a_working_mailbox_tries_the_new_password_before_saving_it(
    japp,  # noqa: F811
    people,  # noqa: F811
    dovecot,
    smtp_server,
):
    alice = people["alice"]
    imap = ("127.0.0.1", dovecot.imaps_port, "tls")
    smtp = ("127.0.0.1", smtp_server.smtps_port, "tls")
    account_id = make_mailbox(alice, imap, smtp)
    run_burst(japp)
    assert _account(account_id).state == "connected"

    wrong = alice.patch(f"/api/v1/accounts/{account_id}", json={"password": "wrong-new", "description": "Work"})
    assert wrong.status_code == 202, wrong.get_json()
    body = wrong.get_json()
    assert wrong.headers["Location"] == body["status_url"] == body["test"]["status_url"]
    assert body["description"] == "Work" and body["state"] == "connected"
    account = _account(account_id)
    assert box().decrypt(account.password_encrypted) == PASSWORD  # not replaced while it is tested
    assert account.description == "Work"  # the other fields are saved at once
    run_burst(japp)
    assert alice.get(body["status_url"]).get_json()["status"] == "finished"
    account = _account(account_id)
    assert box().decrypt(account.password_encrypted) == PASSWORD  # the trial failed: kept
    assert account.state == "connected" and account.last_error is None

    right = alice.patch(f"/api/v1/accounts/{account_id}", json={"password": PASSWORD})
    assert right.status_code == 202, right.get_json()
    run_burst(japp)
    account = _account(account_id)
    assert box().decrypt(account.password_encrypted) == PASSWORD and account.state == "connected"

    described = alice.patch(f"/api/v1/accounts/{account_id}", json={"description": "Home"})
    assert described.status_code == 200 and "test" not in described.get_json()
