"""Cron's periodic sync of a batch of mailboxes on one server: one job, concurrent checks.

``mailroom cron`` (:func:`webapp.jobs.sync.sync_due_accounts`) groups the due IMAP mailboxes by
server (their service, or the typed IMAP host) and enqueues :func:`sync_batch` jobs of up to
``SYNC_BATCH_SIZE`` (50) of them on the periodic lane.  A batch job:

1. reads its mailboxes, their servers, credentials and connection limits, and the stored state of
   every folder marked for sync, in a few queries (not a few per mailbox);
2. takes the mailboxes' sync locks in one Redis pipeline (:mod:`webapp.jobs.mailbox_lock`; a
   mailbox locked by a running sync, e.g. a person's "Sync now", is left to it), extended by one
   thread for the whole batch;
3. visits the mailboxes concurrently, ``SYNC_BATCH_THREADS`` (8) at a time and never more than
   the server's connection limit (:mod:`webapp.jobs.connection_slots`; each visit holds a slot):
   connect, login, one ``STATUS`` per folder (:func:`connectors.sync.unchanged_folders`).  A
   mailbox where something changed (or that is new) gets its real sync on that same connection,
   in that thread, with its own app context and database session
   (:func:`webapp.jobs.sync.sync_on`); its outcome is recorded as a single job's is;
4. records every unchanged mailbox in one transaction (``last_synced_at``, healed state; no log
   line: nothing changed, nothing to log) and counts them in Redis
   (``mailroom:sync:unchanged``, for the Operations page and ``/metrics``);
5. a mailbox whose visit failed is recorded for that mailbox only (:mod:`webapp.jobs.outcome`, the
   one writer of a mailbox's state) and never fails the batch: a transient failure is retried as
   a single-mailbox sync job after the first retry interval (then RQ's own retries), an
   authentication failure is marked as such; no free connection slot, or a server asking us to
   slow down, defers that mailbox (a single job later, :mod:`webapp.jobs.backoff`), it is not a
   failure.

A person's "Sync now" stays a single-mailbox job on the interactive lane (a queued batch does not
make it answer 409).  A worker killed mid-batch: RQ's abandoned-job path calls
:func:`on_batch_failure`, which releases the locks the batch still held; the mailboxes come round
again at their next due time.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from datetime import timedelta

from flask import Flask, current_app
from rq import Callback, Retry
from rq.job import Job
from sqlalchemy.orm import selectinload

from connectors import plugins
from connectors.errors import AUTH_CLASSES, ErrorClass, MailError
from connectors.sync import unchanged_folders

from .. import settings_store
from ..address_guard import address_policy
from ..errors import MailboxUnavailable
from ..extensions import db
from ..models import Account, LogLevel, LogSource
from ..queue import INTERACTIVE, PERIODIC, get_queue, get_redis
from . import backoff, mailbox_lock
from .connection_slots import Limit, hold, limit_for
from .outcome import Check, Line, record_failure, record_unchanged_syncs
from .session import credentials, server_settings
from .sync import (
    BATCH_FAILURE_CALLBACK,
    BATCH_JOB,
    BATCH_KIND,
    JOB_KEY,
    failed_line,
    is_transient,
    job_key_ttl,
    job_options,
    job_timeout,
    log_waiting,
    record_synced,
    retry_intervals,
    sync_account,
    sync_on,
)
from .sync_store import clear_folder_errors, folder_states

#: Mailboxes visited at once by one batch job (config ``SYNC_BATCH_THREADS``).
THREADS = 8
#: Seconds a visit waits for a connection slot before the mailbox is deferred (``SYNC_BATCH_SLOT_WAIT``).
SLOT_WAIT = 1.0
#: Seconds between looks at the interactive lane while a batch runs (``SYNC_BATCH_YIELD_CHECK``):
#: when a person's job waits, the batch finishes the visits under way and hands the rest on.
YIELD_CHECK = 0.1
#: Redis counter of unchanged mailboxes checked (no log row is written for them).
UNCHANGED_COUNTER = "mailroom:sync:unchanged"

UNCHANGED, SYNCED, WAIT, FAILED, CRASHED = "unchanged", "synced", "waiting", "failed", "crashed"
#: One changed mailbox's sync at a time in this process, on SQLite (see :func:`_serial`).
_SQLITE_WRITER = threading.Lock()


@dataclass
class Visit:
    """One mailbox of the batch: what its thread needs (no ORM object crosses threads) and found."""

    account_id: int
    owner_id: int
    client: object = None
    limit: Limit | None = None
    folders: list = field(default_factory=list)
    outcome: str = ""
    error: BaseException | None = None
    folder_ids: list[int] = field(default_factory=list)


def on_batch_failure(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback of a batch (its worker died, or the batch itself broke): release
    the locks it still holds; its mailboxes come round again at their next due time."""
    mailbox_lock.release_held(connection, job.id, job.meta.get("account_ids") or [])


