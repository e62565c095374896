"""Be a good client of the servers: at most K connections at once per server, held in Redis.

The service's ``max_connections`` (API, admin form), the plugins' ``mailroom_connection_limit``
defaults, the Redis semaphore itself, and on the real Dovecot: a sync that finds no free slot,
and a sync the server throttles ("Maximum number of connections ... exceeded"), both wait and
come back instead of failing the mailbox.
"""

from __future__ import annotations

import time

import pytest
from rq import Queue, SimpleWorker
from rq.job import Job

from connectors import plugins
from connectors.connection_limits import ConnectionLimit
from connectors.plugins import hookimpl
from tests.conftest import login
from tests.servers.dovecot import Dovecot
from tests.support.job_worker import WorkerProcess, run_burst
from tests.support.sync_support import imap_login, make_mailbox
from webapp.extensions import db
from webapp.jobs import connection_slots, folders
from webapp.jobs.sync import start as start_sync
from webapp.models import Account, LogEntry, LogSource, Service
from webapp.queue import get_redis

CORP = {
    "name": "ACME mail",
    "imap": {"host": "imap.acme.test", "port": 993, "security": "tls"},
    "smtp": {"host": "smtp.acme.test", "port": 587, "security": "starttls"},
}
#: Short waits so a deferred job is due again within the test.
FAST = {"CONNECTION_WAIT_SECONDS": 0.3, "THROTTLED_WAIT_SECONDS": 0.3, "CONNECTION_SLOT_TTL": 5}


class AcmeLimit:
    @hookimpl
    def mailroom_connection_limit(self, host):
        return ConnectionLimit(5) if host == "imap.acme.test" else None


class Broken:
    @hookimpl
    def mailroom_connection_limit(self, host):
        raise RuntimeError("boom")


def test_providers_name_their_limits_through_the_hook(fresh_plugins):
    assert plugins.connection_limit("IMAP.gmail.com") == ConnectionLimit(15, per_account=True)
    assert plugins.connection_limit("outlook.office365.com") == ConnectionLimit(20, per_account=True)
    assert plugins.connection_limit("imap.acme.test") is None
    plugins.get_plugin_manager().register(AcmeLimit())
    assert plugins.connection_limit("imap.acme.test") == ConnectionLimit(5)
    plugins.get_plugin_manager().register(Broken())
    assert plugins.connection_limit("imap.acme.test") is None  # a failing plugin counts as no answer


def test_the_semaphore_counts_holders_and_frees_expired_ones(app):
    limit = connection_slots.Limit("mailroom:connections:test.example", 2, "test.example")
    assert connection_slots.try_acquire(limit, "a", 60)
    assert connection_slots.try_acquire(limit, "b", 0.5)
    assert not connection_slots.try_acquire(limit, "c", 60)
    assert connection_slots.held(limit.key) == 2
    time.sleep(0.6)  # b died without releasing: its slot expires
    assert connection_slots.try_acquire(limit, "c", 60)
    connection_slots.release(limit, "a")
    assert connection_slots.held(limit.key) == 1
    assert 0 < get_redis().ttl(limit.key) <= 61  # the set itself never outlives its holders


def test_service_max_connections_through_the_api(api):
    created = api["admin"].post("/api/v1/services", json={**CORP, "max_connections": 4})
    assert created.status_code == 201 and created.json["max_connections"] == 4
    sid = created.json["id"]
    for bad in (0, -1, 1001, "many", True, 2.5, [3]):
        response = api["admin"].patch(f"/api/v1/services/{sid}", json={"max_connections": bad})
        assert response.status_code == 422, bad
        assert "max_connections" in response.json["fields"], bad
    cleared = api["admin"].patch(f"/api/v1/services/{sid}", json={"max_connections": None})
    assert cleared.status_code == 200 and cleared.json["max_connections"] is None
    gmail = next(s for s in api["admin"].get("/api/v1/services").json if s["key"] == "gmail")
    assert gmail["max_connections"] is None
    tightened = api["admin"].patch(f"/api/v1/services/{gmail['id']}", json={"max_connections": 3})
    assert tightened.status_code == 200 and tightened.json["max_connections"] == 3
    assert api["alice"].patch(f"/api/v1/services/{sid}", json={"max_connections": 2}).status_code == 403


