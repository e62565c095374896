"""A sent reply's original is marked ``\\Answered`` even when the worker is SIGKILLed right after the
SMTP server accepted the reply: the mark is committed with ``smtp_accepted_at`` (one transaction),
and the outgoing sweeper enqueues the write-back the dead worker never enqueued.

Real pieces: ``mailroom worker`` in a child process killed at that commit
(tests/support/killed_send_worker.py), Dovecot, aiosmtpd, RQ's abandoned-job retry.
"""

from __future__ import annotations

import signal
import time

import pytest
from rq.job import Job

from tests.support.job_worker import run_burst
from tests.support.killed_send_worker import KilledSendWorker
from tests.support.send_support import sending_mailbox
from tests.support.sync_support import server_flags
from tests.test_reply_answered import _answer, _deliver, _row
from webapp import settings_store
from webapp.extensions import db
from webapp.jobs import abandoned
from webapp.jobs.send import sweep_outgoing
from webapp.jobs.sync import sync_account
from webapp.models import Message, MessageChange, OutgoingMessage
from webapp.queue import get_redis

pytestmark = pytest.mark.usefixtures("fresh_plugins")


@pytest.fixture
def app(make_app, certs):
    app = make_app(
        MAIL_CA_FILE=str(certs.ca_cert), SEND_RETRY_INTERVALS=[0, 0], WORKER_PULSE_TTL=3, SEND_SWEEP_GRACE=0
    )
    with app.app_context():
        settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
        db.session.commit()
        yield app
        db.session.remove()


def _recovered(job_id: str, timeout: float = 60) -> None:
    """Wait until RQ's abandoned-job path has taken the dead worker's job (it retries it)."""
    deadline = time.monotonic() + timeout
    while not abandoned.recover(Job.fetch(job_id, connection=get_redis())):
        assert time.monotonic() < deadline, "the killed worker's job was never recovered"
        time.sleep(0.2)


def test_a_worker_killed_right_after_the_server_accepted_a_reply_still_marks_the_original(
    app, api, users, clean_dovecot, clean_smtp_server, tmp_path
):
    account = sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"])
    _deliver(clean_dovecot, "<offer@example.org>", "Offer")
    assert sync_account(account.id)["ok"]
    offer = _row(account, "<offer@example.org>")
    assert api["alice"].post(f"/api/v1/messages/{offer.id}/reply").status_code == 202  # its body first
    run_burst()
    offer_id, offer_uid = offer.id, offer.uid
    reply = _answer(api["alice"], offer_id, "reply", to=["carol@example.org"])
    reply_id, job_id = reply.id, reply.job_id

    db.session.remove()
    worker = KilledSendWorker(app, tmp_path).start()
    assert worker.wait(120) == -signal.SIGKILL, worker.output()
    db.session.expire_all()
    row = db.session.get(OutgoingMessage, reply_id)
    assert row.smtp_accepted_at is not None and len(clean_smtp_server.messages) == 1
    assert "\\Answered" not in server_flags(clean_dovecot, "INBOX").get(offer_uid, "")

    # A new worker after the dead one: RQ retries the send (it only saves the Sent copy), and
    # cron's outgoing sweeper runs.  The original ends \Answered on the server, the reply sent once.
    _recovered(job_id)
    run_burst()
    sweep_outgoing()
    run_burst()
    db.session.expire_all()
    assert db.session.get(OutgoingMessage, reply_id).state == "sent"
    assert len(clean_smtp_server.messages) == 1
    assert "\\Answered" in server_flags(clean_dovecot, "INBOX")[offer_uid].split()
    assert "\\Answered" in db.session.get(Message, offer_id).flags.split()
    assert MessageChange.query.count() == 0
