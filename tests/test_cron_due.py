"""Cron that scales: due times spread over the interval, one indexed query, pipelined enqueueing,
push mailboxes swept less often."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from rq.job import Job

from webapp import settings_store
from webapp.extensions import db
from webapp.jobs.due import PUSH_SWEEP_FACTOR, due_query, next_due
from webapp.jobs.sync import JOB_KEY, sync_due_accounts
from webapp.models import Account, User, utcnow
from webapp.queue import PERIODIC, get_queue, get_redis

INTERVAL = timedelta(minutes=5)
NOW = datetime(2026, 11, 29, 12, 0, 7)


def test_ten_thousand_mailboxes_are_spread_evenly_over_the_interval():
    dues = [next_due(i, NOW, INTERVAL) for i in range(1, 10_001)]
    assert all(NOW + INTERVAL / 2 <= d < NOW + INTERVAL * 1.5 for d in dues)
    per_minute = Counter(d.replace(second=0, microsecond=0) for d in dues)
    # 5 or 6 calendar minutes are touched; no minute gets more than a fair share and a bit.
    assert max(per_minute.values()) <= 10_000 / 5 * 1.1, per_minute
    per_second = Counter(d.replace(microsecond=0) for d in dues)
    assert max(per_second.values()) <= 60  # ~33 a second on average: never a burst


def test_a_mailbox_comes_back_exactly_one_interval_later():
    first = next_due(42, NOW, INTERVAL)
    # Cron runs every minute, so it picks the mailbox up to a minute after its due time.
    assert next_due(42, first + timedelta(seconds=50), INTERVAL) == first + INTERVAL
    assert next_due(42, first, INTERVAL) == first + INTERVAL


def test_push_mailboxes_are_swept_every_few_intervals():
    period = INTERVAL * PUSH_SWEEP_FACTOR
    first = next_due(7, NOW, INTERVAL, push=True)
    assert NOW + period / 2 <= first < NOW + period * 1.5
    assert next_due(7, first + timedelta(seconds=30), INTERVAL, push=True) == first + period


@pytest.fixture
def fleet(app):
    """300 active IMAP mailboxes (no server needed: cron only enqueues), every tenth with push on."""
    settings_store.put("sync_interval_minutes", 5)
    owner = User(username="fleet-owner", password_hash="x")
    db.session.add(owner)
    db.session.flush()
    rows = [
        {
            "user_id": owner.id,
            "manual": True,
            "username": f"u{i}",
            "email": f"u{i}@example.com",
            "description": "",
            "state": "connected",
            "push": i % 10 == 0,
        }
        for i in range(300)
    ]
    db.session.execute(db.insert(Account), rows)
    db.session.commit()
    yield [a.id for a in Account.query.filter_by(user_id=owner.id).order_by(Account.id)]
    get_queue(PERIODIC).empty()


def test_cron_enqueues_the_fleet_in_pipelines_and_spreads_the_next_pass(app, fleet, round_trips):
    started = utcnow()
    result = sync_due_accounts()
    calls = len(round_trips)
    assert sorted(result["enqueued"]) == fleet and result["already_running"] == []
    # One MGET, one pipelined fetch, one enqueue_many pipeline, one SET pipeline for the whole
    # chunk (not a lock round trip per mailbox), plus a few of RQ's own.
    assert calls <= 10, calls
    # Batches of 50 mailboxes of one server (webapp.jobs.batch), not a job per mailbox.
    periodic = get_queue(PERIODIC)
    assert periodic.count == len(fleet) // 50 == result["jobs"]
    job = Job.fetch(get_redis().get(JOB_KEY.format(fleet[0])).decode(), connection=get_redis())
    assert job.origin == periodic.name and job.meta["kind"] == "sync_batch"
    assert job.func_name == "webapp.jobs.batch.sync_batch" and job.args == (job.meta["account_ids"],)
    batched = sorted(i for j in Job.fetch_many(periodic.job_ids, connection=get_redis()) for i in j.args[0])
    assert batched == fleet

    db.session.expire_all()
    accounts = Account.query.filter(Account.id.in_(fleet)).all()
    plain = [a.next_sync_at for a in accounts if not a.push]
    push = [a.next_sync_at for a in accounts if a.push]
    assert all(started + INTERVAL / 2 <= d < started + INTERVAL * 1.5 + timedelta(seconds=5) for d in plain)
    assert all(d >= started + INTERVAL * PUSH_SWEEP_FACTOR / 2 for d in push)
    assert len({d.replace(microsecond=0) for d in plain}) > len(plain) * 0.8  # spread, not one instant
    # Nothing is due again until its time: the next minute's cron run enqueues nothing.
    assert sync_due_accounts() == {"enqueued": [], "already_running": [], "jobs": 0}


def test_a_queued_mailbox_made_due_again_is_reported_not_enqueued_twice(app, fleet):
    sync_due_accounts()
    db.session.execute(db.update(Account).where(Account.id == fleet[0]).values(next_sync_at=utcnow()))
    db.session.commit()
    assert sync_due_accounts() == {"enqueued": [], "already_running": [fleet[0]], "jobs": 0}
    assert get_queue(PERIODIC).count == len(fleet) // 50


def test_batches_group_mailboxes_by_server_and_pop3_goes_alone(app, fleet):
    """Two typed IMAP hosts (case does not matter), a POP3 mailbox: three kinds of job."""
    db.session.execute(
        db.update(Account).where(Account.id.in_(fleet[:120])).values(imap_host="imap.one.example")
    )
    db.session.execute(
        db.update(Account).where(Account.id.in_(fleet[120:130])).values(imap_host="IMAP.ONE.example")
    )
    db.session.execute(
        db.update(Account).where(Account.id.in_(fleet[130:])).values(imap_host="imap.two.example")
    )
    db.session.execute(db.update(Account).where(Account.id == fleet[-1]).values(incoming_protocol="pop3"))
    db.session.commit()
    result = sync_due_accounts()
    jobs = Job.fetch_many(get_queue(PERIODIC).job_ids, connection=get_redis())
    hosts = {a.id: (a.imap_host or "").lower() for a in Account.query.filter(Account.id.in_(fleet))}
    batches = [j.args[0] for j in jobs if j.meta["kind"] == "sync_batch"]
    singles = [j.args[0] for j in jobs if j.meta["kind"] == "sync"]
    assert singles == [fleet[-1]]  # POP3: its own single-mailbox job
    assert all(len({hosts[i] for i in b}) == 1 and len(b) <= 50 for b in batches)
    assert sorted(len(b) for b in batches) == [19, 30, 50, 50, 50, 50, 50]  # 130 on one, 169 on two
    assert result["jobs"] == len(jobs) == 8


def test_cron_picks_due_mailboxes_with_its_index(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the plan is read with SQLite's EXPLAIN QUERY PLAN")
    query = due_query(utcnow(), INTERVAL)
    sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
    plan = " ".join(str(row) for row in db.session.execute(db.text("EXPLAIN QUERY PLAN " + sql)))
    assert "ix_accounts_active_next_sync_at" in plan, plan
