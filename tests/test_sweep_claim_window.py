"""Two sweepers at once: the one that claimed a change and has not enqueued its write-back yet
keeps it; the other does not read its claim (no RQ job yet) as a lost job and enqueue the change
a second time.  A claim older than the grace period (its sweeper died before enqueuing) is taken.

Real pieces: Dovecot, Redis, RQ's worker (run_burst).
"""

from __future__ import annotations

import time
from datetime import timedelta

from rq.job import Job

from tests.support.job_worker import run_burst
from tests.support.sync_support import server_flags
from tests.test_messages_writeback import _act, _by_subject, synced  # noqa: F401  (fixture)
from webapp import message_changes as changes
from webapp.extensions import db
from webapp.jobs import message_changes as change_jobs
from webapp.models import MessageChange, utcnow
from webapp.queue import get_queue, get_redis

GRACE = 60


def _pending_jobs() -> dict[int, str]:
    db.session.expire_all()
    return {c.id: c.job_id for c in MessageChange.query.filter_by(state=changes.PENDING)}


def _lost_change(api, synced, subject: str) -> tuple[int, int]:  # noqa: F811
    """A pending flag change made an hour ago whose job is gone from Redis: (change id, uid)."""
    m = _by_subject(synced)[subject]
    job_id = _act(api["alice"], [m.id], "flag")["jobs"][0]["job_id"]
    Job.fetch(job_id, connection=get_redis()).delete()
    (change_id,) = _pending_jobs()
    db.session.get(MessageChange, change_id).created_at = utcnow() - timedelta(hours=1)
    db.session.commit()
    return change_id, m.uid


def test_a_sweeper_between_claim_and_enqueue_keeps_the_change(api, clean_dovecot, synced):  # noqa: F811
    change_id, uid = _lost_change(api, synced, "Note 1")
    assert not get_queue().job_ids

    assert change_jobs._claim_lost(GRACE) == [change_id]  # sweeper A claims; its enqueue is next
    claim = _pending_jobs()[change_id]
    assert claim.startswith("sweep-")
    assert change_jobs.sweep_marks(grace=GRACE) == []  # sweeper B: A's claim is no lost job
    assert _pending_jobs() == {change_id: claim} and not get_queue().job_ids

    (started,) = change_jobs._enqueue([change_id])  # A enqueues
    assert _pending_jobs() == {change_id: started["job"].id}
    assert get_queue().job_ids == [started["job"].id]  # one job for the change
    run_burst()
    assert "\\Flagged" in server_flags(clean_dovecot, "INBOX")[uid].split()
    assert _pending_jobs() == {}


def test_a_claim_older_than_the_grace_period_is_taken(api, clean_dovecot, synced):  # noqa: F811
    change_id, uid = _lost_change(api, synced, "Note 3")
    dead = f"sweep-{int(time.time()) - 2 * GRACE}-0123abcd"  # its sweeper died before enqueuing
    assert changes.claim([change_id], _pending_jobs()[change_id], dead) == [change_id]
    db.session.commit()

    assert change_jobs.sweep_marks(grace=GRACE) == [change_id]
    (job_id,) = get_queue().job_ids
    assert _pending_jobs() == {change_id: job_id}
    run_burst()
    assert "\\Flagged" in server_flags(clean_dovecot, "INBOX")[uid].split()
