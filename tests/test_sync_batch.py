"""Cron's batch jobs (webapp.jobs.batch) on a real Dovecot: many mailboxes of one server per job,
checked concurrently; the unchanged recorded together with no log line, the changed synced,
one mailbox's failure recorded for it alone, no free connection slot a deferral, not a failure."""

from __future__ import annotations

import threading
import time

import pytest
from rq import Queue, SimpleWorker
from rq.job import Job
from sqlalchemy import event

from tests.support.job_worker import run_burst
from tests.support.sync_support import make_mailbox
from webapp import settings_store
from webapp.extensions import db
from webapp.jobs import batch, connection_slots
from webapp.jobs.mailbox_lock import LOCK_KEY
from webapp.jobs.sync import JOB_KEY, sync_due_accounts
from webapp.jobs.sync import start as start_sync
from webapp.models import Account, LogEntry, LogSource, Message, Service, User, utcnow
from webapp.queue import INTERACTIVE, PERIODIC, get_queue, get_redis, queue_name
from webapp.secretbox import box

NAMES = [f"u{i}" for i in range(10)]


@pytest.fixture
def fleet_dovecot(dovecot_factory):
    """A Dovecot of its own with ten users, two messages each."""
    server = dovecot_factory(ssl=False, users={name: f"pw-{name}" for name in NAMES})
    for name in NAMES:
        server.add_messages(name, 2)
    return server


@pytest.fixture
def periodic(app):
    settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
    db.session.commit()
    yield get_queue(PERIODIC)
    for lane in (PERIODIC, INTERACTIVE):
        get_queue(lane).empty()


def _mailboxes(dovecot, service: Service | None = None) -> list[Account]:
    out = []
    for name in NAMES:
        owner = User(username=f"owner-{name}", password_hash="x")
        db.session.add(owner)
        db.session.flush()
        account = make_mailbox(dovecot, owner=owner, user=name)
        if service is not None:
            account.manual, account.service_id = False, service.id
        out.append(account)
    db.session.commit()
    return out


def _make_due(ids: list[int]) -> None:
    db.session.execute(db.update(Account).where(Account.id.in_(ids)).values(next_sync_at=utcnow()))
    db.session.commit()


