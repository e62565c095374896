"""Wait instead of fail: re-enqueue the running job a little later when the server is busy.

Two cases land here, both classified ``throttled``: every connection the server allows us is
held by other workers (:class:`webapp.jobs.connection_slots.NoFreeConnection`), or the server
itself answered "too many connections" / "[LIMIT]" / "try again later".  Neither says anything
about the mailbox, so the mailbox's state is not touched: the job schedules a copy of itself on
the same lane (RQ ``enqueue_in``, which the workers' scheduler moves back to the queue when due)
and ends with ``status: waiting``.  The copy carries ``meta["waits"]`` so delays grow
(a busy slot from :data:`SLOT_DELAY` s, a throttling server from :data:`THROTTLED_DELAY` s, doubled
each time, at most :data:`MAX_DELAY` s); after :data:`MAX_WAITS` waits the caller fails it as usual.
"""

from __future__ import annotations

import random
from datetime import timedelta

from flask import current_app
from rq import Callback, Queue, Retry, get_current_job
from rq.job import Job

from connectors.errors import MailError

from .connection_slots import NoFreeConnection

#: First delay (s) when no connection slot was free (config ``CONNECTION_WAIT_SECONDS``).
SLOT_DELAY = 5
#: First delay (s) when the server throttled us (config ``THROTTLED_WAIT_SECONDS``).
THROTTLED_DELAY = 30
MAX_DELAY = 600
#: Waits before the job gives up and fails like any transient failure (config ``MAX_CONNECTION_WAITS``).
MAX_WAITS = 10


def waits_so_far() -> int:
    job = get_current_job()
    return int(job.meta.get("waits", 0)) if job is not None else 0


def may_wait() -> bool:
    """True while the running job may wait once more (a job run outside RQ never waits)."""
    if get_current_job() is None:
        return False
    return waits_so_far() < int(current_app.config.get("MAX_CONNECTION_WAITS", MAX_WAITS))


def delay_for(error: MailError, waits: int) -> float:
    """Seconds until the next try: doubling from the first delay, capped, with up to 20 % jitter
    so the workers that all found the server busy do not come back in the same second."""
    if isinstance(error, NoFreeConnection):
        base = float(current_app.config.get("CONNECTION_WAIT_SECONDS", SLOT_DELAY))
    else:
        base = float(current_app.config.get("THROTTLED_WAIT_SECONDS", THROTTLED_DELAY))
    seconds = min(base * 2**waits, float(current_app.config.get("MAX_CONNECTION_WAIT_SECONDS", MAX_DELAY)))
    return seconds * (1 + random.random() / 5)


def wait_again(error: MailError) -> tuple[Job, float]:
    """Schedule a copy of the running job on its own queue after :func:`delay_for`; the copy keeps
    the job's arguments, meta (plus ``waits`` and ``waiting``), timeouts, retries and failure callback."""
    job = get_current_job()
    waits = waits_so_far()
    seconds = delay_for(error, waits)
    meta = dict(job.meta)
    meta.pop("progress", None)
    meta["waits"] = waits + 1
    meta["waiting"] = {"reason": error.message, "seconds": round(seconds, 1)}
    queue = Queue(job.origin, connection=job.connection)
    retry = Retry(max=job.retries_left, interval=job.retry_intervals or 0) if job.retries_left else None
    later = queue.enqueue_in(
        timedelta(seconds=seconds),
        job.func,
        *job.args,
        **job.kwargs,
        job_timeout=job.timeout,
        result_ttl=job.result_ttl,
        failure_ttl=job.failure_ttl,
        retry=retry,
        on_failure=Callback(job.failure_callback) if job.failure_callback else None,
        meta=meta,
    )
    return later, seconds
