"""The sync job of a mailbox, its lock, its start (web, API, cron) and its outcome.

``sync_account(account_id)`` runs in an RQ worker: it takes a Redis lock per mailbox (a second
run of the same mailbox answers "already running" instead of syncing alongside), opens the
mailbox's IMAP connection, runs :func:`connectors.sync.sync_folders` on the folders marked for
sync (listing them first if the mailbox has none yet), reports progress in ``job.meta`` and
records the outcome on the mailbox, its folders and the email log (source "Sync").  POP3
mailboxes are handed to :func:`webapp.jobs.pop3.download`.  The lock is
:mod:`webapp.jobs.mailbox_lock`'s (the batch job takes the same): its value is the job's id, so a
lock whose job is no longer running can be told apart from a busy one.

Failures: transient ones (timeout, refused, unreachable, throttled, server_error, a connection
lost mid-sync) are re-raised so RQ's ``Retry`` (set at enqueue) tries again with backoff, and the
mailbox stays due for cron; an authentication failure (only the server's explicit refusal of the
credentials, never a server that died or hung up during sign-in) is not retried: the mailbox is marked ``auth_error`` and periodic syncs skip it until
its owner fixes the password or presses "Sync now".

A worker killed mid-sync (SIGKILL, a lost machine): RQ's abandoned-job path, sped up by
:mod:`webapp.jobs.abandoned`, fails the job and calls :func:`on_sync_failure`, which releases
the mailbox's lock and records the failure like any other; "Sync now" then starts at once.
The abandoned sync is not retried by RQ: the next sync (periodic or "Sync now") resumes where
it stopped, and a retry waiting in RQ would only make "Sync now" answer 409.  A lock whose job
is no longer running is taken over by the next sync; otherwise the lock expires on its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from flask import current_app
from rq import Callback, Queue, Retry, get_current_job
from rq.exceptions import AbandonedJobError, NoSuchJobError
from rq.job import Job

from connectors.errors import AUTH_CLASSES, TRANSIENT_CLASSES, ErrorClass, MailError
from connectors.i18n import N_
from connectors.sync import sync_folders

from .. import email_log, settings_store
from ..errors import Conflict, Invalid, MailboxUnavailable
from ..extensions import db
from ..models import Account, AccountState, Folder, LogLevel, LogSource, utcnow
from ..queue import INTERACTIVE, PERIODIC, enqueue, enqueue_many, get_redis, reachable
from . import abandoned as abandoned_jobs
from . import backoff, due, mailbox_lock
from .automation import after_sync
from .folders import refresh_folders
from .outcome import Check, Line, record_failure, record_success, will_retry
from .pop3 import download, result_sentence
from .session import NoFreeConnection, open_client
from .sync_store import SqlSyncStore

JOB_KEY = "mailroom:sync:job:{}"
#: The email log's lines and a sync's sentence (stored in English, translated when shown: the
#: counts follow labels, so no stored text needs a language's plural forms).  A template that
#: begins like another comes first: a shown text is matched against them in this order.
WORDS = {
    "synced_failures": N_(
        "Synced folders: {folders}; new: {new}, flag changes: {updated}, removed: {deleted} "
        "({fetches} FETCH, {seconds} s). Failed: {failures}"
    ),
    "synced": N_(
        "Synced folders: {folders}; new: {new}, flag changes: {updated}, removed: {deleted} "
        "({fetches} FETCH, {seconds} s)."
    ),
    "failed_retried": N_("Sync failed: {message} It will be retried."),
    "failed": N_("Sync failed: {message}"),
    "waiting": N_(
        "Sync waiting: the server asked Mailroom to slow down ({reason}); trying again in {seconds} s."
    ),
    "automation_failed": N_("Filters and automatic replies failed after the sync: {error}"),
}
#: Seconds between retries of a transient failure (config ``SYNC_RETRY_INTERVALS``).
RETRY_INTERVALS = (30, 120, 600)
#: Seconds a just-started job may run before taking its lock (it takes it at once; this is slack).
START_GRACE = 10
#: Retried by RQ; the mailbox keeps its state and stays due for cron (a server that failed or hung
#: up during sign-in is ``server_error``, one of them, never ``auth``).
TRANSIENT = TRANSIENT_CLASSES
_ACTIVE = {"queued", "started", "deferred", "scheduled"}
#: Mailboxes cron checks and enqueues per Redis pipeline.
ENQUEUE_BATCH = 500
#: Mailboxes of one server per periodic batch job (config ``SYNC_BATCH_SIZE``).
BATCH_SIZE = 50
#: The batch job and its failure callback, by dotted path (webapp.jobs.batch imports this module).
BATCH_JOB = "webapp.jobs.batch.sync_batch"
BATCH_FAILURE_CALLBACK = "webapp.jobs.batch.on_batch_failure"
BATCH_KIND = "sync_batch"


class SyncRunning(Conflict):
    """409: a sync of the mailbox is queued or running; the body names that job (the web adds its URL)."""

    def __init__(self, job_id: str) -> None:
        super().__init__("A sync of this mailbox is already queued or running.")
        self.job_id = job_id
        self.status_url: str | None = None

    def as_dict(self) -> dict:
        return {"error": self.message, "job_id": self.job_id, "status_url": self.status_url}


class Transient(Exception):
    """Raised to RQ so the job is retried; the message is already classified and logged."""


def job_timeout() -> int:
    """A large first sync may take many minutes; a stuck read is bounded by the connection timeout."""
    return int(current_app.config.get("SYNC_JOB_TIMEOUT", 3600))


# -- starting ----------------------------------------------------------------------------------


def active_job(account_id: int) -> Job | None:
    """The mailbox's sync job that is queued or running, if any."""
    job_id = get_redis().get(JOB_KEY.format(account_id))
    if not job_id:
        return None
    try:
        job = Job.fetch(job_id.decode(), connection=get_redis())
    except NoSuchJobError:
        return None
    if job.meta.get("kind") == BATCH_KIND:
        return None  # a person's "Sync now" goes ahead; the batch skips a mailbox locked by it
    status = job.get_status(refresh=True)
    status = getattr(status, "value", status)
    if status == "started" and abandoned_jobs.recover(job):
        return None  # its worker died: RQ failed it and on_sync_failure released the lock
    if status == "started" and not _alive(job, account_id):
        return None  # its worker died (killed, machine lost): the lock it held has expired
    if status in _ACTIVE:
        return job
    if status == "failed" and job.retries_left:
        return job  # waiting for its retry
    return None


