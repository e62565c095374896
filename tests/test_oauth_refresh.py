"""Refreshing OAuth2 access tokens in jobs: expiry, one refresh for racing workers, revoked grants, outages."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from rq.job import Job

from tests.support.job_worker import run_burst
from tests.support.oauth_support import USER, connect_via_consent, custom_service
from webapp import settings_store
from webapp.extensions import db
from webapp.models import Account, LogEntry, Message, Notification, utcnow
from webapp.queue import get_redis
from webapp.secretbox import box


@pytest.fixture
def connected(make_app, certs, oauth_server, clean_oauth_dovecot, clean_oauth_smtp_server):
    """alice's mailbox connected through the consent flow; the server's counters start at zero."""
    from tests.conftest import Api
    from webapp.api_tokens import issue_token
    from webapp.users import create_user

    app = make_app(MAIL_CA_FILE=str(certs.ca_cert), SYNC_RETRY_INTERVALS=[0, 0])
    with app.app_context():
        users = {}
        for name, admin in (("admin", True), ("alice", False)):
            user = create_user(name, f"{name}-console-pw", admin=admin)
            users[name] = {"id": user.id, "password": f"{name}-console-pw", "token": issue_token(user)}
        settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
        db.session.commit()
        client = app.test_client()
        api = {name: Api(client, info["token"]) for name, info in users.items()}
        service_id = custom_service(api, oauth_server, clean_oauth_dovecot, clean_oauth_smtp_server)
        account = connect_via_consent(client, users, oauth_server, service_id)
        get_redis().delete(*get_redis().keys("rq:*"))  # drop the enqueued connection test
        oauth_server.reset_counters()
        yield {"app": app, "api": api, "account_id": account.id}
        db.session.remove()


def _expire(account_id: int, oauth_server) -> str:
    """The access token expired at the server and in the mailbox's record; answer the old refresh token."""
    oauth_server.expire_access_tokens(USER)
    account = db.session.get(Account, account_id)
    account.oauth_expires_at = utcnow() - timedelta(seconds=5)
    db.session.commit()
    return box().decrypt(account.oauth_refresh_token_encrypted)


def _sync(connected) -> str:
    r = connected["api"]["alice"].post(f"/api/v1/accounts/{connected['account_id']}/sync")
    assert r.status_code == 202, r.get_json()
    job_id = r.get_json()["job_id"]
    run_burst(connected["app"], fork=True)
    return job_id


def test_expired_access_token_is_refreshed_in_the_sync_job_and_rotation_stored(
    connected, oauth_server, clean_oauth_dovecot
):
    clean_oauth_dovecot.add_message(USER, b"Subject: after refresh\r\n\r\nbody\r\n")
    old_refresh = _expire(connected["account_id"], oauth_server)
    _sync(connected)
    assert oauth_server.token_requests["refresh_token"] == 1
    db.session.expire_all()
    account = db.session.get(Account, connected["account_id"])
    assert [m.subject for m in Message.query.filter_by(account_id=account.id)] == ["after refresh"]
    new_refresh = box().decrypt(account.oauth_refresh_token_encrypted)
    assert new_refresh != old_refresh  # the rotated refresh token was stored
    assert account.oauth_expires_at > utcnow() + timedelta(minutes=30)
    assert account.state == "connected"


def test_two_workers_refreshing_at_once_make_one_request(connected, oauth_server):
    from webapp.jobs.oauth_refresh import refresh

    _expire(connected["account_id"], oauth_server)
    app, account_id = connected["app"], connected["account_id"]
    barrier = threading.Barrier(2)
    results, errors = [], []

    def worker():
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                results.append(refresh(account_id))
            except Exception as exc:  # surfaced below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert oauth_server.token_requests["refresh_token"] == 1
    assert len(results) == 2 and results[0] == results[1]
    assert results[0] == oauth_server.tokens_for(USER)[-1].access_token


def test_revoked_refresh_token_needs_sign_in_without_retry_storm(connected, oauth_server):
    from webapp.jobs.sync import sync_due_accounts

    _expire(connected["account_id"], oauth_server)
    oauth_server.revoke_refresh_tokens(USER)
    job_id = _sync(connected)
    assert oauth_server.token_requests["refresh_token"] == 1
    job = Job.fetch(job_id, connection=get_redis())
    assert job.get_status().value == "finished" and job.return_value()["ok"] is False
    db.session.expire_all()
    account = db.session.get(Account, connected["account_id"])
    assert account.state == "needs_sign_in"
    note = Notification.query.filter_by(account_id=account.id, kind="needs_sign_in").one()
    assert note.read_at is None and "sign in again" in note.message
    assert LogEntry.query.filter(LogEntry.message.contains("needs to sign in again")).count() == 1

    # The cron leaves it alone, "Sync now" is refused, and a connection test makes no request.
    account.last_synced_at = utcnow() - timedelta(days=1)
    db.session.commit()
    with connected["app"].test_request_context():
        assert account.id not in sync_due_accounts()["enqueued"]
    assert connected["api"]["alice"].post(f"/api/v1/accounts/{account.id}/sync").status_code == 422
    assert connected["api"]["alice"].post(f"/api/v1/accounts/{account.id}/test").status_code == 202
    run_burst(connected["app"], fork=True)
    assert oauth_server.token_requests["refresh_token"] == 1

    # The notification shows on every page.
    from tests.conftest import login

    client = connected["app"].test_client()
    login(client, "alice", "alice-console-pw")
    page = client.get("/mailboxes/").get_data(as_text=True)
    assert 'data-notification="needs_sign_in"' in page and "Sign in again" in page


def test_token_endpoint_outage_is_retried_and_not_an_auth_error(connected, oauth_server):
    _expire(connected["account_id"], oauth_server)
    oauth_server.fail_token_endpoint("503", times=1)
    job_id = _sync(connected)
    # First run: 503 (transient, retried at once by the 0-second retry); the retry refreshes.
    assert oauth_server.token_requests["refresh_token"] == 2
    job = Job.fetch(job_id, connection=get_redis())
    assert job.get_status().value == "finished", job.get_status()
    db.session.expire_all()
    account = db.session.get(Account, connected["account_id"])
    assert account.state == "connected" and account.last_sync_error is None
    logs = [e.message for e in LogEntry.query.filter_by(account_id=account.id, source="Sync")]
    assert any("HTTP 503" in m and m.endswith("It will be retried.") for m in logs), logs
