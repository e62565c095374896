"""A mailbox's sync lock in Redis: the one module that takes, keeps and releases it.

One sync at a time per mailbox, whoever runs it: a single sync job (a person's "Sync now",
push, a deferred or retried sync; :mod:`webapp.jobs.sync`) takes its mailbox's lock, a periodic
batch job (:mod:`webapp.jobs.batch`) takes the locks of all its mailboxes in one pipeline.
Both go through :class:`MailboxLocks`, so they exclude each other and a dead holder's lock is
taken over alike.

* The key is ``mailroom:sync:lock:<account id>``, its value the holding job's id (the token), so
  a lock whose job is no longer running can be told apart from a busy one and taken over.
* It lives :func:`lock_ttl` seconds unless extended; one thread per holder extends all its locks
  every third of that, so a killed worker's locks expire on their own.
* Released in one call (compare-and-delete: only the locks still holding the token), also by
  the jobs' RQ failure callbacks (:func:`release_held`) when a worker died.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable

from flask import current_app
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job

from ..queue import get_redis
from . import abandoned as abandoned_jobs

LOCK_KEY = "mailroom:sync:lock:{}"
#: Seconds a lock lives without being extended (config ``SYNC_LOCK_TTL``).
LOCK_TTL = 60

#: KEYS: lock keys; ARGV[1] the holder's token.  Deletes only the locks it holds; answers how many.
_RELEASE = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key); n = n + 1 end
end
return n
"""
#: KEYS as above; ARGV: token, ttl in ms.  Extends only the locks it still holds.
_EXTEND = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('PEXPIRE', key, ARGV[2]) end
end
return 1
"""


def lock_ttl() -> int:
    """Seconds a lock outlives a killed worker (``MAILROOM_SYNC_LOCK_TTL`` or config)."""
    return int(os.environ.get("MAILROOM_SYNC_LOCK_TTL") or current_app.config.get("SYNC_LOCK_TTL", LOCK_TTL))


def held(account_id: int) -> bool:
    """Does anyone hold the mailbox's lock now?"""
    return bool(get_redis().exists(LOCK_KEY.format(account_id)))


def release_held(connection, token: str, account_ids: Iterable[int]) -> None:
    """Release the mailboxes' locks that ``token`` (a failed job's id) still holds; others' stay.

    For RQ's failure callbacks, which get their own ``connection``.
    """
    keys = [LOCK_KEY.format(i) for i in account_ids if i is not None]
    if keys:
        connection.eval(_RELEASE, len(keys), *keys, token)


class MailboxLocks:
    """The mailbox locks of one job: taken in one pipeline, extended by one thread, released in one call.

    The token is the running RQ job's id (a random one outside RQ)::

        locks = MailboxLocks()
        taken = locks.take([3, 4, 5])   # the ids it got: the others are being synced
        try: ...
        finally: locks.release()
    """

    def __init__(self) -> None:
        job = get_current_job()
        self.token = job.id if job is not None else os.urandom(8).hex()
        self.redis = get_redis()
        self.ttl_ms = int(lock_ttl() * 1000)
        self.keys: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def take(self, account_ids: list[int]) -> list[int]:
        """Take the free locks (and those of a job no longer running); answers the ids taken."""
        with self.redis.pipeline(transaction=False) as pipe:
            for account_id in account_ids:
                pipe.set(LOCK_KEY.format(account_id), self.token, nx=True, px=self.ttl_ms)
            answers = pipe.execute()
        taken = [i for i, ok in zip(account_ids, answers, strict=True) if ok]
        taken += [i for i, ok in zip(account_ids, answers, strict=True) if not ok and self._take_over(i)]
        self.keys = [LOCK_KEY.format(i) for i in taken]
        if self.keys:
            self._thread = threading.Thread(target=self._keep, daemon=True)
            self._thread.start()
        return taken

    def _take_over(self, account_id: int) -> bool:
        """Take a held lock whose holder is this very job (an earlier, dead run) or a job no longer
        running; a job still running (or a value that is no job's id) keeps it."""
        key = LOCK_KEY.format(account_id)
        holder = self.redis.get(key)
        if holder is not None:
            holder = holder.decode()
            if holder != self.token and _running(holder):
                return False
            if not self.redis.eval(_RELEASE, 1, key, holder):
                return False  # changed hands meanwhile
        return bool(self.redis.set(key, self.token, nx=True, px=self.ttl_ms))

    def _keep(self) -> None:
        while not self._stop.wait(max(1.0, self.ttl_ms / 3000)):
            try:
                self.redis.eval(_EXTEND, len(self.keys), *self.keys, self.token, self.ttl_ms)
            except Exception:
                return  # Redis gone: the locks expire on their own

    def release(self, also: Callable[[Pipeline], object] | None = None) -> None:
        """Release the locks still held, in one round trip with whatever ``also`` adds to the pipeline."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self.redis.pipeline(transaction=False) as pipe:
            if self.keys:
                pipe.eval(_RELEASE, len(self.keys), *self.keys, self.token)
            if also is not None:
                also(pipe)
            try:
                pipe.execute()
            except RedisError:
                pass  # Redis gone: the locks expire on their own


def _running(job_id: str) -> bool:
    """False only for a job known to be over (or whose worker is gone); anything else may run."""
    try:
        job = Job.fetch(job_id, connection=get_redis())
    except (NoSuchJobError, ValueError):
        return True  # not a job's id: respect the lock until it expires
    status = getattr(job.get_status(refresh=True), "value", None)
    return status == "started" and not abandoned_jobs.recover(job)
