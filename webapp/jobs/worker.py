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

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from rq import SimpleWorker, Worker
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue

from connectors.plugins import get_plugin_manager

from ..extensions import db

#: The signals that ask a worker to stop.
STOPS = (signal.SIGTERM, signal.SIGINT)
_unblock_hooked = False


def _unblock_stops() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)


class EarlyStop:
    """A SIGTERM/SIGINT that arrives while RQ starts is kept, not lost or fatal.

    RQ prints "Listening on" and cleans its registries before it installs its own warm-shutdown
    handlers; a stop asked in that window used to kill the worker outright (its pulse left behind,
    to expire).  :meth:`listen_for_early_stop` keeps the signal; once RQ's handlers are in, the
    worker stops on request as if it had come a moment later.

    RQ forks its scheduler process in that window too, and the worker's stop SIGTERMs the scheduler
    and joins it without a timeout.  So the child must die of that signal: the inherited handler
    gives a forked child the signal's default action, and the stop signals are blocked across the
    fork (:meth:`stops_held`), since CPython drops a signal that reaches a child before its
    after-fork reset; the child unblocks them once that reset is done, and the pending one acts.
    """

    _early_signal: int | None = None
    _listening_pid: int | None = None

    def listen_for_early_stop(self) -> None:
        global _unblock_hooked
        if not _unblock_hooked:
            os.register_at_fork(after_in_child=_unblock_stops)
            _unblock_hooked = True
        self._listening_pid = os.getpid()
        for sig in STOPS:
            signal.signal(sig, self._remember_signal)

    def _remember_signal(self, signum, _frame) -> None:
        if os.getpid() != self._listening_pid:
            signal.signal(signum, signal.SIG_DFL)  # a forked child: the signal is its own stop
            os.kill(os.getpid(), signum)
            return
        self._early_signal = signum

    @contextmanager
    def stops_held(self) -> Iterator[None]:
        """Hold SIGTERM/SIGINT while forking: the parent gets them after, the child once it can act."""
        signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
        try:
            yield
        finally:
            _unblock_stops()

    def _start_scheduler(self, *args, **kwargs) -> None:
        with self.stops_held():
            super()._start_scheduler(*args, **kwargs)

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()
        if self._early_signal is not None:
            self.log.info("Worker %s: stop asked while starting", self.name)
            self._stop_requested = True


class ForkingWorker(EarlyStop, Worker):
    """RQ's forking ``Worker`` (``mailroom worker --fork``), keeping an early stop."""


class WarmWorker(EarlyStop, SimpleWorker):
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