def _alive(job: Job, account_id: int) -> bool:
    """A started sync holds the mailbox lock, extended while it runs; no lock after a grace period = dead."""
    if mailbox_lock.held(account_id):
        return True
    started = job.started_at
    if started is None:
        return True
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return (datetime.now(UTC) - started).total_seconds() < START_GRACE


def check_syncable(account: Account) -> None:
    """Refuse clearly (422 naming ``active``/``service_id``) when the mailbox cannot be synced."""
    if not account.active:
        raise Invalid({"active": "The mailbox is disabled; enable it to sync."}, "The mailbox is disabled.")
    if account.service_removed:
        raise Invalid(
            {"service_id": "The mailbox's mail service was removed; choose another one."},
            "The mailbox's mail service was removed.",
        )
    if account.state == AccountState.NEEDS_SIGN_IN.value:
        raise Invalid(
            {"auth_method": "Sign in again with the provider first (Sign in again on My mailboxes)."},
            "The mailbox needs to sign in again.",
        )


def start(account: Account, owner_id: int | None = None, lane: str = INTERACTIVE) -> Job:
    """Enqueue a sync of ``account`` on ``lane`` (422 when it cannot sync; :class:`SyncRunning`
    when one is queued or running).  A person's "Sync now" and push take the interactive lane,
    cron the periodic one.  The job's meta carries owner, kind and mailbox so the job status
    endpoints show it to its owner (or an administrator) only.
    """
    check_syncable(account)
    with reachable():
        return _enqueue(account, owner_id, lane)


