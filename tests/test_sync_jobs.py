"""The sync job, its lock, the API and page routes, the cron enqueue, retries and auth failures.

Jobs run in a real RQ worker on the test Redis: in-process (``SimpleWorker``) for most tests,
and as a ``mailroom worker --burst`` subprocess killed with SIGKILL mid-sync for the last one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from rq.job import Job

from tests.conftest import SECRET_KEY, login
from tests.servers.proxy import CuttingProxy
from tests.support.job_worker import run_burst
from tests.support.sync_support import folder_id, make_mailbox, server_flags, stored_flags
from webapp import settings_store
from webapp.extensions import db
from webapp.jobs.mailbox_lock import LOCK_KEY
from webapp.jobs.sync import start as start_sync
from webapp.jobs.sync import sync_account, sync_due_accounts
from webapp.models import Account, AccountState, LogEntry, LogSource
from webapp.queue import get_redis


@pytest.fixture
def local(app):
    """Hand-typed servers may reach the loopback Dovecot."""
    settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
    db.session.commit()


@pytest.fixture
def mailbox(app, local, clean_dovecot, users):
    return make_mailbox(clean_dovecot, owner=users["alice"]["user"])


def sync_logs(account_id: int) -> list[LogEntry]:
    return (
        LogEntry.query.filter_by(account_id=account_id, source=LogSource.SYNC.value)
        .order_by(LogEntry.id)
        .all()
    )


def test_api_sync_enqueues_runs_and_reports_progress(api, mailbox, clean_dovecot):
    clean_dovecot.add_messages("alice", 25)
    response = api["alice"].post(f"/api/v1/accounts/{mailbox.id}/sync")
    assert response.status_code == 202, response.json
    job_id, status_url = response.json["job_id"], response.json["status_url"]
    assert status_url == f"/api/v1/jobs/{job_id}"

    again = api["alice"].post(f"/api/v1/accounts/{mailbox.id}/sync")
    assert again.status_code == 409 and again.json["job_id"] == job_id
    assert api["admin"].post(f"/api/v1/accounts/{mailbox.id}/sync").status_code == 409  # admin may, but busy
    assert api["bob"].post(f"/api/v1/accounts/{mailbox.id}/sync").status_code == 404
    assert api["bob"].get(status_url).status_code == 404

    run_burst()
    body = api["alice"].get(status_url).json
    assert body["status"] == "finished" and body["kind"] == "sync"
    assert body["result"]["ok"] and body["result"]["inserted"] == 25
    assert body["progress"] == {"folder": 1, "folders": 1, "folder_name": "INBOX", "done": 25, "total": 25}
    db.session.expire_all()
    account = db.session.get(Account, mailbox.id)
    assert account.last_synced_at is not None and account.last_sync_error is None
    shown = api["alice"].get(f"/api/v1/accounts/{mailbox.id}").json
    assert shown["last_synced_at"] == account.last_synced_at.isoformat() + "Z" and shown["last_sync_error"] is None
    assert "next_sync_at" in shown
    assert stored_flags(folder_id(account)) == server_flags(clean_dovecot)
    (entry,) = sync_logs(account.id)
    assert entry.level == "info" and "new: 25," in entry.message and entry.created_by == "system"

    # Finished: a new sync may be queued; with nothing changed it sends no FETCH.
    response = api["alice"].post(f"/api/v1/accounts/{mailbox.id}/sync")
    assert response.status_code == 202
    run_burst()
    result = api["alice"].get(response.json["status_url"]).json["result"]
    assert result["commands"] == {"STATUS": 1} and result["inserted"] == 0


def test_api_refuses_disabled_mailbox_and_removed_service(api, mailbox):
    mailbox.active = False
    db.session.commit()
    response = api["alice"].post(f"/api/v1/accounts/{mailbox.id}/sync")
    assert response.status_code == 422 and "active" in response.json["fields"]
    mailbox.active, mailbox.state = True, AccountState.SERVICE_REMOVED.value
    db.session.commit()
    response = api["alice"].post(f"/api/v1/accounts/{mailbox.id}/sync")
    assert response.status_code == 422 and "service_id" in response.json["fields"]
    assert api["alice"].post("/api/v1/accounts/999999/sync").status_code == 404


def test_a_second_run_of_the_same_mailbox_returns_already_running(mailbox, clean_dovecot):
    clean_dovecot.add_messages("alice", 3)
    held = get_redis().lock(LOCK_KEY.format(mailbox.id), timeout=30)
    assert held.acquire(blocking=False)
    try:
        result = sync_account(mailbox.id)
        assert result["status"] == "already running" and not result["ok"]
        assert stored_flags(folder_id(mailbox)) == {}
    finally:
        held.release()
    assert sync_account(mailbox.id)["inserted"] == 3


def test_sync_now_page_route_and_row(client, users, mailbox, clean_dovecot):
    login(client, "alice", users["alice"]["password"])
    page = client.get("/mailboxes/").get_data(as_text=True)
    assert f'data-url="/mailboxes/{mailbox.id}/sync"' in page and "Sync now" in page
    response = client.post(f"/mailboxes/{mailbox.id}/sync")
    assert response.status_code == 202
    assert response.json["status_url"] == f"/mailboxes/jobs/{response.json['job_id']}"
    assert client.post(f"/mailboxes/{mailbox.id}/sync").status_code == 409
    run_burst()
    assert client.get(response.json["status_url"]).json["status"] == "finished"
    row = client.get(f"/mailboxes/{mailbox.id}/row").get_data(as_text=True)
    assert "synced" in row
    login(client, "bob", users["bob"]["password"])
    assert client.post(f"/mailboxes/{mailbox.id}/sync").status_code == 404


def test_cron_enqueues_due_mailboxes_once(app, local, clean_dovecot, users, api):
    from webapp.models import utcnow

    owner = users["alice"]["user"]
    never = make_mailbox(clean_dovecot, owner=owner)
    recent = make_mailbox(clean_dovecot, owner=owner, user="bob")
    recent.last_synced_at = utcnow()
    db.session.commit()
    first = sync_due_accounts()
    # One mailbox due: a single-mailbox job (a batch job holds two or more of one server).
    assert first == {"enqueued": [never.id], "already_running": [], "jobs": 1}
    # Enqueued means scheduled: its next due time is an interval away, so cron leaves it alone.
    assert sync_due_accounts() == {"enqueued": [], "already_running": [], "jobs": 0}
    db.session.expire_all()
    assert db.session.get(Account, never.id).next_sync_at > utcnow()
    job = Job.fetch(get_redis().get(f"mailroom:sync:job:{never.id}").decode(), connection=get_redis())
    assert job.meta["owner_id"] == owner.id and job.retries_left == 3

    # The interval is an admin setting, validated like every other.
    bad = api["admin"].patch("/api/v1/settings", json={"sync_interval_minutes": 0})
    assert bad.status_code == 422 and "sync_interval_minutes" in bad.json["fields"]
    assert (
        api["admin"]
        .patch("/api/v1/settings", json={"sync_interval_minutes": 1})
        .json["sync_interval_minutes"]
        == 1
    )
    run_burst()
    recent.last_synced_at = utcnow().replace(year=2000)
    db.session.commit()
    assert sync_due_accounts()["enqueued"] == [recent.id]
    # Disabled mailboxes and those with an authentication error are never enqueued by cron.
    db.session.expire_all()
    for account in Account.query:
        account.last_synced_at = None
    never_again = db.session.get(Account, never.id)
    never_again.active = False
    db.session.get(Account, recent.id).state = AccountState.AUTH_ERROR.value
    db.session.commit()
    run_burst()
    assert sync_due_accounts()["enqueued"] == []


def test_transient_failure_is_retried_then_fails(make_app, clean_dovecot, users_factory=None):
    app = make_app(SYNC_RETRY_INTERVALS=[0, 0])
    with app.app_context():
        from webapp.users import create_user

        owner = create_user("carol", "carol-console-pw")
        settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
        db.session.commit()
        account = make_mailbox(clean_dovecot, owner=owner)
        account.imap_port = _closed_port()
        db.session.commit()
        with app.test_request_context():
            job_id = start_sync(account).id
        run_burst()
        job = Job.fetch(job_id, connection=get_redis())
        assert job.get_status().value == "failed" and job.retries_left == 0
        logs = sync_logs(account.id)
        assert len(logs) == 3, [e.message for e in logs]
        assert all("refused" in e.message for e in logs)
        assert [e.message.endswith("It will be retried.") for e in logs] == [True, True, False]
        db.session.expire_all()
        account = db.session.get(Account, account.id)
        assert (
            account.last_sync_error and account.state == "connected"
        )  # a network failure is not an auth error
        db.session.remove()


def test_authentication_failure_stops_retrying_and_marks_the_mailbox(mailbox):
    from webapp.secretbox import box

    mailbox.password_encrypted = box().encrypt("wrong-password-1")
    db.session.commit()
    job_id = start_sync(mailbox).id
    run_burst()
    job = Job.fetch(job_id, connection=get_redis())
    assert job.get_status().value == "finished"
    assert job.return_value()["class"] == "auth"
    db.session.expire_all()
    account = db.session.get(Account, mailbox.id)
    assert account.state == AccountState.AUTH_ERROR.value and "Authentication failed" in account.last_error
    (entry,) = sync_logs(account.id)
    assert entry.level == "error" and "wrong-password-1" not in (entry.details or "") + entry.message
    assert sync_due_accounts()["enqueued"] == []


def test_worker_killed_mid_sync_and_the_sync_finished_later(
    app, mailbox, clean_dovecot, instance_dir, database_url, redis_url
):
    clean_dovecot.add_messages("alice", 3000)
    # A slow link, so the kill lands mid-sync however fast a warm worker syncs.
    link = CuttingProxy("127.0.0.1", clean_dovecot.imap_port, bytes_per_second=100_000).start()
    mailbox.imap_port = link.port
    db.session.commit()
    with app.test_request_context():
        job_id = start_sync(mailbox).id
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        MAILROOM_INSTANCE=instance_dir,
        MAILROOM_SECRET_KEYS=SECRET_KEY,
        MAILROOM_QUEUE="mailroom-test",
        MAILROOM_SYNC_LOCK_TTL="3",
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "webapp.cli", "worker", "--burst"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        job = Job.fetch(job_id, connection=get_redis())
        deadline = time.monotonic() + 120
        while True:
            assert time.monotonic() < deadline, "the worker never reported progress"
            assert worker.poll() is None, "the worker ended before it could be killed"
            job.refresh()
            progress = job.meta.get("progress") or {}
            if progress.get("done", 0) >= 500:
                break
            time.sleep(0.05)
        # The warm worker runs the job in its own process (a forked work horse only with --fork):
        # kill the worker and any child it has.
        for pid in _children(worker.pid):
            os.kill(pid, signal.SIGKILL)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        link.stop()
    db.session.expire_all()
    mailbox.imap_port = clean_dovecot.imap_port
    db.session.commit()
    partial = stored_flags(folder_id(mailbox))
    assert 500 <= len(partial) < 3000
    assert db.session.get(Account, mailbox.id).last_synced_at is None

    # The killed job still looks "started" to RQ; once its lock has expired a new sync is accepted.
    from webapp.jobs.sync import SyncRunning

    deadline = time.monotonic() + 30
    while True:
        try:
            with app.test_request_context():
                again = start_sync(mailbox).id
            break
        except SyncRunning as exc:
            assert exc.job_id == job_id and time.monotonic() < deadline
            time.sleep(0.5)
    assert not get_redis().exists(LOCK_KEY.format(mailbox.id))
    assert again != job_id
    run_burst()
    result = Job.fetch(again, connection=get_redis()).return_value()
    assert result["ok"] and result["folders"][0]["path"] == "resumed"
    assert result["inserted"] == 3000 - len(partial)
    db.session.expire_all()
    assert stored_flags(folder_id(mailbox)) == server_flags(clean_dovecot)
    assert json.loads(sync_logs(mailbox.id)[-1].details)["inserted"] == 3000 - len(partial)


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return [int(p) for p in fh.read().split()]


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
