"""``mailroom worker`` runs jobs warm (in its own process, no fork per job), one fresh database
session per job, and still enforces each job's time limit; ``--fork`` keeps RQ's work horses."""

from __future__ import annotations

import pytest
from rq.job import Job

from tests.support import worker_jobs
from tests.support.job_worker import WorkerProcess
from webapp.extensions import db
from webapp.models import Account, User
from webapp.queue import PERIODIC, enqueue, get_redis


@pytest.fixture
def account(app):
    owner = User(username="warm-owner", password_hash="x")
    db.session.add(owner)
    db.session.flush()
    row = Account(user_id=owner.id, manual=True, username="u", email="u@example.com", description="kept")
    db.session.add(row)
    db.session.commit()
    yield row


def _value(job: Job):
    job.refresh()
    return job.return_value()


def test_jobs_run_in_the_worker_itself_with_a_fresh_session_each(app, account, tmp_path):
    first = enqueue(worker_jobs.process_id)
    dirty = [enqueue(worker_jobs.leave_session_dirty, account.id, lane=PERIODIC) for _ in range(2)]
    second = enqueue(worker_jobs.process_id, lane=PERIODIC)
    worker = WorkerProcess(app, tmp_path)
    worker.run()
    pid = worker.proc.pid
    assert _value(first) == _value(second) == pid  # no work horse: the job ran in `mailroom worker`
    assert [_value(j) for j in dirty] == [0, 0]  # nothing a previous job loaded is in the next one's session
    db.session.expire_all()
    assert db.session.get(Account, account.id).description == "kept"  # an uncommitted change is rolled back


def test_a_job_over_its_time_limit_fails_and_the_worker_goes_on(app, tmp_path):
    slow = enqueue(worker_jobs.sleep, 30, job_timeout=1)
    after = enqueue(worker_jobs.process_id)
    worker = WorkerProcess(app, tmp_path)
    worker.run(timeout=60)
    slow.refresh()
    assert slow.get_status() == "failed"
    assert "JobTimeoutException" in slow.latest_result().exc_string
    assert _value(after) == worker.proc.pid


def test_fork_runs_each_job_in_a_work_horse(app, tmp_path):
    job = enqueue(worker_jobs.process_id)
    worker = WorkerProcess(app, tmp_path, args=("--fork",))
    worker.run()
    assert _value(job) != worker.proc.pid
    assert Job.fetch(job.id, connection=get_redis()).get_status() == "finished"
