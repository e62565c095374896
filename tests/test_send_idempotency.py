"""``Idempotency-Key`` on ``POST /api/v1/messages/send``: a retried request never sends twice.

Sends go through the real aiosmtpd server in a real forking RQ worker (``run_burst``).
"""

from __future__ import annotations

import threading

import pytest

from tests.conftest import Api
from tests.support.job_worker import run_burst
from tests.support.send_support import sending_mailbox
from webapp.extensions import db
from webapp.models import OutgoingMessage

URL = "/api/v1/messages/send"
BODY = {"to": ["bob@example.org"], "subject": "Invoice 42", "text": "Attached soon."}


@pytest.fixture
def app(send_app):
    return send_app


@pytest.fixture
def mailboxes(app, users, clean_dovecot, clean_smtp_server):
    return {
        name: sending_mailbox(clean_dovecot, clean_smtp_server, users[name]["user"], user=name)
        for name in ("alice", "bob")
    }


def _rows(user_id: int | None = None) -> list[OutgoingMessage]:
    db.session.expire_all()
    query = OutgoingMessage.query
    if user_id is not None:
        query = query.filter_by(user_id=user_id)
    return query.order_by(OutgoingMessage.id).all()


def test_a_retry_with_the_same_key_answers_the_first_message_and_sends_once(
    app, api, users, mailboxes, smtp_server
):
    first = api["alice"].post(URL, json=BODY, headers={"Idempotency-Key": "order-42/send"})
    assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
    # The same body with its keys in another order is the same request.
    again = api["alice"].post(
        URL, json=dict(reversed(BODY.items())), headers={"Idempotency-Key": "order-42/send"}
    )
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json["id"] == first.json["id"] and again.json["message_id"] == first.json["message_id"]
    assert again.json["job_id"] == first.json["job_id"]
    run_burst(app)
    after = api["alice"].post(URL, json=BODY, headers={"Idempotency-Key": "order-42/send"})
    assert after.status_code == 202 and after.json["id"] == first.json["id"] and after.json["state"] == "sent"
    run_burst(app)
    assert len(_rows()) == 1 and len(smtp_server.messages) == 1


def test_the_same_key_with_another_body_is_refused(api, users, mailboxes):
    key = {"Idempotency-Key": "k-1"}
    assert api["alice"].post(URL, json=BODY, headers=key).status_code == 202
    other = api["alice"].post(URL, json={**BODY, "subject": "Invoice 43"}, headers=key)
    assert other.status_code == 422
    assert "Idempotency-Key" in other.json["fields"] and "different message" in other.json["error"]
    assert len(_rows()) == 1


def test_keys_are_per_user(api, users, mailboxes):
    key = {"Idempotency-Key": "shared-key"}
    alice = api["alice"].post(URL, json=BODY, headers=key)
    bob = api["bob"].post(URL, json=BODY, headers=key)
    assert alice.status_code == bob.status_code == 202 and alice.json["id"] != bob.json["id"]
    assert [r.idempotency_key for r in _rows(users["bob"]["id"])] == ["shared-key"]


@pytest.mark.parametrize("key", ["", "x" * 256, "clé", "tab\there"])
def test_a_malformed_key_is_a_400_naming_the_header(api, users, mailboxes, key):
    response = api["alice"].post(URL, json=BODY, headers={"Idempotency-Key": key})
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json["fields"] and "Idempotency-Key" in response.json["error"]
    assert _rows() == []


def test_without_a_key_each_request_is_a_new_message(api, users, mailboxes):
    assert api["alice"].post(URL, json=BODY).json["id"] != api["alice"].post(URL, json=BODY).json["id"]


def test_concurrent_requests_with_one_key_make_one_message(app, users, mailboxes, smtp_server):
    """Eight clients race with one key: the unique constraint keeps one row; every 202 names it."""
    token = users["alice"]["token"]
    barrier = threading.Barrier(8)
    answers: list = []

    def post() -> None:
        client = Api(app.test_client(), token)
        with app.app_context():
            barrier.wait()
            response = client.post(URL, json=BODY, headers={"Idempotency-Key": "race"})
            answers.append((response.status_code, response.get_json()))
            db.session.remove()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 8
    assert {status for status, _ in answers} <= {202, 409}, answers
    ids = {body["id"] for status, body in answers if status == 202}
    assert len(ids) == 1, answers
    assert [r.id for r in _rows()] == list(ids)
    run_burst(app)
    assert len(smtp_server.messages) == 1