@pytest.fixture
def writes():
    """Every INSERT/UPDATE/DELETE the database receives, as (statement's first words, table)."""
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        words = statement.split()
        if words and words[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            seen.append(" ".join(words[:3]).upper())

    event.listen(db.engine, "before_cursor_execute", before)
    yield seen
    event.remove(db.engine, "before_cursor_execute", before)


def test_one_batch_checks_a_server_s_mailboxes_records_the_unchanged_at_once_and_syncs_the_changed(
    app, fleet_dovecot, periodic, writes, round_trips
):
    boxes = _mailboxes(fleet_dovecot)
    ids = [b.id for b in boxes]
    wrong, gone = boxes[8], boxes[9]
    wrong.password_encrypted = box().encrypt("not-the-password")
    db.session.commit()

    # First pass: one batch job for the ten mailboxes of 127.0.0.1 (cron groups them by server).
    assert sync_due_accounts()["jobs"] == 1 and periodic.count == 1
    # A person's "Sync now" is not refused because a batch is queued: it is its own interactive job.
    clicked = start_sync(boxes[0], boxes[0].user_id)
    assert clicked.origin == queue_name(INTERACTIVE)
    run_burst()
    (first,) = [Job.fetch(j, connection=get_redis()) for j in periodic.finished_job_registry.get_job_ids()]
    result = first.return_value()
    # boxes[0] was synced by the click just before: the batch finds it unchanged.
    assert result["unchanged"] == 1 and result["synced"] == 8 and result["failed"] == 1, result
    db.session.expire_all()
    for account in boxes[:8]:
        assert Message.query.filter_by(account_id=account.id).count() == 2
        assert db.session.get(Account, account.id).last_sync_error is None
    wrong = db.session.get(Account, wrong.id)
    assert wrong.state == "auth_error" and "not-the-password" not in (wrong.last_error or "")
    assert Message.query.filter_by(account_id=gone.id).count() == 2  # the failure stayed with its mailbox

    # Second pass: one mailbox got new mail, one server port is closed now (a transient failure).
    fleet_dovecot.add_messages("u3", 1)
    gone.imap_port = 1  # nothing listens there: refused
    db.session.commit()
    logs_before = LogEntry.query.filter_by(source=LogSource.SYNC.value).count()
    _make_due([i for i in ids if i != wrong.id])
    assert sync_due_accounts()["jobs"] == 1
    since = utcnow()
    writes.clear()
    run_burst()
    (second,) = [
        Job.fetch(j, connection=get_redis())
        for j in periodic.finished_job_registry.get_job_ids()
        if j != first.id
    ]
    result = second.return_value()
    assert (result["unchanged"], result["synced"], result["failed"]) == (7, 1, 1), result
    db.session.expire_all()
    assert Message.query.filter_by(account_id=boxes[3].id).count() == 3
    assert all(db.session.get(Account, i).last_synced_at >= since for i in ids if i != wrong.id)
    # The seven unchanged mailboxes: two UPDATEs of accounts for all of them, no log line each.
    assert writes.count("UPDATE ACCOUNTS SET") <= 2 + 2, writes  # + the changed one's and the failed one's
    new_logs = LogEntry.query.filter_by(source=LogSource.SYNC.value).count() - logs_before
    assert new_logs == 2  # u3's "Synced ... 1 new" and the refused mailbox's error
    failed = db.session.get(Account, gone.id)
    assert "refused" in failed.last_sync_error and failed.state == "connected"
    # The failed mailbox is retried on its own, later, as a single-mailbox job; the batch finished.
    retry = Job.fetch(get_redis().get(JOB_KEY.format(gone.id)).decode(), connection=get_redis())
    assert retry.get_status() == "scheduled" and retry.args == (gone.id,) and retry.meta["kind"] == "sync"
    assert second.get_status() == "finished"
    # Every lock released; the unchanged ones counted.
    assert not any(get_redis().exists(LOCK_KEY.format(i)) for i in ids)
    assert int(get_redis().get(batch.UNCHANGED_COUNTER)) >= 8


def test_a_batch_respects_the_server_s_connection_limit_and_defers_when_none_is_free(
    app, fleet_dovecot, periodic
):
    app.config.update(CONNECTION_WAIT_SECONDS=0.3, SYNC_BATCH_SLOT_WAIT=0.2, SYNC_BATCH_THREADS=8)
    service = Service(name="Fleet Dovecot", max_connections=2)
    service.set_endpoint("imap", {"host": "127.0.0.1", "port": fleet_dovecot.imap_port, "security": "none"})
    service.set_endpoint("smtp", {"host": "127.0.0.1", "port": 25, "security": "none"})
    db.session.add(service)
    db.session.commit()
    boxes = _mailboxes(fleet_dovecot, service)
    limit = connection_slots.limit_for(boxes[0], "127.0.0.1")

    # Another worker holds both slots: every mailbox is deferred, none failed.
    for token in ("elsewhere-1", "elsewhere-2"):
        assert connection_slots.try_acquire(limit, token, 60)
    sync_due_accounts()
    run_burst(queue=periodic)
    (job,) = [Job.fetch(j, connection=get_redis()) for j in periodic.finished_job_registry.get_job_ids()]
    assert job.return_value()["waiting"] == len(boxes), job.return_value()
    db.session.expire_all()
    for account in boxes:
        fresh = db.session.get(Account, account.id)
        assert fresh.last_sync_error is None and fresh.state == "connected" and fresh.last_synced_at is None
        later = Job.fetch(get_redis().get(JOB_KEY.format(account.id)).decode(), connection=get_redis())
        assert later.get_status() == "scheduled" and later.meta["waits"] == 1
    assert LogEntry.query.filter_by(source=LogSource.SYNC.value).count() == 0

    # Slots free again: the deferred syncs run; and a new batch never holds more than K=2 at once.
    for token in ("elsewhere-1", "elsewhere-2"):
        connection_slots.release(limit, token)
    most, stop = [0], threading.Event()

    def sample():
        with app.app_context():
            while not stop.is_set():
                most[0] = max(most[0], connection_slots.held(limit.key))
                time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        deadline = time.monotonic() + 30
        while periodic.scheduled_job_registry.count and time.monotonic() < deadline:
            SimpleWorker([periodic], connection=get_redis()).work(burst=True, with_scheduler=True)
            time.sleep(0.1)
        _make_due([b.id for b in boxes])
        sync_due_accounts()
        run_burst(queue=periodic)
    finally:
        stop.set()
        sampler.join()
    db.session.expire_all()
    assert all(db.session.get(Account, b.id).last_synced_at is not None for b in boxes)
    assert all(Message.query.filter_by(account_id=b.id).count() == 2 for b in boxes)
    assert 1 <= most[0] <= 2, most
    assert connection_slots.held(limit.key) == 0


def test_a_killed_batch_s_locks_are_released_by_its_failure_callback(app, periodic):
    owner = User(username="lock-owner", password_hash="x")
    db.session.add(owner)
    db.session.flush()
    ids = []
    for i in range(3):
        account = Account(user_id=owner.id, manual=True, username=f"x{i}", email=f"x{i}@example.com")
        db.session.add(account)
        db.session.flush()
        ids.append(account.id)
    db.session.commit()
    job = Queue(periodic.name, connection=get_redis()).enqueue(
        "webapp.jobs.batch.sync_batch", ids, meta={"kind": "sync_batch", "account_ids": ids}
    )
    redis = get_redis()
    redis.set(LOCK_KEY.format(ids[0]), job.id, px=60_000)
    redis.set(LOCK_KEY.format(ids[1]), "someone-else", px=60_000)
    batch.on_batch_failure(job, redis, RuntimeError, RuntimeError("killed"), None)
    assert not redis.exists(LOCK_KEY.format(ids[0]))
    assert redis.get(LOCK_KEY.format(ids[1])) == b"someone-else"  # not the batch's to free
    redis.delete(LOCK_KEY.format(ids[1]))


def test_a_batch_yields_to_a_person_s_job_and_hands_the_rest_on(app, fleet_dovecot, periodic):
    """A job waiting on the interactive lane: the batch finishes the visit under way, puts the
    rest at the head of the periodic lane as a new batch, and ends, so the worker is free."""
    app.config.update(SYNC_BATCH_THREADS=1, SYNC_BATCH_YIELD_CHECK=0)
    boxes = _mailboxes(fleet_dovecot)
    sync_due_accounts()
    (first_id,) = periodic.job_ids
    waiting = get_queue(INTERACTIVE).enqueue("webapp.jobs.schedule.heartbeat")  # a person's job stand-in
    # This worker takes the periodic lane only, so the interactive job stays waiting throughout.
    run_burst(queue=periodic)
    first = Job.fetch(first_id, connection=get_redis())
    result = first.return_value()
    assert result["synced"] == 1 and result["handed_on"] == len(boxes) - 1, result
    finished = periodic.finished_job_registry.get_job_ids()
    assert len(finished) == len(boxes)  # each batch yielded after one visit and handed the rest on
    db.session.expire_all()
    assert all(Message.query.filter_by(account_id=b.id).count() == 2 for b in boxes)
    assert waiting.get_status(refresh=True) == "queued"
    assert not any(get_redis().exists(LOCK_KEY.format(b.id)) for b in boxes)
