"""Scheduled sends: RQ's scheduler sends them at their time and not before; cancel and edit until then.

The "goes at its time" test runs the real ``mailroom worker --burst`` (a worker with its
scheduler, which in burst mode moves due scheduled jobs to the queue once, then works it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from tests.support.job_worker import WorkerProcess, run_burst
from tests.support.send_support import parsed, sending_mailbox
from webapp import settings_store
from webapp.extensions import db
from webapp.jobs.send import send_outgoing
from webapp.models import OutgoingMessage
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
    return sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"])


def later(**delta) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def row(row_id: int) -> OutgoingMessage:
    db.session.expire_all()
    return db.session.get(OutgoingMessage, row_id)


def scheduled_jobs() -> list[str]:
    return ScheduledJobRegistry(queue=get_queue()).get_job_ids()


def schedule(api_client, **fields):
    body = {"to": ["bob@example.org"], "subject": "Later", "text": "Hi.", **fields}
    response = api_client.post("/api/v1/messages/send", json=body)
    assert response.status_code == 202, response.json
    return response.json


def test_scheduled_send_goes_at_its_time_and_not_before(app, api, mailbox, smtp_server, tmp_path):
    send_at = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    body = schedule(api["alice"], send_at=send_at.isoformat())
    assert body["state"] == "scheduled" and body["send_at"]
    assert scheduled_jobs() == [body["job_id"]]
    assert [r["id"] for r in api["alice"].get("/api/v1/outgoing?state=scheduled").json] == [body["id"]]
    registry = ScheduledJobRegistry(queue=get_queue())
    assert registry.get_scheduled_time(body["job_id"]) == send_at  # what RQ's scheduler goes by

    db.session.remove()
    WorkerProcess(app, tmp_path).run()  # before its time: the scheduler leaves it where it is
    assert smtp_server.messages == []
    assert row(body["id"]).state == "scheduled" and scheduled_jobs() == [body["job_id"]]

    # Its time comes: the job's time in the registry is moved to just now instead of waiting an hour.
    registry.schedule(
        Job.fetch(body["job_id"], connection=get_redis()), datetime.now(UTC) - timedelta(seconds=1)
    )
    db.session.remove()
    WorkerProcess(app, tmp_path).run()  # now due: moved to the queue and sent
    sent = row(body["id"])
    assert sent.state == "sent", (sent.error, sent.error_class)
    (received,) = smtp_server.messages
    assert parsed(received.data)["Message-ID"] == body["message_id"]
    assert scheduled_jobs() == []


def test_cancel_a_scheduled_send(app, api, mailbox, smtp_server):
    body = schedule(api["alice"], send_at=later(hours=1))
    url = f"/api/v1/outgoing/{body['id']}"
    assert api["bob"].post(url + "/cancel").status_code == 404
    response = api["alice"].post(url + "/cancel")
    assert response.status_code == 200 and response.json["state"] == "cancelled"
    assert scheduled_jobs() == []
    with pytest.raises(NoSuchJobError):
        Job.fetch(body["job_id"], connection=get_redis())
    # The job, should it run anyway (a copy enqueued before the cancel), sends nothing.
    assert send_outgoing(body["id"])["skipped"] and smtp_server.messages == []
    again = api["alice"].post(url + "/cancel")
    assert again.status_code == 409
    assert api["alice"].patch(url, json={"subject": "x"}).status_code == 409


def test_edit_a_scheduled_send_reschedules_it(app, api, mailbox, smtp_server):
    body = schedule(api["alice"], send_at=later(hours=1))
    url = f"/api/v1/outgoing/{body['id']}"
    new_time = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    edited = api["alice"].patch(url, json={"subject": "Later, edited", "send_at": new_time.isoformat()})
    assert edited.status_code == 202, edited.json
    assert edited.json["state"] == "scheduled" and edited.json["job_id"] != body["job_id"]
    assert edited.json["message_id"] == body["message_id"]  # the identity of the message stays
    assert scheduled_jobs() == [edited.json["job_id"]]
    registry = ScheduledJobRegistry(queue=get_queue())
    assert registry.get_scheduled_time(edited.json["job_id"]) == new_time
    # Fields are validated as on sending.
    bad = api["alice"].patch(url, json={"send_at": "2000-01-01T00:00:00Z", "to": []})
    assert bad.status_code == 422 and set(bad.json["fields"]) == {"send_at", "to"}
    assert api["alice"].patch(url, json={"from": "bob@example.com"}).status_code == 403

    # send_at null: send now.
    now = api["alice"].patch(url, json={"send_at": None})
    assert now.status_code == 202 and now.json["state"] == "queued" and scheduled_jobs() == []
    run_burst()
    assert row(body["id"]).state == "sent"
    (received,) = smtp_server.messages
    assert str(parsed(received.data)["Subject"]) == "Later, edited"
    assert api["alice"].patch(url, json={"subject": "too late"}).status_code == 409
    assert api["alice"].post(url + "/cancel").status_code == 409


def test_a_message_being_sent_cannot_be_cancelled_or_edited(app, api, mailbox):
    body = schedule(api["alice"], send_at=later(hours=1))
    outgoing = row(body["id"])
    outgoing.state = "sending"
    db.session.commit()
    url = f"/api/v1/outgoing/{body['id']}"
    assert api["alice"].post(url + "/cancel").status_code == 409
    assert api["alice"].patch(url, json={"subject": "x"}).status_code == 409
