"""Redis away: every enqueue answers 503 with a sentence (JSON or page), nothing is half-stored,
and signing in and plain pages keep working.

Two ways Redis is away: the app points at a port nobody listens on, and a real private
``redis-server`` is killed in the middle of the test (then started again: sending works).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import login
from tests.support.redis_server import PrivateRedis, free_port
from tests.support.send_support import sending_mailbox
from webapp.api_tokens import issue_token
from webapp.extensions import db
from webapp.models import OutgoingMessage, User, utcnow
from webapp.users import create_user

SENTENCE = "The job queue (Redis) cannot be reached right now"


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


def _app_on(make_app, url: str):
    return make_app(REDIS_URL=url, QUEUE_NAME="mailroom-test-outage")


@pytest.fixture
def dead_app(make_app):
    app = _app_on(make_app, f"redis://127.0.0.1:{free_port()}/0")
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def live_app(make_app, private_redis):
    app = _app_on(make_app, private_redis.url)
    with app.app_context():
        yield app
        db.session.remove()


def _world(app, dovecot, smtp):
    user = create_user("alice", "alice-console-pw")
    account = sending_mailbox(dovecot, smtp, user)
    return {"token": issue_token(user), "account_id": account.id, "client": app.test_client()}


def _assert_503_json(response) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.json["code"] == "queue_unavailable"
    assert response.json["error"].startswith(SENTENCE)
    assert response.headers["Retry-After"] == "30"


def _send_api(client, token):
    body = {"to": ["bob@example.org"], "subject": "Hello", "text": "Hi Bob."}
    return client.post("/api/v1/messages/send", json=body, headers={"Authorization": f"Bearer {token}"})


def _everything_answers_503(world) -> None:
    """Send (API and page), connection test (API and page), Sync now (API and page): 503, no row."""
    client, token, account_id = world["client"], world["token"], world["account_id"]
    auth = {"Authorization": f"Bearer {token}"}
    _assert_503_json(_send_api(client, token))
    _assert_503_json(client.post(f"/api/v1/accounts/{account_id}/test", headers=auth))
    _assert_503_json(client.post(f"/api/v1/accounts/{account_id}/sync", headers=auth))
    login(client, "alice", "alice-console-pw")
    _assert_503_json(client.post(f"/mailboxes/{account_id}/test", json={}))
    _assert_503_json(client.post(f"/mailboxes/{account_id}/sync", json={}))
    page = client.post("/compose/", data={"to": "bob@example.org", "subject": "From the page", "body": "Hi."})
    assert page.status_code == 503
    text = page.get_data(as_text=True)
    assert SENTENCE in text and "Traceback" not in text
    assert 'value="From the page"' in text  # the form comes back filled in: nothing is lost
    db.session.expire_all()
    assert OutgoingMessage.query.count() == 0  # no message waits without a job


def test_nobody_listening_every_enqueue_is_503_and_sign_in_still_works(
    dead_app, clean_dovecot, clean_smtp_server
):
    world = _world(dead_app, clean_dovecot, clean_smtp_server)
    client = world["client"]
    response = login(client, "alice", "alice-console-pw")
    assert response.status_code == 302, response.get_data(as_text=True)
    for page in ("/mailboxes/", "/compose/", "/compose/outgoing", "/messages/"):
        assert client.get(page).status_code == 200, page
    _everything_answers_503(world)


def test_redis_killed_mid_test_then_back(live_app, private_redis, clean_dovecot, clean_smtp_server):
    world = _world(live_app, clean_dovecot, clean_smtp_server)
    first = _send_api(world["client"], world["token"])
    assert first.status_code == 202 and first.json["job_id"]
    private_redis.stop()
    assert _send_api(world["client"], world["token"]).status_code == 503
    db.session.expire_all()
    assert [r.id for r in OutgoingMessage.query] == [first.json["id"]]
    OutgoingMessage.query.delete()
    db.session.commit()
    _everything_answers_503(world)
    # A page that only shows what is stored still works; a job's status needs Redis: 503.
    assert world["client"].get("/compose/outgoing").status_code == 200
    auth = {"Authorization": f"Bearer {world['token']}"}
    _assert_503_json(world["client"].get(f"/api/v1/jobs/{first.json['job_id']}", headers=auth))
    private_redis.start()
    again = _send_api(world["client"], world["token"])
    assert again.status_code == 202 and again.json["job_id"]


def test_a_page_that_needs_redis_shows_the_sentence_not_a_traceback(
    dead_app, clean_dovecot, clean_smtp_server
):
    """Cancelling a scheduled message takes the message's Redis lock: an error page with 503."""
    world = _world(dead_app, clean_dovecot, clean_smtp_server)
    alice = User.query.filter_by(username="alice").one()
    row = OutgoingMessage(
        user_id=alice.id,
        account_id=world["account_id"],
        from_addr="alice@example.com",
        message_id="<later@example.com>",
        state="scheduled",
        send_at=utcnow() + timedelta(days=1),
    )
    db.session.add(row)
    db.session.commit()
    client = world["client"]
    login(client, "alice", "alice-console-pw")
    page = client.post(f"/compose/outgoing/{row.id}/cancel")
    assert page.status_code == 503
    assert SENTENCE in page.get_data(as_text=True)
    assert page.headers["Retry-After"] == "30"
