"""The outgoing sweeper: a message left ``queued`` without a live job is sent exactly once.

Real pieces: the send job runs in a real forking RQ worker (``run_burst``), through the
aiosmtpd server, with the Sent copy on Dovecot; the sweeper is the function cron runs.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq.job import Job
from sqlalchemy import update

from tests.support.job_worker import run_burst
from tests.support.send_support import sending_mailbox, server_message_ids
from webapp import sending, settings_store
from webapp.extensions import db
from webapp.jobs import send as send_job
from webapp.models import OutgoingMessage, utcnow
from webapp.queue import get_redis

FIELDS = {"to": ["bob@example.org"], "subject": "Left behind", "text": "Still to be sent."}


@pytest.fixture
def app(make_app, certs):
    app = make_app(MAIL_CA_FILE=str(certs.ca_cert), SEND_RETRY_INTERVALS=[0, 0], SEND_SWEEP_GRACE=60)
    with app.app_context():
        settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
        db.session.commit()
        yield app
        db.session.remove()


@pytest.fixture
def mailbox(app, users, clean_dovecot, clean_smtp_server):
    return sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"])


def _age(row_id: int, seconds: int) -> None:
    """Make the row look ``seconds`` old (as if the web died that long ago)."""
    db.session.execute(
        update(OutgoingMessage)
        .where(OutgoingMessage.id == row_id)
        .values(updated_at=utcnow() - timedelta(seconds=seconds))
    )
    db.session.commit()


def _row(row_id: int) -> OutgoingMessage:
    db.session.expire_all()
    return db.session.get(OutgoingMessage, row_id)


def test_a_queued_message_without_a_job_is_sent_once_even_when_swept_twice(
    app, users, mailbox, clean_dovecot, smtp_server
):
    # The web committed the row and died before enqueueing: queued, no job.
    row = sending.create_outgoing(users["alice"]["user"], FIELDS, origin="api")
    assert row.state == "queued" and row.job_id is None
    assert send_job.sweep_outgoing()["enqueued"] == []  # within the grace period: left alone
    _age(row.id, 61)
    first = send_job.sweep_outgoing()
    assert first["enqueued"] == [row.id]
    job_id = _row(row.id).job_id
    _age(row.id, 61)
    assert send_job.sweep_outgoing()["enqueued"] == []  # its job is queued: nothing more
    assert _row(row.id).job_id == job_id
    run_burst(app, fork=True)
    sent = _row(row.id)
    assert sent.state == "sent" and sent.smtp_accepted_at is not None
    assert len(smtp_server.messages) == 1
    assert [mid for mid, _ in server_message_ids(clean_dovecot)] == [sent.message_id]
    _age(row.id, 61)
    assert send_job.sweep_outgoing()["enqueued"] == []
    run_burst(app, fork=True)
    assert len(smtp_server.messages) == 1


def test_a_message_whose_job_vanished_from_redis_gets_a_new_one(app, users, mailbox, smtp_server):
    row = sending.create_outgoing(users["alice"]["user"], FIELDS, origin="api")
    send_job.start(row)
    Job.fetch(row.job_id, connection=get_redis()).delete()  # Redis lost it (a restart without a dump)
    _age(row.id, 61)
    assert send_job.sweep_outgoing()["enqueued"] == [row.id]
    run_burst(app, fork=True)
    assert _row(row.id).state == "sent" and len(smtp_server.messages) == 1


def test_a_job_that_ended_without_sending_leaves_no_message_behind(app, users, mailbox, smtp_server):
    """The job found the message's lock taken and returned: the row stayed queued; swept, it goes."""
    row = sending.create_outgoing(users["alice"]["user"], FIELDS, origin="api")
    send_job.start(row)
    held = get_redis().lock(sending.LOCK_KEY.format(row.id), timeout=30)
    assert held.acquire(blocking=False)
    try:
        run_burst(app, fork=True)
    finally:
        held.release()
    assert _row(row.id).state == "queued" and not smtp_server.messages
    _age(row.id, 61)
    assert send_job.sweep_outgoing()["enqueued"] == [row.id]
    run_burst(app, fork=True)
    assert _row(row.id).state == "sent" and len(smtp_server.messages) == 1


def test_a_scheduled_message_whose_job_vanished_is_scheduled_again(app, users, mailbox):
    later = (utcnow() + timedelta(days=1)).isoformat()
    row = sending.create_outgoing(users["alice"]["user"], {**FIELDS, "send_at": later}, origin="api")
    send_job.start(row)
    Job.fetch(row.job_id, connection=get_redis()).delete()
    _age(row.id, 61)
    assert send_job.sweep_outgoing()["enqueued"] == [row.id]
    fresh = _row(row.id)
    assert fresh.state == "scheduled"
    job = Job.fetch(fresh.job_id, connection=get_redis())
    assert getattr(job.get_status(), "value", None) == "scheduled"


def test_cron_runs_the_sweeper_and_the_abandoned_job_recovery(app, monkeypatch):
    """`mailroom cron` registers both with RQ's cron scheduler (start() is stopped before it loops)."""
    from rq.cron import CronScheduler

    from webapp.cli import cron

    registered = []
    monkeypatch.setattr(
        CronScheduler, "start", lambda self: registered.extend(j.func for j in self._cron_jobs)
    )
    app.test_cli_runner().invoke(cron, catch_exceptions=False)
    names = {f.__name__ for f in registered}
    assert {"sweep_outgoing", "recover_abandoned", "sync_due_accounts"} <= names