# -- the job ------------------------------------------------------------------------------------


def sync_batch(account_ids: list[int]) -> dict:
    """RQ job (periodic lane): check, and sync where something changed, these mailboxes of one server.

    Returns counts by outcome and ``phases``: seconds spent loading and locking, planning
    (settings, credentials, folder states), visiting (the concurrent network part, and the syncs
    of changed mailboxes), recording and releasing (``bench.fleet_profile`` adds them up).
    """
    clock = _Phases()
    locks = mailbox_lock.MailboxLocks()
    accounts = _load(account_ids)
    counts = {"mailboxes": len(account_ids), "skipped": len(account_ids) - len(accounts)}
    taken = set(locks.take([a.id for a in accounts]))
    counts["already_running"] = len(accounts) - len(taken)
    clock.lap("load_and_lock")
    visits: list[Visit] = []
    rest: list[Visit] = []
    try:
        visits = _plan([a for a in accounts if a.id in taken])
        db.session.commit()  # end the read: the visits write from their own sessions
        clock.lap("plan")
        rest = _run(current_app._get_current_object(), visits)
        clock.lap("visits")
        _record(visits)
        clock.lap("record")
    finally:
        unchanged = sum(v.outcome == UNCHANGED for v in visits)
        # The unchanged ones counted in the same round trip as the release.
        locks.release(also=(lambda pipe: pipe.incrby(UNCHANGED_COUNTER, unchanged)) if unchanged else None)
        clock.lap("release")
    if rest:  # after the release, so whichever worker takes the new batch finds them free
        _hand_on(rest)
    counts["handed_on"] = len(rest)
    for outcome in (UNCHANGED, SYNCED, WAIT, FAILED, CRASHED):
        counts[outcome] = sum(v.outcome == outcome for v in visits)
    return {"ok": True, **counts, "seconds": clock.total(), "phases": clock.laps}


class _Phases:
    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self.last, 4)
        self.last = now

    def total(self) -> float:
        return round(time.perf_counter() - self.start, 3)


def _load(account_ids: list[int]) -> list[Account]:
    """The batch's mailboxes that may sync now (one query, services with them)."""
    accounts = Account.query.options(selectinload(Account.service)).filter(Account.id.in_(account_ids)).all()
    return [a for a in accounts if a.active and not a.service_removed and a.incoming_protocol != "pop3"]


def _plan(accounts: list[Account]) -> list[Visit]:
    """A :class:`Visit` per mailbox: its client (settings, decrypted credentials), limit, folders."""
    states = folder_states([a.id for a in accounts])
    client_class = plugins.protocol_clients()["imap"]
    shared = {"timeout": float(settings_store.get("connection_timeout")), "policy": address_policy()}
    visits = []
    for account in accounts:
        visit = Visit(account.id, account.user_id, folders=states.get(account.id, []))
        visit.folder_ids = [f[0] for f in visit.folders]
        try:
            settings = server_settings(account, "imap", **shared)
            visit.client = client_class(settings, credentials(account, "imap"), None)
            visit.limit = limit_for(account, settings.host)
        except MailboxUnavailable as exc:
            visit.outcome, visit.error = FAILED, exc
        except MailError as exc:  # an OAuth2 token that could not be refreshed
            visit.outcome, visit.error = FAILED, exc
        visits.append(visit)
    return visits


