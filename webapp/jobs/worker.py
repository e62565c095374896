"""The warm worker: jobs run in ``mailroom worker``'s own process, one fresh app context each.

RQ's default ``Worker`` forks a work horse per job.  For Mailroom's jobs the fork buys nothing
and costs most of an unchanged sync: every horse starts cold (plugin manager, imports, SQLAlchemy
mappers and statement cache, a new database connection).  :class:`WarmWorker` is RQ's
``SimpleWorker`` (the job runs in the worker's main thread) that keeps the application, the
database engine's pool and the Redis connection across jobs, and gives each job a fresh app
context, hence a fresh database session: nothing a job loaded is seen by the next one.

What the fork used to give, and what stands in for it (argued in docs/scaling.md):

* time limits: RQ's ``UnixSignalDeathPenalty`` (SIGALRM) works in the main thread, where the
  job runs; a job over its ``job_timeout`` fails with ``JobTimeoutException`` as before.
* a job that crashes the interpreter (segfault, OOM kill) takes the worker with it: its pulse
  stops, so :mod:`webapp.jobs.abandoned` fails the job through RQ's abandoned path within
  ``WORKER_PULSE_TTL`` seconds, and ``mailroom up`` (or the service manager) starts a new worker.
* memory that grows across jobs: ``mailroom worker --max-jobs N`` exits after N jobs to be
  restarted fresh.

``mailroom worker --fork`` keeps RQ's forking worker for those who want a process per job.
"""

from __future__ import annotations

from flask import Flask
from rq import SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue

from connectors.plugins import get_plugin_manager

from ..extensions import db


class WarmWorker(SimpleWorker):
    """RQ's ``SimpleWorker`` with one app context (a fresh database session) per job."""

    def __init__(self, *args, app: Flask, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.app = app

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        with self.app.app_context():
            try:
                return super().perform_job(job, queue, execution)
            finally:
                db.session.remove()  # roll back whatever a failed or timed-out job left open


def warm_up() -> None:
    """Pay once, before the first job, what every job needs: the plugin manager (its discovery
    plugins import dnspython) and a pooled database connection."""
    get_plugin_manager()
    with db.engine.connect():
        pass