def _enqueue(account: Account, owner_id: int | None, lane: str) -> Job:
    redis = get_redis()
    with redis.lock(f"mailroom:sync:enqueue:{account.id}", timeout=10, blocking_timeout=10):
        running = active_job(account.id)
        if running is not None:
            raise SyncRunning(running.id)
        options = job_options(owner_id or account.user_id, account.id)
        job = enqueue(sync_account, account.id, lane=lane, job_timeout=options.pop("timeout"), **options)
        redis.set(JOB_KEY.format(account.id), job.id, ex=job_key_ttl())
    return job


def sync_after_send(account_id: int, _sender_id: int | None = None) -> dict:
    """RQ job (webapp.jobs.send enqueues it after appending a Sent copy): start the mailbox's sync
    so the console's Sent view shows the copy now.  A sync queued or running already will bring
    it; a mailbox that cannot sync any more is left alone.  The sync is the mailbox owner's, as
    their "Sync now" would be, not the sender's (who may send through a shared mailbox): its
    status is theirs to see.  ``_sender_id`` is ignored (jobs queued before this carried it)."""
    account = db.session.get(Account, account_id)
    if account is None:
        return {"ok": False, "skipped": True, "error": N_("The mailbox no longer exists.")}
    try:
        job = start(account)
    except (Conflict, Invalid) as exc:
        return {"ok": False, "skipped": True, "error": exc.message}
    return {"ok": True, "job_id": job.id}


def sync_due_accounts() -> dict:
    """Cron: enqueue, on the periodic lane, the sync of every mailbox whose due time has come.

    One indexed query picks them (:func:`webapp.jobs.due.due_query`: active, not needing a person
    — removed service, authentication error, OAuth2 sign-in —, due); Redis is asked about them
    and the jobs are enqueued in pipelines of :data:`ENQUEUE_BATCH` (``Queue.enqueue_many``), not
    one lock round trip per mailbox; each gets its next due time, spread over the interval.
    A mailbox whose sync is already queued or running is reported, not enqueued again.
    """
    interval = timedelta(minutes=int(settings_store.get("sync_interval_minutes")))
    now = utcnow()
    rows = db.session.execute(due.due_query(now, interval)).all()
    enqueued, busy, jobs = [], [], 0
    for chunk in batched(rows, ENQUEUE_BATCH):
        free, taken = _split_busy(chunk)
        jobs += _enqueue_periodic(free)
        enqueued += [row.id for row in free]
        busy += [row.id for row in taken]
    due.schedule_next(((row.id, row.push) for row in rows), now, interval)
    db.session.commit()
    return {"enqueued": enqueued, "already_running": busy, "jobs": jobs}


def batched(rows: list, size: int) -> Iterator[list]:
    """``rows`` in lists of ``size`` (``itertools.batched`` arrives with Python 3.12)."""
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def _split_busy(rows: list) -> tuple[list, list]:
    """``(free, busy)``: busy when the mailbox's last sync job is still queued, running or waiting
    for a retry (two round trips for the whole chunk: MGET and a pipelined fetch)."""
    redis = get_redis()
    job_ids = [
        value.decode() if value else None for value in redis.mget([JOB_KEY.format(r.id) for r in rows])
    ]
    jobs = {
        job.id: job for job in Job.fetch_many([i for i in job_ids if i], connection=redis) if job is not None
    }
    free, busy = [], []
    for row, job_id in zip(rows, job_ids, strict=True):
        job = jobs.get(job_id) if job_id else None
        (busy if job is not None and _pending(job) else free).append(row)
    return free, busy


def _pending(job: Job) -> bool:
    status = getattr(job.get_status(refresh=False), "value", None)
    return status in _ACTIVE or (status == "failed" and bool(job.retries_left))


def _enqueue_periodic(rows: list) -> int:
    """Enqueue ``rows`` on the periodic lane in one pipeline: IMAP mailboxes in batch jobs of up to
    :func:`batch_size` per server (:mod:`webapp.jobs.batch`), POP3 ones one job each; each
    mailbox's job key names its job (so the next run reports it busy).  Returns the jobs made."""
    if not rows:
        return 0
    groups = _batches(rows)
    datas = [_prepare(group) for group in groups]
    jobs = enqueue_many(datas, lane=PERIODIC)
    with get_redis().pipeline(transaction=False) as pipe:
        for job, group in zip(jobs, groups, strict=True):
            for row in group:
                pipe.set(JOB_KEY.format(row.id), job.id, ex=job_key_ttl())
        pipe.execute()
    return len(jobs)


