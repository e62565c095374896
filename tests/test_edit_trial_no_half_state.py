"""An edit of a working mailbox's password never commits the untested password, not even for the
few milliseconds before the working settings are put back: a sync, send or cron process reading the
row at any commit of the edit's request sees the working settings (webapp/jobs/edit_trial.py).

Each commit of the request is watched from another database connection (as another process reads
the row); real Dovecot and aiosmtpd, the trial job on a real RQ worker.
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event, select

from tests.conftest import login
from tests.support.job_worker import run_burst
from tests.test_connection_jobs import PASSWORD, japp, make_mailbox, people  # noqa: F401 (fixtures)
from tests.test_mailbox_edit_retest import _edit_form
from webapp.extensions import db
from webapp.models import Account
from webapp.secretbox import box


@contextmanager
def _seen_by_others(account_id: int):
    """The (password, state) another connection reads right after each commit of the session."""
    seen: list[tuple[str, str]] = []

    def look(session) -> None:
        with db.engine.connect() as other:
            row = other.execute(
                select(Account.password_encrypted, Account.state).where(Account.id == account_id)
            ).one()
        seen.append((box().decrypt(row.password_encrypted), row.state))

    event.listen(db.session, "after_commit", look)
    try:
        yield seen
    finally:
        event.remove(db.session, "after_commit", look)


def _working_mailbox(japp, people, dovecot, smtp_server) -> int:  # noqa: F811
    imap = ("127.0.0.1", dovecot.imaps_port, "tls")
    smtp = ("127.0.0.1", smtp_server.smtps_port, "tls")
    account_id = make_mailbox(people["alice"], imap, smtp)
    run_burst(japp)
    db.session.expire_all()
    assert db.session.get(Account, account_id).state == "connected"
    return account_id


def test_an_api_patch_never_commits_the_untested_password(japp, people, dovecot, smtp_server):  # noqa: F811
    account_id = _working_mailbox(japp, people, dovecot, smtp_server)
    with _seen_by_others(account_id) as seen:
        answer = people["alice"].patch(
            f"/api/v1/accounts/{account_id}", json={"password": "wrong-new", "description": "Work"}
        )
    assert answer.status_code == 202, answer.get_json()
    assert seen and set(seen) == {(PASSWORD, "connected")}, seen
    with _seen_by_others(account_id) as seen:  # an edit that changes no connection setting: one commit
        assert (
            people["alice"].patch(f"/api/v1/accounts/{account_id}", json={"description": "H"}).status_code
            == 200
        )
    assert seen == [(PASSWORD, "connected")]
    db.session.expire_all()
    assert db.session.get(Account, account_id).description == "H"


def test_the_edit_page_never_commits_the_untested_password(japp, people, dovecot, smtp_server):  # noqa: F811
    account_id = _working_mailbox(japp, people, dovecot, smtp_server)
    client = japp.test_client()
    login(client, "alice", "alice-console-pw")
    form = _edit_form(
        db.session.get(Account, account_id), password="a-wrong-new-password", description="Work"
    )
    with _seen_by_others(account_id) as seen:
        saved = client.post(f"/mailboxes/{account_id}/edit", data=form)
    assert saved.status_code == 302 and "job=" in saved.location, saved.get_data(as_text=True)
    assert seen and set(seen) == {(PASSWORD, "connected")}, seen
    db.session.expire_all()
    assert db.session.get(Account, account_id).description == "Work"  # the rest saved at once
