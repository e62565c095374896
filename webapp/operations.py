"""What an operator sees: workers, lanes, failed jobs, sync lag, mailboxes by state, push.

One set of figures, read from RQ's own records in Redis and one query over the mailboxes, feeds
both the admin Operations page and ``/metrics`` (Prometheus text), so the two never disagree.
Cron samples the sync lag every :data:`SAMPLE_EVERY` seconds into a capped Redis list
(:func:`sample_lag`), which the page draws as a 24-hour chart.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask_babel import gettext as _
from rq import Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import func, select

from .errors import NotFound
from .extensions import db
from .models import Account, AccountState
from .queue import LANES, get_queue, get_redis
from .users import owner_enabled

#: The capped list of lag samples: newest first, one every 5 minutes, 24 hours of them.
HISTORY_KEY = "mailroom:ops:lag"
SAMPLE_EVERY = 300
HISTORY_LENGTH = 24 * 3600 // SAMPLE_EVERY
#: ``mailroom idle`` (webapp.jobs.idle): one lease key per mailbox held in IDLE, one key per process.
#: Named here rather than imported so the web side does not load the worker side (a test checks they match).
IDLE_LEASES = "mailroom:idle:lease:*"
IDLE_PROCESSES = "mailroom:idle:process:*"
#: How many failed jobs the page lists per lane (the count is always the whole registry's).
FAILED_SHOWN = 50


@dataclass
class Lag:
    """Seconds since the last successful sync over active mailboxes (never synced: since created)."""

    oldest: float = 0.0
    p95: float = 0.0
    mailboxes: int = 0


@dataclass
class Figures:
    workers: list[dict] = field(default_factory=list)
    lanes: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    lag: Lag = field(default_factory=Lag)
    states: dict[str, int] = field(default_factory=dict)
    #: Connections in IDLE now (the processes' heartbeats), and mailboxes leased (one key each).
    idle_connections: int = 0
    idle_mailboxes: int = 0
    idle_processes: int = 0


def figures(failed_limit: int = FAILED_SHOWN) -> Figures:
    """Every figure of the page and of /metrics, read now."""
    return Figures(
        workers=workers(),
        lanes=lanes(),
        failed=failed_jobs(failed_limit),
        lag=sync_lag(),
        states=mailboxes_by_state(),
        **_push(),
    )


def workers() -> list[dict]:
    """RQ's registered workers (a worker's key expires when it stops heartbeating)."""
    out = []
    for worker in Worker.all(connection=get_redis()):
        beat = worker.last_heartbeat
        age = (datetime.now(UTC) - beat.replace(tzinfo=UTC)).total_seconds() if beat else None
        job_id = worker.get_current_job_id()
        job = _fetch(job_id) if job_id else None
        out.append(
            {
                "name": worker.name,
                "hostname": worker.hostname,
                "pid": worker.pid,
                "state": str(getattr(worker.get_state(), "value", worker.get_state())),
                "alive": age is not None and age <= worker.worker_ttl + 60,
                "heartbeat_age": age,
                "queues": worker.queue_names(),
                "job": _describe(job) if job else None,
            }
        )
    return sorted(out, key=lambda w: (w["hostname"] or "", w["name"]))


def lanes() -> list[dict]:
    """Per lane: jobs waiting in the queue, scheduled (waits and retries), running, failed."""
    out = []
    for lane in LANES:
        queue = get_queue(lane)
        out.append(
            {
                "lane": lane,
                "queue": queue.name,
                "queued": queue.count,
                "scheduled": ScheduledJobRegistry(queue=queue).count,
                "started": StartedJobRegistry(queue=queue).count,
                "failed": FailedJobRegistry(queue=queue).count,
            }
        )
    return out


def failed_jobs(limit: int = FAILED_SHOWN) -> list[dict]:
    """The newest failed jobs of every lane (RQ keeps them ``failure_ttl``: a day for Mailroom's)."""
    out = []
    for lane in LANES:
        registry = FailedJobRegistry(queue=get_queue(lane))
        ids = registry.get_job_ids(-limit, -1) if limit else []
        for job in Job.fetch_many(ids, connection=get_redis()):
            if job is not None:
                out.append({**_describe(job), "lane": lane, "error": _last_line(job)})
    return sorted(out, key=lambda j: j["ended_at"] or "", reverse=True)


def requeue(job_id: str) -> Job:
    """Put a failed job back on its lane (RQ's ``FailedJobRegistry.requeue``); 404 if not failed."""
    for lane in LANES:
        registry = FailedJobRegistry(queue=get_queue(lane))
        if job_id in registry:
            try:
                return registry.requeue(job_id)
            except (InvalidJobOperation, NoSuchJobError):
                break
    raise NotFound(_("No such failed job (it may have been requeued already or expired)."))


def sync_lag(now: datetime | None = None) -> Lag:
    """Oldest and 95th percentile (nearest rank) of now − last successful sync, over active mailboxes."""
    now = now or datetime.now(UTC)
    rows = db.session.execute(
        select(func.coalesce(Account.last_synced_at, Account.created_at)).where(
            Account.active.is_(True),
            Account.state != AccountState.SERVICE_REMOVED.value,
            owner_enabled(),  # a disabled user's mailboxes are not synced on purpose: no lag alarm
        )
    ).scalars()
    ages = sorted(max(0.0, (now - _aware(at)).total_seconds()) for at in rows if at is not None)
    if not ages:
        return Lag()
    rank = max(1, math.ceil(0.95 * len(ages)))
    return Lag(oldest=ages[-1], p95=ages[rank - 1], mailboxes=len(ages))


def mailboxes_by_state() -> dict[str, int]:
    rows = db.session.execute(select(Account.state, func.count()).group_by(Account.state))
    return {state or "unknown": count for state, count in sorted(rows, key=lambda r: r[0] or "")}


def sample_lag() -> dict:
    """Cron, every 5 minutes: append the lag to the 24-hour history (capped list, newest first)."""
    lag = sync_lag()
    sample = {"t": int(time.time()), "oldest": round(lag.oldest, 1), "p95": round(lag.p95, 1)}
    redis = get_redis()
    with redis.pipeline() as pipe:
        pipe.lpush(HISTORY_KEY, json.dumps(sample))
        pipe.ltrim(HISTORY_KEY, 0, HISTORY_LENGTH - 1)
        pipe.execute()
    return sample


def lag_history(since: float | None = None) -> list[dict]:
    """The samples of the last 24 hours, oldest first."""
    since = since if since is not None else time.time() - 24 * 3600
    samples = [json.loads(raw) for raw in get_redis().lrange(HISTORY_KEY, 0, HISTORY_LENGTH - 1)]
    return sorted((s for s in samples if s.get("t", 0) >= since), key=lambda s: s["t"])


def _push() -> dict:
    """From ``mailroom idle``'s keys: its per-process heartbeats (which carry how many of its
    connections are in IDLE) and its per-mailbox leases."""
    redis = get_redis()
    beats = [
        json.loads(raw) for key in redis.scan_iter(IDLE_PROCESSES, count=1000) if (raw := redis.get(key))
    ]
    return {
        "idle_connections": sum(int(beat.get("idling", 0)) for beat in beats),
        "idle_mailboxes": sum(1 for _ in redis.scan_iter(IDLE_LEASES, count=1000)),
        "idle_processes": len(beats),
    }


def _fetch(job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=get_redis())
    except NoSuchJobError:
        return None


def _describe(job: Job) -> dict:
    return {
        "id": job.id,
        "func": job.func_name,
        "kind": job.meta.get("kind"),
        "account_id": job.meta.get("account_id"),
        "enqueued_at": _iso(job.enqueued_at),
        "started_at": _iso(job.started_at),
        "ended_at": _iso(job.ended_at),
    }


def _last_line(job: Job) -> str:
    result = job.latest_result()
    text = (result.exc_string if result is not None else None) or ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _iso(value: datetime | None) -> str | None:
    return _aware(value).isoformat(timespec="seconds") if value else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