def batch_size() -> int:
    """Mailboxes per periodic batch job (config ``SYNC_BATCH_SIZE``, ``MAILROOM_SYNC_BATCH_SIZE``;
    1 = one job per mailbox)."""
    return max(1, int(current_app.config.get("SYNC_BATCH_SIZE") or BATCH_SIZE))


def _server_key(row) -> tuple:
    """Mailboxes of one service, or of one typed IMAP host, share a server (and its connection limit)."""
    if row.manual:
        return ("host", (row.imap_host or "").lower())
    return ("service", row.service_id)


def _batches(rows: list) -> list[list]:
    """POP3 mailboxes alone; IMAP ones grouped by server, in lists of at most :func:`batch_size`."""
    size = batch_size()
    groups: list[list] = []
    by_server: dict[tuple, list] = {}
    for row in rows:
        if row.incoming_protocol == "pop3" or size == 1:
            groups.append([row])
        else:
            by_server.setdefault(_server_key(row), []).append(row)
    for members in by_server.values():
        groups += list(batched(members, size))
    return groups


def _prepare(group: list):
    if len(group) == 1:
        row = group[0]
        return Queue.prepare_data(sync_account, args=(row.id,), **job_options(row.user_id, row.id))
    ids = [row.id for row in group]
    return Queue.prepare_data(
        BATCH_JOB,
        args=(ids,),
        timeout=job_timeout(),
        result_ttl=3600,
        failure_ttl=24 * 3600,
        on_failure=Callback(BATCH_FAILURE_CALLBACK),
        meta={"owner_id": None, "kind": BATCH_KIND, "account_ids": ids},
    )


def retry_intervals() -> list[int]:
    """Seconds between RQ's retries of a transient sync failure (a single job's and a batch's)."""
    return list(current_app.config.get("SYNC_RETRY_INTERVALS", RETRY_INTERVALS))


def job_key_ttl() -> int:
    """Seconds a mailbox's job key lives: long enough to outlast its job and every retry."""
    return job_timeout() * (len(retry_intervals()) + 2) + 3600


def job_options(owner_id: int, account_id: int) -> dict:
    """RQ options of every sync job (``prepare_data``'s names: ``timeout`` is the job's time limit)."""
    intervals = retry_intervals()
    return dict(
        timeout=job_timeout(),
        result_ttl=3600,
        failure_ttl=24 * 3600,
        retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
        on_failure=Callback(on_sync_failure),
        meta={"owner_id": owner_id, "kind": "sync", "account_id": account_id},
    )


# -- the job -----------------------------------------------------------------------------------


