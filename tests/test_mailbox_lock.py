"""The mailbox sync lock (webapp.jobs.mailbox_lock): one keeper for a single sync and a batch."""

from __future__ import annotations

import time

from rq.job import Job

from webapp.jobs import mailbox_lock
from webapp.jobs.mailbox_lock import LOCK_KEY, MailboxLocks
from webapp.queue import get_redis

IDS = [900001, 900002, 900003]


def _clear():
    get_redis().delete(*[LOCK_KEY.format(i) for i in IDS])


def test_a_single_sync_s_lock_and_a_batch_s_locks_exclude_each_other(app):
    _clear()
    single, batch = MailboxLocks(), MailboxLocks()
    assert single.take([IDS[1]]) == [IDS[1]]
    assert batch.take(IDS) == [IDS[0], IDS[2]]  # the single sync's mailbox is left to it
    assert get_redis().get(LOCK_KEY.format(IDS[1])).decode() == single.token
    batch.release()
    assert not any(get_redis().exists(LOCK_KEY.format(i)) for i in (IDS[0], IDS[2]))
    assert mailbox_lock.held(IDS[1])  # not the batch's to free
    single.release()
    assert not mailbox_lock.held(IDS[1])


def test_a_finished_job_s_lock_is_taken_over_a_running_holder_s_is_not(app):
    _clear()
    redis = get_redis()
    over = Job.create(func="os.getcwd", connection=redis)
    over.set_status("finished")
    over.save()
    redis.set(LOCK_KEY.format(IDS[0]), over.id, px=60_000)
    redis.set(LOCK_KEY.format(IDS[1]), "not-a-job", px=60_000)  # respected until it expires
    locks = MailboxLocks()
    assert locks.take(IDS[:2]) == [IDS[0]]
    assert redis.get(LOCK_KEY.format(IDS[0])).decode() == locks.token
    locks.release()
    assert redis.get(LOCK_KEY.format(IDS[1])) == b"not-a-job"
    _clear()


def test_a_failed_job_s_locks_are_released_for_it_only(app):
    _clear()
    redis = get_redis()
    redis.set(LOCK_KEY.format(IDS[0]), "dead-job", px=60_000)
    redis.set(LOCK_KEY.format(IDS[1]), "other-job", px=60_000)
    mailbox_lock.release_held(redis, "dead-job", IDS)
    assert not redis.exists(LOCK_KEY.format(IDS[0]))
    assert redis.get(LOCK_KEY.format(IDS[1])) == b"other-job"
    _clear()


def test_release_sends_the_release_and_what_the_caller_adds_in_one_round_trip(app, round_trips):
    _clear()
    locks = MailboxLocks()
    locks.take(IDS)
    before = len(round_trips)
    locks.release(also=lambda pipe: pipe.incrby("mailroom:test:lock-counter", 3))
    assert len(round_trips) - before == 1
    assert int(get_redis().getdel("mailroom:test:lock-counter")) == 3
    assert not any(mailbox_lock.held(i) for i in IDS)


def test_the_keeper_extends_the_locks_while_they_are_held(app):
    _clear()
    app.config["SYNC_LOCK_TTL"] = 3  # extended every second
    redis = get_redis()
    locks = MailboxLocks()
    locks.take(IDS[:2])
    try:
        for i in IDS[:2]:
            redis.pexpire(LOCK_KEY.format(i), 1500)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and min(redis.pttl(LOCK_KEY.format(i)) for i in IDS[:2]) <= 1500:
            time.sleep(0.05)
        assert all(redis.pttl(LOCK_KEY.format(i)) > 1500 for i in IDS[:2])
    finally:
        locks.release()