def test_service_max_connections_in_the_admin_form(client, users):
    login(client, "admin", "admin-console-pw")
    form = {
        "name": "ACME mail",
        "imap_server": "imap.acme.test:993",
        "imap_security": "tls",
        "smtp_server": "smtp.acme.test:465",
        "smtp_use_tls": "y",
    }
    page = client.post("/admin/email/services/new", data={**form, "max_connections": "lots"})
    assert page.status_code == 200 and "Max connections must be a whole number" in page.get_data(as_text=True)
    assert client.post("/admin/email/services/new", data={**form, "max_connections": "2"}).status_code == 302
    service = Service.query.filter_by(name="ACME mail").one()
    assert service.max_connections == 2
    edit = client.get(f"/admin/email/services/{service.id}/edit").get_data(as_text=True)
    assert 'name="max_connections"' in edit and 'value="2"' in edit


def test_service_form_names_the_range_and_every_wrong_field_at_once(client, users):
    """A negative number is told the 1–1000 range, not "not a whole number"; an IMAP server
    without a port does not hide the max_connections error (both in one answer)."""
    login(client, "admin", "admin-console-pw")
    form = {
        "name": "ACME mail",
        "imap_server": "imap.acme.test",
        "imap_security": "tls",
        "smtp_server": "smtp.acme.test:465",
        "smtp_use_tls": "y",
    }
    page = client.post("/admin/email/services/new", data={**form, "max_connections": "-5"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Max connections must be between 1 and 1000." in html
    assert "Add the port, e.g. imap.acme.test:993." in html
    assert Service.query.filter_by(name="ACME mail").first() is None


# -- on the real Dovecot --------------------------------------------------------------------------


def _service_mailbox(dovecot, owner, user: str, max_connections: int | None) -> Account:
    service = Service.query.filter_by(name="Local Dovecot").one_or_none()
    if service is None:
        service = Service(name="Local Dovecot", max_connections=max_connections)
        service.set_endpoint("imap", {"host": "127.0.0.1", "port": dovecot.imap_port, "security": "none"})
        service.set_endpoint("smtp", {"host": "127.0.0.1", "port": 25, "security": "none"})
        db.session.add(service)
        db.session.flush()
    account = make_mailbox(dovecot, owner=owner, user=user)
    account.manual, account.service_id = False, service.id
    db.session.commit()
    return account


def _run_when_due(job_id: str, timeout: float = 10) -> Job:
    """Wait until the deferred job is due, then let a worker with the scheduler move and run it."""
    job = Job.fetch(job_id, connection=get_redis())
    queue = Queue(job.origin, connection=get_redis())
    deadline = time.monotonic() + timeout
    while job.get_status(refresh=True) not in ("finished", "failed") and time.monotonic() < deadline:
        SimpleWorker([queue], connection=get_redis()).work(burst=True, with_scheduler=True)
        time.sleep(0.1)
    return job


def _result(job: Job) -> dict:
    job.refresh()
    return job.return_value()


@pytest.fixture
def fast_app(app):
    app.config.update(FAST)
    return app


def test_a_sync_with_no_free_slot_waits_and_then_runs(fast_app, clean_dovecot, users):
    alice = _service_mailbox(clean_dovecot, users["alice"]["user"], "alice", max_connections=1)
    bob = _service_mailbox(clean_dovecot, users["bob"]["user"], "bob", max_connections=1)
    clean_dovecot.add_messages("bob", 3)
    limit = connection_slots.limit_for(bob, "127.0.0.1")
    assert limit.max_connections == 1
    assert connection_slots.try_acquire(limit, "held-by-the-test", 60)  # another worker's connection

    job = start_sync(bob)
    run_burst()
    result = _result(job)
    assert result["status"] == "waiting" and "in use" in result["message"], result
    db.session.expire_all()
    bob = db.session.get(Account, bob.id)
    assert bob.state == "connected" and bob.last_sync_error is None and bob.last_synced_at is None
    later = Job.fetch(result["job_id"], connection=get_redis())
    assert later.get_status() == "scheduled" and later.meta["waits"] == 1
    assert api_conflict(bob)  # "Sync now" names the waiting job instead of starting another

    connection_slots.release(limit, "held-by-the-test")
    finished = _run_when_due(later.id)
    assert _result(finished)["ok"] and _result(finished)["inserted"] == 3
    assert connection_slots.held(limit.key) == 0  # given back after the sync
    # The other mailbox of the service syncs normally now that the slot is free.
    other = start_sync(alice)
    run_burst()
    assert _result(other)["ok"]


def api_conflict(account: Account) -> bool:
    try:
        start_sync(account)
    except Exception as exc:  # SyncRunning
        return getattr(exc, "job_id", None) is not None
    return False


def test_two_real_workers_never_pass_the_limit(fast_app, clean_dovecot, users, tmp_path):
    """K=1, two mailboxes of the service, two ``mailroom worker`` processes: both mailboxes sync,
    neither fails, and the server never sees two of our connections at once."""
    boxes = [
        _service_mailbox(clean_dovecot, users[name]["user"], name, max_connections=1)
        for name in ("alice", "bob")
    ]
    for name in ("alice", "bob"):
        clean_dovecot.add_messages(name, 400)
    key = connection_slots.limit_for(boxes[0], "127.0.0.1").key
    jobs = [start_sync(box) for box in boxes]
    workers = []
    for n in (1, 2):
        (tmp_path / f"w{n}").mkdir()
        workers.append(WorkerProcess(fast_app, tmp_path / f"w{n}", burst=False).start())
    most, deadline = 0, time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            most = max(most, connection_slots.held(key))
            db.session.expire_all()
            if all(db.session.get(Account, box.id).last_synced_at for box in boxes):
                break
            time.sleep(0.02)
    finally:
        for worker in workers:
            worker.stop()
    db.session.expire_all()
    for box in boxes:
        account = db.session.get(Account, box.id)
        assert account.last_synced_at is not None and account.last_sync_error is None, [
            w.output() for w in workers
        ]
    assert most <= 1, most  # (one run here saw the second sync wait, then run: status "waiting")
    assert all(job.get_status(refresh=True) == "finished" for job in jobs)


@pytest.fixture
def one_connection_dovecot():
    """A Dovecot that accepts one connection per user and address (mail_max_userip_connections=1)."""
    server = Dovecot(ssl=False, max_connections=1).start()
    yield server
    server.stop()


def test_a_throttling_server_is_waited_for_not_failed(fast_app, one_connection_dovecot, users):
    dovecot = one_connection_dovecot
    account = _service_mailbox(dovecot, users["alice"]["user"], "alice", max_connections=None)
    dovecot.add_messages("alice", 2)
    other_client = imap_login(dovecot)  # the person's own mail program holds the one connection

    job = start_sync(account)
    run_burst()
    result = _result(job)
    assert result["status"] == "waiting", result
    db.session.expire_all()
    account = db.session.get(Account, account.id)
    assert account.state == "connected" and account.last_sync_error is None
    (line,) = LogEntry.query.filter_by(account_id=account.id, source=LogSource.SYNC.value).all()
    assert line.level == "info" and "slow down" in line.message and "exceeded" in line.message

    other_client.logout()
    finished = _run_when_due(result["job_id"])
    assert _result(finished)["ok"] and _result(finished)["inserted"] == 2


def test_pop3_with_no_free_slot_waits_and_a_person_s_folder_list_fails_fast(fast_app, clean_dovecot, users):
    """POP3: no free connection is a deferral, never a failure.  A folder list (a person waits for
    it) gives up after ~1 s with a clear transient sentence instead of holding a worker 10 s."""
    owner = users["alice"]["user"]
    pop = _service_mailbox(clean_dovecot, owner, "alice", max_connections=1)
    pop.incoming_protocol = "pop3"
    pop.service.set_endpoint(
        "pop3", {"host": "127.0.0.1", "port": clean_dovecot.pop3_port, "security": "none"}
    )
    imap = _service_mailbox(clean_dovecot, users["bob"]["user"], "bob", max_connections=1)
    db.session.commit()
    clean_dovecot.add_messages("alice", 2)
    limit = connection_slots.limit_for(pop, "127.0.0.1")
    assert connection_slots.try_acquire(limit, "held-by-the-test", 60)

    job = start_sync(pop)
    run_burst()
    result = _result(job)
    assert result["status"] == "waiting" and "in use" in result["message"], result
    db.session.expire_all()
    pop = db.session.get(Account, pop.id)
    assert pop.last_sync_error is None and pop.state == "connected" and pop.last_synced_at is None
    assert LogEntry.query.filter_by(account_id=pop.id).count() == 0  # nothing failed, nothing logged

    listing = folders.start(imap, users["bob"]["user"])
    run_burst()
    listing.refresh()
    # The job's own run (its slot wait), not the burst's: a worker starting under load is no part of it.
    took = (listing.ended_at - listing.started_at).total_seconds()
    assert took < 5, took  # it waited 10 s before
    assert "in use" in str(listing.return_value() or listing.latest_result().exc_string), (
        listing.return_value()
    )

    connection_slots.release(limit, "held-by-the-test")
    finished = _run_when_due(result["job_id"])
    assert _result(finished)["ok"] and _result(finished)["downloaded"] == 2