def threads_for(visits: list[Visit]) -> int:
    """At most ``SYNC_BATCH_THREADS``, and never more than the server's connection limit."""
    n = int(current_app.config.get("SYNC_BATCH_THREADS") or THREADS)
    caps = [v.limit.max_connections for v in visits if v.limit is not None and not v.limit.per_account]
    return max(1, min([n, len(visits), *caps]))


def _run(app: Flask, visits: list[Visit]) -> list[Visit]:
    """Visit the mailboxes, a few at a time; returns the ones left unvisited because a person's
    job arrived on the interactive lane (the batch hands them on, see :func:`_hand_on`): the
    visits not started yet, and those still waiting for SQLite's writer (:func:`_take_writer`)."""
    todo = [v for v in visits if not v.outcome]
    if not todo:
        return []
    wait = float(app.config.get("SYNC_BATCH_SLOT_WAIT", SLOT_WAIT))
    every = float(app.config.get("SYNC_BATCH_YIELD_CHECK", YIELD_CHECK))
    interactive = get_queue(INTERACTIVE)
    n = threads_for(todo)
    stop = threading.Event()
    running: set = set()
    finished = 0
    checked = time.monotonic()
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="mailroom-batch") as pool:
        while todo or running:
            while todo and len(running) < n:
                running.add(pool.submit(_visit, app, todo.pop(0), wait, stop))
            done, running = futures_wait(running, timeout=every, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()
            finished += len(done)
            # Yield only after a visit ended, so a batch always gets somewhere (never hands on all).
            if finished and (todo or running) and time.monotonic() - checked >= every:
                checked = time.monotonic()
                if interactive.count:  # a person waits: end what runs, leave the rest
                    stop.set()
                    for future in futures_wait(running).done:
                        future.result()
                    return [v for v in visits if not v.outcome]
    return []


def _hand_on(visits: list[Visit]) -> None:
    """The unvisited rest of a batch that yielded to a person's job: a new batch at the head of
    the periodic lane (so it comes right after the person's job), its job key on each mailbox."""
    ids = [v.account_id for v in visits]
    job = get_queue(PERIODIC).enqueue(
        BATCH_JOB,
        ids,
        at_front=True,
        job_timeout=job_timeout(),
        result_ttl=3600,
        failure_ttl=24 * 3600,
        on_failure=Callback(BATCH_FAILURE_CALLBACK),
        meta={"owner_id": None, "kind": BATCH_KIND, "account_ids": ids},
    )
    with get_redis().pipeline(transaction=False) as pipe:
        for account_id in ids:
            pipe.set(JOB_KEY.format(account_id), job.id, ex=job_key_ttl())
        pipe.execute()


def _serial() -> bool:
    """One changed mailbox's sync at a time per process?  Yes on SQLite (config
    ``SYNC_BATCH_PARALLEL_WRITES`` decides otherwise): it has one writer, and its busy handler
    sleeps up to 100 ms per retry, so concurrent writers only queue up slower.  PostgreSQL's
    syncs write side by side.  The checks stay concurrent either way."""
    parallel = current_app.config.get("SYNC_BATCH_PARALLEL_WRITES")
    return db.engine.dialect.name == "sqlite" if parallel is None else not parallel


def _take_writer(stop: threading.Event) -> bool:
    """Wait for this process's SQLite writer turn; False when the batch yields to a person's job
    meanwhile (the visit is then handed on, unsynced)."""
    while not _SQLITE_WRITER.acquire(timeout=0.05):
        if stop.is_set():
            return False
    return True


def _visit(app: Flask, visit: Visit, slot_wait: float, stop: threading.Event) -> None:
    """In a pool thread: connect, login, STATUS; a changed mailbox is synced on that connection.
    Leaves ``visit.outcome`` empty when the batch yields before the visit got anywhere."""
    if stop.is_set():
        return
    started = time.perf_counter()
    with app.app_context():
        try:
            with hold(visit.limit, "imap", slot_wait), visit.client as client:
                try:
                    found = unchanged_folders(client.imap, visit.folders) if visit.folders else None
                except MailError:
                    raise
                except Exception as exc:  # the connection broke: classify it like any other failure
                    raise client.classify(exc, "sync") from exc
                if found is not None:
                    visit.outcome = UNCHANGED
                    return
                _sync_changed(visit, client, stop, started)
        except MailError as exc:
            db.session.rollback()
            visit.outcome = WAIT if exc.error_class is ErrorClass.THROTTLED else FAILED
            visit.error = exc
        except Exception as exc:  # a bug in one mailbox's visit must not fail the batch
            db.session.rollback()
            visit.outcome, visit.error = CRASHED, exc


def _sync_changed(visit: Visit, client, stop: threading.Event, started: float) -> None:
    if stop.is_set():
        return  # yielding to a person's job: handed on before its sync starts
    serial = _serial()
    if serial and not _take_writer(stop):
        return  # yielding: handed on
    try:
        account = db.session.get(Account, visit.account_id)
        stats, _automation = sync_on(account, client)
        record_synced(account, stats, time.perf_counter() - started)  # records and commits
        visit.outcome = SYNCED
    finally:
        if serial:
            _SQLITE_WRITER.release()


# -- outcomes -----------------------------------------------------------------------------------


def _record(visits: list[Visit]) -> None:
    """The unchanged ones in one transaction; the others one by one (they are few)."""
    unchanged = [v for v in visits if v.outcome == UNCHANGED]
    record_unchanged_syncs([v.account_id for v in unchanged])
    clear_folder_errors([i for v in unchanged for i in v.folder_ids])
    db.session.commit()
    for visit in visits:
        try:
            if visit.outcome == WAIT:
                _defer(visit)
            elif visit.outcome in (FAILED, CRASHED):
                _failed(visit)
        except Exception:
            db.session.rollback()  # one mailbox's bookkeeping must not fail the others


def _later(visit: Visit, seconds: float, *, retry: Retry | None, meta: dict | None = None) -> Job:
    """A single-mailbox sync job of ``visit`` on the periodic lane in ``seconds``; its job key names it."""
    options = job_options(visit.owner_id, visit.account_id)
    options["meta"].update(meta or {})
    job = get_queue(PERIODIC).enqueue_in(
        timedelta(seconds=seconds),
        sync_account,
        visit.account_id,
        job_timeout=options.pop("timeout"),
        **{**options, "retry": retry},
    )
    get_redis().set(JOB_KEY.format(visit.account_id), job.id, ex=job_key_ttl())
    return job


def _defer(visit: Visit) -> None:
    """No free connection slot, or the server asked us to slow down: not a failure, come back later."""
    error = visit.error
    seconds = backoff.delay_for(error, 0)
    intervals = retry_intervals()
    retry = Retry(max=len(intervals), interval=intervals) if intervals else None
    meta = {"waits": 1, "waiting": {"reason": error.message, "seconds": round(seconds, 1)}}
    _later(visit, seconds, retry=retry, meta=meta)
    log_waiting(db.session.get(Account, visit.account_id), error, seconds)


def _failed(visit: Visit) -> None:
    """That mailbox's failure, recorded as a single sync's; a transient one is retried on its own."""
    account = db.session.get(Account, visit.account_id)
    if account is None:
        return
    error = visit.error
    mail_error = error if isinstance(error, MailError) else None
    if isinstance(error, MailboxUnavailable):
        message = str(error)
    elif mail_error is not None:
        message = f"IMAP: {mail_error.message}"
    else:
        message = f"{type(error).__name__}: {error}"[:500]
    intervals = retry_intervals()
    retry = mail_error is not None and is_transient(mail_error) and bool(intervals)
    text = failed_line(message, retry)
    details = {"error": mail_error.as_dict()} if mail_error is not None else None
    auth = mail_error is not None and mail_error.error_class in AUTH_CLASSES
    record_failure(
        account,
        Check.SYNC,
        message,
        auth=auth,
        lines=[Line(LogSource.SYNC, LogLevel.ERROR, text, details)],
        reached=mail_error is not None,
    )
    if retry:
        rest = intervals[1:]
        _later(visit, intervals[0], retry=Retry(max=len(rest), interval=rest) if rest else None)
