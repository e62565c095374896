"""A sent message shows in the console's Sent view at once: after the send job appends the Sent
copy to a synced Sent folder, it enqueues a sync of the mailbox on the interactive lane (not
waiting for the periodic sync).  A sync queued or running already is left to do it: the send
does not fail.  Real ``mailroom worker`` processes, aiosmtpd and Dovecot."""

from __future__ import annotations

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import FinishedJobRegistry

from tests.support.job_worker import WorkerProcess
from tests.support.send_support import sending_mailbox, server_message_ids
from webapp import settings_store
from webapp.extensions import db
from webapp.jobs.sync import JOB_KEY, sync_account
from webapp.models import Account, Folder, OutgoingMessage
from webapp.queue import get_queue, get_redis


@pytest.fixture
def app(make_app, certs):
    app = make_app(MAIL_CA_FILE=str(certs.ca_cert), SEND_RETRY_INTERVALS=[])
    with app.app_context():
        settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
        db.session.commit()
        yield app
        db.session.remove()


@pytest.fixture
def mailbox(app, users, clean_dovecot, clean_smtp_server):
    """The mailbox's id (the tests close the session before each worker run)."""
    return sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"]).id


def send(api_client, subject: str, **fields) -> dict:
    body = {"to": ["bob@example.org"], "subject": subject, "text": "Hi.", **fields}
    response = api_client.post("/api/v1/messages/send", json=body)
    assert response.status_code == 202, response.json
    return response.json


def sent_view(api_client, account_id: int) -> list[str]:
    sent = Folder.query.filter_by(account_id=account_id, role="sent").one()
    response = api_client.get(f"/api/v1/accounts/{account_id}/messages?folder={sent.id}")
    assert response.status_code == 200, response.json
    return [m["subject"] for m in response.json["messages"]]


def after_send_results() -> list[dict]:
    """What each finished sync_after_send job answered (the worker ran them on the interactive lane)."""
    registry = FinishedJobRegistry(queue=get_queue())
    jobs = [Job.fetch(i, connection=get_redis()) for i in registry.get_job_ids()]
    return [job.return_value() for job in jobs if job.func_name == "webapp.jobs.sync.sync_after_send"]


def test_sent_view_shows_the_message_right_after_sending(
    app, api, mailbox, smtp_server, clean_dovecot, tmp_path
):
    assert sent_view(api["alice"], mailbox) == []
    body = send(api["alice"], "Straight to Sent")
    db.session.remove()
    WorkerProcess(app, tmp_path).run()  # the send job, then the sync it enqueued; no cron
    row = db.session.get(OutgoingMessage, body["id"])
    assert row.state == "sent" and row.sent_copy_saved_at is not None, row.error
    assert [mid for mid, _ in server_message_ids(clean_dovecot)] == [body["message_id"]]
    assert sent_view(api["alice"], mailbox) == ["Straight to Sent"]


def test_a_sync_already_queued_does_not_fail_the_send(app, api, mailbox, smtp_server, tmp_path):
    # A sync of the mailbox waits in a queue this worker does not work: starting another is refused.
    parked = Queue("mailroom-parked-test", connection=get_redis()).enqueue(sync_account, mailbox)
    get_redis().set(JOB_KEY.format(mailbox), parked.id, ex=600)
    try:
        body = send(api["alice"], "Sync already queued")
        db.session.remove()
        WorkerProcess(app, tmp_path).run()
        row = db.session.get(OutgoingMessage, body["id"])
        assert row.state == "sent" and row.error is None and row.sent_copy_saved_at is not None
        assert sent_view(api["alice"], mailbox) == []  # the queued sync will bring it
        (result,) = after_send_results()  # the sync after the send ran, and left the queued one
        assert result["skipped"] is True and result["ok"] is False, result
    finally:
        parked.delete()
        get_redis().delete(JOB_KEY.format(mailbox))


def test_no_sync_when_the_sent_folder_is_not_synced(app, api, mailbox, smtp_server, tmp_path):
    Folder.query.filter_by(account_id=mailbox, role="sent").one().sync = False
    db.session.commit()
    body = send(api["alice"], "Sent folder not synced")
    db.session.remove()
    WorkerProcess(app, tmp_path).run()
    assert db.session.get(OutgoingMessage, body["id"]).state == "sent"
    assert get_redis().get(JOB_KEY.format(mailbox)) is None  # no sync was started


def test_the_sync_after_sending_through_a_shared_mailbox_is_its_owners(
    app, api, users, mailbox, smtp_server, tmp_path
):
    alice_id = users["alice"]["user"].id
    db.session.get(Account, mailbox).shared_sender = True  # Alice's mailbox, Bob may send through it
    db.session.commit()
    body = send(api["bob"], "Through Alice's mailbox", **{"from": "alice@example.com"})
    db.session.remove()
    WorkerProcess(app, tmp_path).run()
    assert db.session.get(OutgoingMessage, body["id"]).state == "sent"
    (result,) = after_send_results()
    assert result["ok"] is True, result
    sync = Job.fetch(result["job_id"], connection=get_redis())
    assert sync.meta["owner_id"] == alice_id  # not Bob's
    assert get_redis().get(JOB_KEY.format(mailbox)).decode() == sync.id
    assert api["alice"].get(f"/api/v1/jobs/{sync.id}").status_code == 200
    assert api["bob"].get(f"/api/v1/jobs/{sync.id}").status_code == 404
    assert sent_view(api["alice"], mailbox) == ["Through Alice's mailbox"]
