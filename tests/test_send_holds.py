"""A disabled user sends nothing: their waiting messages are held (not deleted), and enabling them
again lets what is still to come go at its time; what fell due meanwhile waits for its owner.

Real Dovecot + aiosmtpd; the jobs run as RQ runs them (run_burst).  See webapp/send_holds.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rq.registry import ScheduledJobRegistry

from tests.conftest import login
from tests.support.job_worker import run_burst
from tests.support.send_support import parsed, sending_mailbox
from webapp.extensions import db
from webapp.jobs.send import send_outgoing
from webapp.models import OutgoingMessage, User, utcnow
from webapp.queue import get_queue


@pytest.fixture
def app(send_app):
    return send_app


@pytest.fixture
def mailbox(app, users, clean_dovecot, clean_smtp_server):
    return sending_mailbox(clean_dovecot, clean_smtp_server, users["alice"]["user"])


def _send(api_client, **fields) -> dict:
    body = {"to": ["bob@example.org"], "subject": "Hello", "text": "Hi.", **fields}
    response = api_client.post("/api/v1/messages/send", json=body)
    assert response.status_code == 202, response.json
    return response.json


def _state(row_id: int) -> str:
    db.session.expire_all()
    return db.session.get(OutgoingMessage, row_id).state


def _later(**delta) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def test_a_job_already_queued_sends_nothing_once_its_owner_is_disabled(app, api, users, mailbox, smtp_server):
    """The rule holds at the moment of sending: a disable that did not hold this row (it was being
    retried, or the disable came from another process) still stops the job."""
    now = _send(api["alice"])
    db.session.get(User, users["alice"]["id"]).disabled_at = utcnow()  # the disable, as the job sees it
    db.session.commit()
    run_burst()
    assert smtp_server.messages == []
    assert _state(now["id"]) == "held"
    # A copy of the job run again (a retry, the sweeper) still sends nothing.
    assert send_outgoing(now["id"])["skipped"] and smtp_server.messages == []


def test_disable_holds_waiting_messages_and_enable_gives_back_what_is_still_to_come(
    app, client, api, users, mailbox, smtp_server
):
    alice_id = users["alice"]["id"]
    coming = _send(api["alice"], subject="Next week", send_at=_later(days=7))
    missed = _send(api["alice"], subject="In an hour", send_at=_later(hours=1))
    queued = _send(api["alice"], subject="Right now")  # its job waits in the queue

    disabled = api["admin"].patch(f"/api/v1/users/{alice_id}", json={"disabled": True})
    assert disabled.status_code == 200, disabled.json
    assert [_state(m["id"]) for m in (coming, missed, queued)] == ["held"] * 3
    # Her token is refused on every send path while she is disabled.
    assert api["alice"].post("/api/v1/messages/send", json={"to": ["x@example.org"]}).status_code == 401
    assert api["alice"].patch(f"/api/v1/outgoing/{missed['id']}", json={"send_at": None}).status_code == 401
    run_burst()  # the queued job runs: nothing goes
    assert smtp_server.messages == []
    assert _state(queued["id"]) == "held"

    # Time passes while she is disabled: "In an hour" falls due.
    row = db.session.get(OutgoingMessage, missed["id"])
    row.send_at = utcnow() - timedelta(minutes=5)
    db.session.commit()

    enabled = api["admin"].patch(f"/api/v1/users/{alice_id}", json={"disabled": False})
    assert enabled.status_code == 200, enabled.json
    assert [_state(m["id"]) for m in (coming, missed, queued)] == ["scheduled", "held", "held"]
    # Next week's message goes at its time through its own scheduled job.
    assert coming["job_id"] in ScheduledJobRegistry(queue=get_queue()).get_job_ids()
    run_burst()
    assert smtp_server.messages == []  # nothing late goes by itself

    # She sees the held messages in Scheduled with what to do, and decides.
    assert login(client, "alice", users["alice"]["password"]).status_code == 302
    page = client.get("/compose/scheduled").get_data(as_text=True)
    assert 'data-state="held"' in page and "Send it now, edit it or cancel it." in page
    assert f"/compose/outgoing/{missed['id']}/edit" in page
    assert api["alice"].post(f"/api/v1/outgoing/{queued['id']}/cancel").json["state"] == "cancelled"
    sent_now = api["alice"].patch(f"/api/v1/outgoing/{missed['id']}", json={"send_at": None})
    assert sent_now.status_code == 202 and sent_now.json["state"] == "queued", sent_now.json
    run_burst()
    assert _state(missed["id"]) == "sent"
    assert [str(parsed(m.data)["Subject"]) for m in smtp_server.messages] == ["In an hour"]
