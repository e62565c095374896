"""Jobs whose worker died: recognised within seconds, then failed through RQ's own abandoned-job path.

RQ already knows abandoned jobs: a started job's execution carries a heartbeat deadline in the
``StartedJobRegistry``; once the worker stops beating (it was SIGKILLed, its machine was lost)
the deadline passes (``job_monitoring_interval`` + 60 s, about 90 s) and the next
``StartedJobRegistry.cleanup()`` runs the job's failure callback with ``AbandonedJobError``,
retries the job if it has retries left and otherwise moves it to the ``FailedJobRegistry``.
Mailroom keeps that path and only shortens how long it takes to notice:

* ``mailroom worker`` beats a :class:`Pulse`: its RQ name in the sorted set :data:`PULSE_KEY`,
  scored with the Redis server's clock, every :data:`PULSE_EVERY` seconds, from a thread of
  the worker's main process (the work horse dies with that process: see ``webapp.cli``).
* :func:`worker_gone` says a started job's worker is gone when RQ's worker key expired or its
  pulse is older than ``WORKER_PULSE_TTL`` seconds.  A worker without a pulse (a plain
  ``rq worker``) is left to RQ's own heartbeat deadline.
* :func:`recover` marks such a job's execution as expired and runs RQ's cleanup, so the
  failure callbacks (the sync's lock and outcome, a send's row) and the retry rules are RQ's.
  It runs where someone looks (the job status, "Sync now") and every minute from cron
  (:func:`recover_abandoned`), which also catches what RQ's own deadline expired.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

import redis
from flask import current_app
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.timeouts import TimerDeathPenalty
from rq.utils import as_text

from connectors.i18n import N_

from ..queue import LANES, UNREACHABLE, get_redis, queue_name

PULSE_KEY = "mailroom:workers:pulse"
#: Seconds between two pulses of a worker.
PULSE_EVERY = 2.0
#: Seconds without a pulse after which a worker is taken for dead (config ``WORKER_PULSE_TTL``).
PULSE_TTL = 10
#: What the job status shows for a job whose worker died (stored in English, translated when
#: shown), and the sentences that may follow it.
SENTENCE = N_("The worker stopped while running this job (it was killed or its machine was lost).")
START_AGAIN = N_("Start it again.")
SYNC_RESUMES = N_("The next sync picks up where it stopped.")


def _redis_now(conn: redis.Redis) -> float:
    """The Redis server's clock: workers and web on different machines compare the same time."""
    seconds, micros = conn.time()
    return seconds + micros / 1_000_000


class Pulse:
    """A worker's "still alive" beat, every :data:`PULSE_EVERY` seconds, until :meth:`stop`."""

    def __init__(self, conn: redis.Redis, worker_name: str, every: float = PULSE_EVERY) -> None:
        self.conn, self.name, self.every = conn, worker_name, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mailroom-pulse", daemon=True)

    def beat(self) -> None:
        self.conn.zadd(PULSE_KEY, {self.name: _redis_now(self.conn)})

    def start(self) -> Pulse:
        try:
            self.beat()
        except UNREACHABLE:
            pass  # the worker itself waits for Redis; the thread beats once it is back
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.beat()
            except UNREACHABLE:
                pass  # Redis is away: the worker cannot work either; beat again when it is back

    def stop(self) -> None:
        """A clean stop: the worker finished its job, so forget its pulse."""
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.conn.zrem(PULSE_KEY, self.name)
        except UNREACHABLE:
            pass


def die_with_parent(parent_pid: int) -> None:
    """In a forked work horse: be killed with the worker's main process (Linux ``PR_SET_PDEATHSIG``).

    RQ's worker, not its horse, beats the job's heartbeat; a horse that outlived a SIGKILLed
    worker would go on writing while RQ (and :func:`worker_gone`) already call its job abandoned.
    """
    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))
    if os.getppid() != parent_pid:
        os._exit(1)  # the worker died before the line above took effect


def pulse_ttl() -> int:
    return int(current_app.config.get("WORKER_PULSE_TTL", PULSE_TTL))


def worker_gone(job: Job, conn: redis.Redis) -> bool:
    """True when the worker that started ``job`` is known to be dead (see the module docstring)."""
    name = job.worker_name
    if not name:
        return False  # not started by a worker yet (or started by an old RQ): RQ decides
    if not conn.exists(Worker.redis_worker_namespace_prefix + name):
        return True
    beat = conn.zscore(PULSE_KEY, name)
    if beat is None:
        return False  # a worker without a pulse: RQ's heartbeat deadline decides
    return _redis_now(conn) - beat > pulse_ttl()


def _registry(queue_name: str, conn: redis.Redis) -> StartedJobRegistry:
    # TimerDeathPenalty: the callbacks' time limit must also work off the main thread (web requests).
    return StartedJobRegistry(queue_name, connection=conn, death_penalty_class=TimerDeathPenalty)


def _expire(registry: StartedJobRegistry, job_id: str) -> None:
    """Move the job's executions' heartbeat deadline into the past, as a dead worker's would be."""
    prefix = f"{job_id}:"
    members = [m for m in registry.connection.zrange(registry.key, 0, -1) if as_text(m).startswith(prefix)]
    if members:
        registry.connection.zadd(registry.key, {m: 1 for m in members}, xx=True)


def recover(job: Job) -> bool:
    """Fail ``job`` through RQ's abandoned-job path now if it is started and its worker is gone."""
    conn = get_redis()
    if job.get_status(refresh=True) != JobStatus.STARTED or not worker_gone(job, conn):
        return False
    registry = _registry(job.origin, conn)
    _expire(registry, job.id)
    registry.cleanup()
    return True


def recover_abandoned() -> dict:
    """Cron, every minute: every started job of Mailroom's lanes whose worker is gone, and RQ's
    own expired executions, go through RQ's cleanup; stale pulses are forgotten."""
    conn = get_redis()
    recovered = []
    for lane in LANES:
        recovered += _recover_lane(_registry(queue_name(lane), conn), conn)
    conn.zremrangebyscore(PULSE_KEY, 0, _redis_now(conn) - 24 * 3600)
    return {"recovered": recovered}


def _recover_lane(registry: StartedJobRegistry, conn: redis.Redis) -> list[str]:
    recovered = []
    for job_id in registry.get_job_ids(cleanup=False):
        try:
            job = Job.fetch(job_id, connection=conn)
        except NoSuchJobError:
            continue
        if job.get_status(refresh=False) == JobStatus.STARTED and worker_gone(job, conn):
            _expire(registry, job.id)
            recovered.append(job.id)
    registry.cleanup()
    return recovered


def was_abandoned(job: Job) -> bool:
    """True for a failed job that RQ's cleanup failed as abandoned (its worker died)."""
    result = job.latest_result()
    return result is not None and "AbandonedJobError" in (result.exc_string or "")
