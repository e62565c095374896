"""Jobs enqueued under the dotted paths of the layout before ``webapp/jobs/`` still run.

RQ stores a job's function and callbacks as dotted paths.  A scheduled send waits in RQ's
ScheduledJobRegistry for up to 366 days, and cron's or a person's jobs may wait in the queue
across an upgrade: the old modules stay as aliases of the job functions only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rq import Callback
from rq.job import Job
from rq.utils import import_attribute

from tests.support.job_worker import WorkerProcess, run_burst
from tests.support.send_support import parsed, sending_mailbox
from webapp import sending, settings_store
from webapp.extensions import db
from webapp.models import Account, Folder, OutgoingMessage, OutgoingState
from webapp.queue import get_queue, get_redis

#: Every dotted path a job or a callback was enqueued under before, and where it lives now.
OLD_PATHS = {
    "webapp.jobs.heartbeat": "webapp.jobs.schedule.heartbeat",
    "webapp.jobs.test_account_connection": "webapp.jobs.connection_test.test_account",
    "webapp.jobs.test_service_connection": "webapp.jobs.connection_test.test_service",
    "webapp.sync_jobs.sync_account": "webapp.jobs.sync.sync_account",
    "webapp.sync_jobs.on_sync_failure": "webapp.jobs.sync.on_sync_failure",
    "webapp.sync_jobs.sync_due_accounts": "webapp.jobs.sync.sync_due_accounts",
    "webapp.send_jobs.send_outgoing": "webapp.jobs.send.send_outgoing",
    "webapp.send_queue.on_send_failure": "webapp.jobs.send.on_send_failure",
    "webapp.send_queue.sweep_outgoing": "webapp.jobs.send.sweep_outgoing",
    "webapp.folder_jobs.list_folders": "webapp.jobs.folders.list_folders",
    "webapp.discovery_jobs.discover_settings": "webapp.jobs.discovery.discover_settings",
    "webapp.automation.run_filters": "webapp.jobs.automation.run_filters",
    "webapp.message_bodies.fetch_body": "webapp.jobs.bodies.fetch_body",
    "webapp.abandoned_jobs.recover_abandoned": "webapp.jobs.abandoned.recover_abandoned",
}


@pytest.mark.parametrize("old, new", sorted(OLD_PATHS.items()))
def test_an_old_dotted_path_names_the_same_job(old, new):
    assert import_attribute(old) is import_attribute(new)


def test_jobs_enqueued_now_name_the_new_paths(app, users, clean_dovecot, clean_smtp_server):
    from webapp.jobs import sync

    account = sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"])
    with app.test_request_context():
        job = sync.start(account)
    assert job.func_name == "webapp.jobs.sync.sync_account"
    assert job._failure_callback_name == "webapp.jobs.sync.on_sync_failure"


@pytest.fixture
def app(make_app, certs):
    app = make_app(MAIL_CA_FILE=str(certs.ca_cert), SEND_RETRY_INTERVALS=[])
    with app.app_context():
        settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
        db.session.commit()
        yield app
        db.session.remove()


def test_a_sync_queued_under_its_old_path_runs_in_a_real_worker(app, users, clean_dovecot, clean_smtp_server):
    clean_dovecot.add_messages("alice", 3)
    account = sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"])
    job = get_queue().enqueue(
        "webapp.sync_jobs.sync_account",
        account.id,
        on_failure=Callback("webapp.sync_jobs.on_sync_failure"),
        meta={"owner_id": account.user_id, "kind": "sync", "account_id": account.id},
    )
    run_burst(app, fork=True)
    job = Job.fetch(job.id, connection=get_redis())
    assert job.get_status().value == "finished", job.latest_result()
    assert job.return_value()["ok"] and job.return_value()["inserted"] == 3
    db.session.expire_all()
    inbox = Folder.query.filter_by(account_id=account.id, name="INBOX").one()
    assert inbox.message_count == 3 and db.session.get(Account, account.id).last_synced_at is not None


def test_a_send_scheduled_under_its_old_path_runs_at_its_time(
    app, users, clean_dovecot, clean_smtp_server, smtp_server, tmp_path
):
    """As the web enqueued it before: ``enqueue_at`` the old path with the old failure callback."""
    account = sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"])
    row = sending.create_outgoing(
        users["alice"]["user"],
        {"to": ["bob@example.org"], "subject": "Queued a year ago", "text": "Hi.", "send_at": None},
        origin="api",
    )
    row.move_to(OutgoingState.SCHEDULED)
    job = get_queue().enqueue_at(
        datetime.now(UTC) - timedelta(seconds=1),
        "webapp.send_jobs.send_outgoing",
        row.id,
        on_failure=Callback("webapp.send_queue.on_send_failure"),
        meta={"owner_id": row.user_id, "kind": "send", "account_id": account.id, "outgoing_id": row.id},
    )
    row.job_id = job.id
    db.session.commit()
    row_id, message_id = row.id, row.message_id
    db.session.remove()

    WorkerProcess(app, tmp_path).run()  # `mailroom worker --burst`: its scheduler moves the due job

    sent = db.session.get(OutgoingMessage, row_id)
    assert sent.state == OutgoingState.SENT.value, (sent.error, sent.error_class)
    (received,) = smtp_server.messages
    assert parsed(received.data)["Message-ID"] == message_id