def on_sync_failure(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback of a sync job; acts only when RQ found the job abandoned.

    The job is not retried by RQ (see the module docstring), the mailbox's lock is released if
    the dead job still holds it, and the failure is recorded like any other sync failure.
    """
    if exc_type is not AbandonedJobError:
        return  # the job itself recorded its outcome
    job.retries_left = 0
    job.meta["error"] = f"{abandoned_jobs.SENTENCE} {abandoned_jobs.SYNC_RESUMES}"  # each translated when shown
    job.save_meta()
    account_id = job.meta.get("account_id")
    mailbox_lock.release_held(connection, job.id, [account_id])
    account = db.session.get(Account, account_id) if account_id is not None else None
    if account is not None:
        _failed(account, abandoned_jobs.SENTENCE, None, retry=False)


class _Progress:
    """Writes ``{"folder", "folders", "folder_name", "done", "total"}`` to the job's meta, at most ~4×/s."""

    def __init__(self) -> None:
        self.job = get_current_job()
        self._last = 0.0

    def __call__(self, folder: int, folders: int, name: str, done: int, total: int) -> None:
        if self.job is None:
            return
        now = time.monotonic()
        if now - self._last < 0.25 and done < total:
            return
        self._last = now
        self.job.meta["progress"] = {
            "folder": folder,
            "folders": folders,
            "folder_name": name,
            "done": done,
            "total": total,
        }
        self.job.save_meta()


def sync_account(account_id: int) -> dict:
    """RQ job: sync one mailbox (ids only).  See the module docstring."""
    account = db.session.get(Account, account_id)
    if account is None:
        return {"ok": False, "error": "The mailbox no longer exists."}
    if not account.active:
        return {"ok": False, "skipped": True, "error": "The mailbox is disabled."}
    if account.user.is_disabled:  # a job queued before its owner was disabled (webapp/users.py)
        return {"ok": False, "skipped": True, "error": N_("The mailbox's owner is disabled.")}
    if account.service_removed:
        return {"ok": False, "skipped": True, "error": account.last_error or N_("The mail service was removed.")}
    lock = mailbox_lock.MailboxLocks()
    if not lock.take([account_id]):
        return {
            "ok": False,
            "status": "already running",
            "error": N_("A sync of this mailbox is already running."),
        }
    try:
        if account.incoming_protocol == "pop3":
            return _pop3(account)
        return _imap(account)
    finally:
        lock.release()


def _imap(account: Account) -> dict:
    started = time.monotonic()
    progress = _Progress()
    client = None
    try:
        # In RQ, a sync that finds no free connection slot waits by re-enqueueing (backoff), not here.
        with open_client(account, "imap", wait=0 if backoff.may_wait() else None) as client:
            stats, automation = sync_on(account, client, progress)
    except MailboxUnavailable as exc:
        db.session.rollback()
        return _failed(account, str(exc), None, retry=False)
    except MailError as exc:
        db.session.rollback()
        if exc.error_class is ErrorClass.THROTTLED and backoff.may_wait():
            return _wait(account, exc)
        return _failed(account, f"IMAP: {exc.message}", exc, retry=is_transient(exc))
    result = record_synced(account, stats, time.monotonic() - started)
    if automation:
        result["automation"] = automation
    return result


def sync_on(account: Account, client, progress=None) -> tuple:
    """``(stats, automation)``: the mailbox's folders synced on its open, logged-in ``client``
    (listed first when it has none), then filters and out-of-office on the new mail.

    Raises :class:`MailError` (a broken connection classified like any other failure).  The
    batch job (:mod:`webapp.jobs.batch`) calls it on the connection its check opened.
    """
    folders = _folders_to_sync(account, client)
    pairs = [(f.id, f.name) for f in folders]
    try:
        stats = sync_folders(
            client.imap, SqlSyncStore(account.id), pairs, progress=progress, account_id=account.id
        )
    except MailError:
        raise
    except Exception as exc:  # the connection broke mid-sync: classify it like any other failure
        raise client.classify(exc, "sync") from exc
    return stats, _automation(account, client, stats)


def is_transient(error: MailError) -> bool:
    """Retried later: the transient classes, and a protocol error in the middle of a sync."""
    return error.error_class in TRANSIENT or (
        error.step == "sync" and error.error_class is ErrorClass.PROTOCOL
    )


def log_waiting(account: Account | None, error: MailError, seconds: float) -> None:
    """The log line of a sync put off because the server asked us to slow down (a single sync's
    or a batch's); none when only a connection slot was missing (that is ours, not the server's)."""
    if isinstance(error, NoFreeConnection):
        return
    email_log.record(
        LogSource.SYNC,
        LogLevel.INFO,
        WORDS["waiting"].format(reason=error.raw[:200], seconds=f"{seconds:.0f}"),
        account=account,
        created_by="system",
        commit=True,
    )


def _wait(account: Account, error: MailError) -> dict:
    """No free connection to the server, or the server throttled us: come back later
    (:mod:`webapp.jobs.backoff`); the mailbox keeps its state, "Sync now" names the waiting job."""
    later, seconds = backoff.wait_again(error)
    get_redis().set(JOB_KEY.format(account.id), later.id, ex=job_timeout() * 3 + 3600)
    log_waiting(account, error, seconds)
    return {
        "ok": False,
        "status": "waiting",
        "retry_in": round(seconds, 1),
        "job_id": later.id,
        "message": error.message,
    }


def _automation(account: Account, client, stats) -> dict | None:
    """Filters and out-of-office replies on the new mail of this run, on the same connection.

    The sync itself is committed already; a failure here is logged and does not fail the sync.
    """
    new = stats.new_uids
    if not new:
        return None
    try:
        return after_sync(account, client, new)
    except Exception as exc:
        db.session.rollback()
        email_log.record(
            LogSource.INCOMING,
            LogLevel.ERROR,
            WORDS["automation_failed"].format(error=f"{exc.__class__.__name__}: {exc}"[:1900]),
            account=account,
            created_by="system",
            commit=True,
        )
        return {"error": str(exc)[:500]}


def _folders_to_sync(account: Account, client) -> list[Folder]:
    if not Folder.query.filter_by(account_id=account.id).count():
        refresh_folders(account, client)
    return (
        Folder.query.filter_by(account_id=account.id, sync=True)
        .filter(Folder.exists_on_server.is_(True))
        .order_by(Folder.id)
        .all()
    )


def record_synced(account: Account, stats, seconds: float) -> dict:
    """Record a finished sync (a single job's or a batch's): folder errors, log line, state; commits."""
    by_id = {f.id: f for f in Folder.query.filter_by(account_id=account.id)}
    for result in stats.folders:
        folder = by_id.get(result.folder_id)
        if folder is not None:
            _record_folder_outcome(folder, result)
    errors = stats.errors
    summary = stats.as_dict()
    changed = stats.inserted or stats.updated or stats.deleted
    message = WORDS["synced_failures" if errors else "synced"].format(
        folders=len(stats.folders),
        new=stats.inserted,
        updated=stats.updated,
        deleted=stats.deleted,
        fetches=stats.commands.get("FETCH", 0),
        seconds=f"{seconds:.1f}",
        failures=" ".join(e.error for e in errors),
    )
    level = LogLevel.WARNING if errors else (LogLevel.INFO if changed else LogLevel.DEBUG)
    record_success(
        account,
        Check.SYNC,
        lines=[Line(LogSource.SYNC, level, message, summary)],
        sync_error="; ".join(e.error for e in errors)[:2000] if errors else None,
    )
    return {"ok": not errors, "protocol": "imap", "message": message, **summary}


def _record_folder_outcome(folder: Folder, result) -> None:
    """The folder's last error as its sentence and hint; a folder the server says is gone is
    marked so (the folder page then offers to remove it, and the next syncs skip it)."""
    folder.last_error = f"{result.error} {result.hint}" if result.error and result.hint else result.error
    if result.error_class == ErrorClass.FOLDER_MISSING.value:
        folder.exists_on_server = False


def _failed(account: Account, message: str, error: MailError | None, *, retry: bool) -> dict:
    auth = error is not None and error.error_class in AUTH_CLASSES
    text = failed_line(message, will_retry(retry))
    details = {"error": error.as_dict()} if error is not None else None
    line = Line(LogSource.SYNC, LogLevel.ERROR, text, details)
    record_failure(account, Check.SYNC, message, auth=auth, lines=[line], reached=error is not None)
    if retry:
        raise Transient(message)
    return {"ok": False, "error": message, "class": error.error_class.value if error else None}


def failed_line(message: str, retried: bool) -> str:
    """The email log's line of a failed sync (a single sync's or a batch's)."""
    return WORDS["failed_retried" if retried else "failed"].format(message=message)


def _pop3(account: Account) -> dict:
    """A POP3 mailbox's download (webapp.jobs.pop3 records its outcome); transient failures are retried."""
    progress = _Progress()
    try:
        counts = download(
            account,
            progress=lambda done, total: progress(1, 1, "INBOX", done, total),
            defer_busy=backoff.may_wait(),
        )
    except MailboxUnavailable as exc:
        return {"ok": False, "error": str(exc)}
    except MailError as exc:
        if exc.error_class is ErrorClass.THROTTLED and backoff.may_wait():
            return _wait(account, exc)  # no free slot, or the server said slow down: not a failure
        if exc.error_class in TRANSIENT or exc.error_class is ErrorClass.PROTOCOL:
            raise Transient(account.last_sync_error) from None
        return {"ok": False, "error": account.last_sync_error, "class": exc.error_class.value}
    return {"ok": True, "message": result_sentence(counts, account.pop3_leave_on_server), **counts}
