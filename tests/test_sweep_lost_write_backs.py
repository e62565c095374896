"""A pending message change whose write-back job was lost from Redis (flushed, restarted without
persistence, expired), or ended without settling it, is enqueued again by cron's sweeper after
its grace period, once, and reaches the real Dovecot.

Real pieces: Dovecot, Redis (the job deleted from it, or marked over), RQ's worker (run_burst).
"""

from __future__ import annotations

from rq.job import Job, JobStatus

from tests.support.job_worker import run_burst
from tests.support.sync_support import imap_login, server_flags
from tests.test_messages_writeback import _act, _by_subject, _folder, synced  # noqa: F401  (fixture)
from webapp import message_changes as changes
from webapp.extensions import db
from webapp.jobs import message_changes as change_jobs
from webapp.models import MessageChange
from webapp.queue import get_queue, get_redis


def _pending_jobs() -> dict[int, str]:
    db.session.expire_all()
    return {c.id: c.job_id for c in MessageChange.query.filter_by(state=changes.PENDING)}


def test_a_change_whose_job_was_deleted_from_redis_is_enqueued_again_and_written_once(
    api,
    clean_dovecot,
    synced,  # noqa: F811  (the fixture imported above)
):
    m = _by_subject(synced)
    flag_uid, trash_uid = m["Note 1"].uid, m["Note 2"].uid
    flag = _act(api["alice"], [m["Note 1"].id], "flag")["jobs"][0]["job_id"]
    trash = _act(api["alice"], [m["Note 2"].id], "trash")["jobs"][0]["job_id"]
    for job_id in (flag, trash):
        Job.fetch(job_id, connection=get_redis()).delete()  # as a Redis flush or expiry would
    pending = _pending_jobs()
    assert sorted(pending.values()) == sorted([flag, trash])

    assert change_jobs.sweep_marks(grace=3600) == []  # within the grace period: left alone
    assert change_jobs.sweep_marks(grace=0) == sorted(pending)
    again = _pending_jobs()
    assert set(again) == set(pending) and not set(again.values()) & {flag, trash}
    assert change_jobs.sweep_marks(grace=0) == []  # their new jobs are queued: nothing enqueued twice
    assert "\\Flagged" not in server_flags(clean_dovecot, "INBOX")[flag_uid]

    run_burst()
    assert MessageChange.query.filter_by(state=changes.PENDING).count() == 0
    inbox = server_flags(clean_dovecot, "INBOX")
    assert "\\Flagged" in inbox[flag_uid].split() and trash_uid not in inbox
    with imap_login(clean_dovecot) as imap:
        imap.select_folder("Trash", readonly=True)
        assert len(imap.search(["SUBJECT", "Note 2"])) == 1  # moved once
    assert _by_subject(synced)["Note 2"].folder_id == _folder(synced, "Trash").id
    assert change_jobs.sweep_marks(grace=0) == []


def test_a_job_that_ended_without_settling_its_change_is_replaced_but_a_queued_one_is_not(
    api,
    clean_dovecot,
    synced,  # noqa: F811  (the fixture imported above)
):
    m = _by_subject(synced)
    uid = m["Note 3"].uid
    job_id = _act(api["alice"], [m["Note 3"].id], "flag")["jobs"][0]["job_id"]
    (change_id,) = _pending_jobs()
    assert change_jobs.sweep_marks(grace=0) == []  # queued: it will still answer

    job = Job.fetch(job_id, connection=get_redis())
    get_queue().remove(job)  # the interactive lane
    job.set_status(JobStatus.FINISHED)  # over, yet the change is still pending
    assert change_jobs.sweep_marks(grace=0) == [change_id]
    run_burst()
    assert "\\Flagged" in server_flags(clean_dovecot, "INBOX")[uid].split()
    assert MessageChange.query.count() == 0


def test_two_sweepers_never_take_the_same_change(api, synced):  # noqa: F811  (the fixture imported above)
    m = _by_subject(synced)
    job_id = _act(api["alice"], [m["Note 4"].id], "unflag" if m["Note 4"].flagged else "flag")["jobs"][0][
        "job_id"
    ]
    (change_id,) = _pending_jobs()
    assert changes.claim([change_id], job_id, "sweep-a") == [change_id]
    assert changes.claim([change_id], job_id, "sweep-b") == []  # the first one took it
    assert changes.claim([change_id], None, "sweep-b") == []
    db.session.commit()
    assert _pending_jobs() == {change_id: "sweep-a"}
