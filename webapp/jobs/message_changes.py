"""Write a person's changes (read, flag, move) back to the IMAP server, on the interactive lane.

:func:`start` records the changes (the rows change at once, :mod:`webapp.message_changes`) and
enqueues one :func:`write_back` job per server folder, action and target, so a selection costs
one connection and one ``UID STORE`` / ``UID MOVE`` with a UID set per folder
(:mod:`connectors.writeback`).  The job settles the changes, or fails them: the rows are put
back as the server has them and the reason (the diagnosis's sentence) stays as a notice.
A failure is not retried by itself: the person sees the message back as it was and may try again.

:func:`record_mark` is the send job's step once a reply or forward was accepted by the SMTP
server: the original gets ``\\Answered`` / ``$Forwarded`` through the same path (one more action),
recorded in the same transaction as ``smtp_accepted_at`` so a worker killed right after loses
nothing; :func:`enqueue_marks` then starts the write-back, and :func:`sweep_marks` (cron) starts
it again for any pending change left without a job, or whose job was lost (Redis flushed, the job
expired, or it ended without settling the change).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from uuid import uuid4

from rq import Callback
from rq.exceptions import AbandonedJobError
from rq.job import Job
from sqlalchemy import select

from connectors import writeback
from connectors.errors import MailError
from connectors.i18n import N_

from .. import message_changes as changes
from ..errors import MailboxUnavailable, QueueUnavailable
from ..extensions import db
from ..models import Account, Folder, Message, MessageChange, OutgoingMessage, User, utcnow
from ..queue import enqueue, get_redis
from . import abandoned as abandoned_jobs
from .session import open_client, timeout

#: Connect, log in, SELECT, one command per 500 UIDs; bounded by the connection timeout plus slack.
_JOB_SLACK = 60
log = logging.getLogger(__name__)

#: The notice of a change the job could not write (stored in English, translated when shown).
INTERNAL_ERROR = N_("The change could not be written to the server (an internal error); try again.")


def start(
    user: User,
    messages: list[Message],
    action: str,
    targets: dict[int, Folder],
    *,
    skip_moving: bool = False,
) -> list[dict]:
    """Apply ``action`` to ``messages`` now and enqueue the write-back, one job per group:
    ``[{"job", "action", "messages": [message ids]}]``.

    Without the queue (Redis down) nothing stays pending: the rows are put back and
    :class:`QueueUnavailable` propagates (a 503 with Retry-After).
    """
    recorded = changes.record(user, messages, action, targets, skip_moving=skip_moving)
    change_ids = [c.id for c in recorded]
    db.session.commit()
    try:
        return _enqueue(change_ids)
    except QueueUnavailable as exc:
        db.session.rollback()
        changes.fail([c for c in changes.pending(change_ids) if c.job_id is None], str(exc))
        db.session.commit()
        raise


def _enqueue(change_ids: list[int]) -> list[dict]:
    """One write-back job per group of these pending changes, its id noted on them (committed).

    Raises :class:`QueueUnavailable` when Redis is away; the changes not enqueued stay pending.
    """
    # Plain values first: a commit expires the objects (a page of 200 is not 400 reloads).
    plan = [
        (g[0].user_id, g[0].account_id, g[0].action, [c.id for c in g], [c.message_pk for c in g])
        for g in changes.groups(changes.pending(change_ids))
    ]
    started = []
    for owner_id, account_id, kind, ids, message_ids in plan:
        job = enqueue(
            write_back,
            ids,
            job_timeout=2 * timeout() + _JOB_SLACK,
            result_ttl=3600,
            failure_ttl=24 * 3600,
            on_failure=FAILURE_CALLBACK,  # a worker killed mid-job: the rows go back
            meta={"owner_id": owner_id, "kind": "message_change", "account_id": account_id},
        )
        changes.note_job(ids, job.id)
        db.session.commit()
        started.append({"job": job, "action": kind, "messages": message_ids})
    return started


def mark_original(outgoing: OutgoingMessage) -> list[int]:
    """A reply or forward was sent: its original shows ``\\Answered`` / ``$Forwarded`` now and
    the write-back job sets it on the server; answers the ids of the originals found.

    :func:`record_mark` and :func:`enqueue_marks` in one go (committed); the send job calls them
    apart, so the mark is committed with ``smtp_accepted_at``.
    """
    outgoing_id = outgoing.id
    try:
        found = _originals(outgoing)
        change_ids = record_mark(outgoing)
        db.session.commit()
    except Exception:  # the send succeeded; the original's flag must not undo that
        db.session.rollback()
        log.warning("Could not mark the original of outgoing message %s.", outgoing_id, exc_info=True)
        return []
    enqueue_marks(change_ids)
    return found


def _originals(outgoing: OutgoingMessage) -> list[int]:
    if outgoing.origin not in changes.SENT_ACTIONS:
        return []
    found = changes.originals(
        outgoing.user_id, outgoing.origin, outgoing.in_reply_to, outgoing.references_header
    )
    return [m.id for m in found]


def record_mark(outgoing: OutgoingMessage) -> list[int]:
    """Record the original's mark in the session, NOT committed; answers the pending change ids.

    The send job calls it after DATA was answered 250 and commits it with ``smtp_accepted_at``:
    a worker killed right after leaves the mark pending in the database, and
    :func:`sweep_marks` enqueues its write-back later.  A POP3 original changes at once (no
    change row).  Nothing for other origins, an original gone meanwhile, already marked, or
    being moved.  Raises only what the database raises (the caller keeps the send whatever).
    """
    action = changes.SENT_ACTIONS.get(outgoing.origin)
    if action is None:
        return []
    user = db.session.get(User, outgoing.user_id)
    found = changes.originals(
        outgoing.user_id, outgoing.origin, outgoing.in_reply_to, outgoing.references_header
    )
    if user is None or not found:
        return []
    return [c.id for c in changes.record(user, found, action, {}, skip_moving=True)]


def enqueue_marks(change_ids: list[int]) -> None:
    """Enqueue the write-back of recorded marks; never raises (the message is sent whatever).

    Without Redis the marks stay pending and :func:`sweep_marks` enqueues them later.
    """
    if not change_ids:
        return
    try:
        _enqueue(change_ids)
    except Exception:
        db.session.rollback()
        log.warning("The write-back of marks %s waits for the sweeper.", change_ids, exc_info=True)


#: Seconds a pending change may wait without a job before :func:`sweep_marks` enqueues one.
SWEEP_GRACE = 120


def sweep_marks(grace: int = SWEEP_GRACE) -> list[int]:
    """Cron (with the outgoing sweeper): enqueue the write-back of pending changes older than
    ``grace`` seconds whose job is missing or lost.

    Missing: a worker killed between the commit of a sent reply (with its original's mark) and the
    enqueue, or a web process killed between a change's commit and its enqueue.  Lost: the job is
    gone from Redis (flushed, restarted without persistence, expired) or over (finished, failed,
    stopped) without the change settled or failed: RQ runs :func:`on_write_back_failure` before it
    marks a job failed, and the job commits before it finishes.  Each change is claimed in the
    database first (:func:`webapp.message_changes.claim`), so two sweepers never enqueue one change
    twice (a young claim is no lost job: :func:`_claim_lost`) and a change settled meanwhile is
    left alone; a late write-back is harmless anyway (a flag
    stored twice is the same flag).  Answers the change ids enqueued.
    """
    ids = _claim_lost(grace)
    if ids:
        _enqueue(ids)  # a failure here leaves the claim, a job Redis never had: a later sweep retries
    return sorted(ids)


#: A sweeper's claim on a change between its claim and its enqueue: ``sweep-<unix time>-<random>``
#: (no colon: RQ reads "a:b" as job a's execution b).
_CLAIM = "sweep-"


def _claim_lost(grace: int) -> list[int]:
    """Claim (committed) the pending changes older than ``grace`` whose job is missing or lost;
    answers their ids.  A claim is no RQ job, so another sweeper must not read it as lost while
    its sweeper may still be enqueuing: a claim younger than ``grace`` is left alone (after that,
    the sweeper died between claim and enqueue, or Redis refused it, and the change is taken)."""
    now = time.time()
    by_job = _old_pending(utcnow() - timedelta(seconds=grace))
    lost = _lost_jobs(
        [job_id for job_id in by_job if job_id is not None and not _young_claim(job_id, now - grace)]
    )
    token = f"{_CLAIM}{int(now)}-{uuid4().hex}"
    ids: list[int] = []
    for job_id, change_ids in by_job.items():
        if job_id is None or job_id in lost:
            ids += changes.claim(change_ids, job_id, token)
    db.session.commit()
    return ids


def _young_claim(job_id: str, since: float) -> bool:
    """Whether ``job_id`` is a sweeper's claim made after ``since`` (a Unix time)."""
    if not job_id.startswith(_CLAIM):
        return False
    stamp = job_id[len(_CLAIM) :].partition("-")[0]
    return stamp.isdigit() and int(stamp) > since


#: A write-back job's states in which it will still answer; any other, or none, and it is lost.
_LIVE = {"queued", "deferred", "scheduled", "started"}


def _old_pending(cutoff) -> dict[str | None, list[int]]:
    """Pending changes made before ``cutoff``, by the job they name (None: no job yet)."""
    rows = db.session.execute(
        select(MessageChange.id, MessageChange.job_id)
        .where(MessageChange.state == changes.PENDING, MessageChange.created_at <= cutoff)
        .order_by(MessageChange.id)
        .limit(5000)
    ).all()
    db.session.rollback()
    by_job: dict[str | None, list[int]] = {}
    for change_id, job_id in rows:
        by_job.setdefault(job_id, []).append(change_id)
    return by_job


def _lost_jobs(job_ids: list[str]) -> set[str]:
    """The ids among ``job_ids`` of jobs gone from Redis or no longer live (one pipelined fetch)."""
    jobs = Job.fetch_many(job_ids, connection=get_redis()) if job_ids else []
    return {
        job_id
        for job_id, job in zip(job_ids, jobs, strict=True)
        if job is None or getattr(job.get_status(refresh=False), "value", None) not in _LIVE
    }


def write_back(change_ids: list[int]) -> dict:
    """The job: send the group's changes to the server; ids in, a small dict out."""
    group = changes.pending(change_ids)
    if not group:
        return {"ok": True, "skipped": True, "messages": []}
    first = group[0]
    account = db.session.get(Account, first.account_id)
    folder = db.session.get(Folder, first.folder_id)
    target = db.session.get(Folder, first.target_folder_id) if first.target_folder_id else None
    ids = [c.message_pk for c in group]
    try:
        with open_client(account, "imap") as client:
            try:
                failed = _send(client.imap, group, folder, target)
            except MailError:
                raise
            except Exception as exc:  # the connection broke: classify it like any other failure
                raise client.classify(exc, first.action) from exc
    except MailboxUnavailable as exc:
        return _failed(group, str(exc), None)
    except MailError as exc:
        return _failed(group, exc.message, exc)
    db.session.commit()
    result = {"ok": not failed, "action": first.action, "messages": ids, "states": _states(ids)}
    if failed:
        result["error"] = failed[0].error
        result["failed"] = [c.message_pk for c in failed]
    return result


def _send(imap, group: list[MessageChange], folder: Folder, target: Folder | None) -> list[MessageChange]:
    uids = [c.uid for c in group]
    action = group[0].action
    if action == changes.MOVE:
        moved = writeback.move(
            imap,
            folder.name,
            uids,
            target.name,
            folder_label=folder.display_name,
            target_label=target.display_name,
        )
        changes.settle_move(group, moved.new_uids, moved.uidvalidity, target)
        return []
    flag, add = changes.FLAG_ACTIONS[action]
    answered = writeback.store_flags(imap, folder.name, uids, flag, add=add, folder_label=folder.display_name)
    return changes.settle_flags(group, answered, folder)


def _failed(group: list[MessageChange], sentence: str, error: MailError | None) -> dict:
    db.session.rollback()
    group = changes.pending([c.id for c in group])
    hint = f" {error.hint}" if error is not None and error.hint else ""
    changes.fail(group, sentence + hint)
    db.session.commit()
    ids = [c.message_pk for c in group]
    return {
        "ok": False,
        "action": group[0].action if group else None,
        "messages": ids,
        "failed": ids,
        "error": sentence + hint,
        "class": error.error_class.value if error is not None else None,
        "states": _states(ids),
    }


def _states(ids: list[int]) -> list[dict]:
    """Each message as the console shows it now (a row the move removed is absent)."""
    rows = Message.query.filter(Message.id.in_(ids)).all()
    return [{"id": m.id, "seen": m.seen, "flagged": m.flagged, "folder_id": m.folder_id} for m in rows]


def on_write_back_failure(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback (an unexpected error, or a worker killed mid-job): the changes must
    not stay pending for ever, so the rows are put back and the notice says why."""
    db.session.rollback()
    group = changes.pending(list(job.args[0]) if job.args else [])
    if not group:
        return
    if exc_type is AbandonedJobError:
        sentence = abandoned_jobs.SENTENCE
    else:
        sentence = INTERNAL_ERROR
    changes.fail(group, sentence)
    db.session.commit()


FAILURE_CALLBACK = Callback(on_write_back_failure)
