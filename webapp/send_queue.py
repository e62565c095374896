"""Getting an outgoing message onto the queue exactly once: submit, Idempotency-Key, sweeper.

The row and its job must not diverge (docs/sending.md, "When the queue is down"):

* :func:`submit` commits the row as ``queued`` (or ``scheduled``) and then enqueues its job.
  If the queue cannot be reached, the row is deleted again and
  :class:`~webapp.errors.QueueUnavailable` (503) is raised: nothing was accepted, so a client
  (or a person pressing Send again) may simply retry without making a duplicate.
* :func:`sweep_outgoing` (cron, every minute) covers what :func:`submit` cannot: a web process
  killed between the commit and the enqueue, a job lost with Redis's data, a job that ended
  without updating its row.  Rows older than the grace period whose job is missing or over get
  a new job; the send job itself never sends twice (``smtp_accepted_at``, webapp.send_jobs).
* ``Idempotency-Key``: the key and a hash of the request body are stored on the row; a unique
  constraint on (user, key) decides between concurrent requests.  The same key with the same
  body answers the first message again; with another body it is a 422.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta

from flask import current_app
from rq import Callback
from rq.exceptions import AbandonedJobError, NoSuchJobError
from rq.job import Job
from sqlalchemy.exc import IntegrityError

from . import abandoned_jobs, sending
from .errors import Conflict, Invalid, Malformed, QueueUnavailable
from .extensions import db
from .models import OutgoingMessage, OutgoingState, User, utcnow
from .queue import get_redis, reachable

KEY_HEADER = "Idempotency-Key"
#: Seconds a queued message may wait for its job before the sweeper steps in (``SEND_SWEEP_GRACE``).
SWEEP_GRACE = 120
#: Seconds a request waits for a concurrent request with the same key to finish enqueueing.
SETTLE_WAIT = 3.0
_LIVE = {"queued", "deferred", "scheduled", "started"}
FAILURE_CALLBACK = Callback("webapp.send_queue.on_send_failure")


class KeyInFlight(Conflict):
    """409: a request with the same Idempotency-Key is still being stored and enqueued."""

    headers = {"Retry-After": "1"}

    def __init__(self) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still being processed; retry in a moment.",
            {KEY_HEADER: "in use by a request still being processed"},
        )


# -- Idempotency-Key ------------------------------------------------------------------------------


def idempotency_key(headers) -> str | None:
    """The request's Idempotency-Key (1..255 printable ASCII characters), or None; else 400."""
    raw = headers.get(KEY_HEADER)
    if raw is None:
        return None
    if not 1 <= len(raw) <= 255 or any(not 0x20 <= ord(ch) <= 0x7E for ch in raw):
        raise Malformed(
            f"The {KEY_HEADER} header must be 1 to 255 printable ASCII characters.",
            {KEY_HEADER: "must be 1 to 255 printable ASCII characters"},
        )
    return raw


def request_hash(body: dict) -> str:
    """SHA-256 of the body as canonical JSON: key order and spacing do not make it "different"."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _earlier(user: User, key: str, digest: str) -> OutgoingMessage | None:
    row = OutgoingMessage.query.filter_by(user_id=user.id, idempotency_key=key).one_or_none()
    if row is not None and row.request_hash != digest:
        raise Invalid(
            {KEY_HEADER: "was already used with a different request body"},
            f"This {KEY_HEADER} was already used for a different message; use a new key for a new message.",
        )
    return row


def _settled(user: User, key: str, digest: str) -> OutgoingMessage | None:
    """The earlier row once its request finished enqueueing (or vanished after a 503)."""
    deadline = time.monotonic() + SETTLE_WAIT
    while True:
        db.session.expire_all()
        row = _earlier(user, key, digest)
        if row is None or row.job_id or row.state != OutgoingState.QUEUED.value:
            return row
        if time.monotonic() > deadline:
            raise KeyInFlight()
        time.sleep(0.05)


# -- submitting -----------------------------------------------------------------------------------


def submit(user: User, fields: dict, origin: str, key: str | None = None) -> tuple[OutgoingMessage, bool]:
    """Store and enqueue a message; ``(row, False)`` when ``key`` replays an earlier request.

    Raises :class:`QueueUnavailable` (503) with the row removed again when Redis is away.
    """
    digest = request_hash(fields) if key else ""
    if key:
        earlier = _settled(user, key, digest)
        if earlier is not None:
            return earlier, False
    try:
        row = sending.create_outgoing(user, fields, origin, idempotency=(key, digest) if key else None)
    except IntegrityError:
        db.session.rollback()
        earlier = _settled(user, key, digest) if key else None
        if earlier is None:
            raise
        return earlier, False  # a concurrent request with the same key won
    try:
        sending.enqueue_send(row)
    except QueueUnavailable:
        _withdraw(row.id)
        raise
    return row, True


def _withdraw(outgoing_id: int) -> None:
    """Delete a row whose job could not be enqueued: the 503 then means "nothing happened"."""
    db.session.rollback()
    row = db.session.get(OutgoingMessage, outgoing_id)
    if row is not None and row.state in (OutgoingState.QUEUED.value, OutgoingState.SCHEDULED.value):
        db.session.delete(row)
        db.session.commit()


def on_send_failure(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback of a send job; acts only when RQ found the job abandoned.

    With retries left RQ runs the job again (it never sends twice once the server accepted the
    message).  After the last one the row says why instead of staying ``sending`` for ever.
    """
    if exc_type is not AbandonedJobError or job.retries_left:
        return
    row = db.session.get(OutgoingMessage, job.meta.get("outgoing_id"))
    if row is None or row.job_id != job.id or row.state in (OutgoingState.SENT.value, "cancelled"):
        return
    if row.smtp_accepted_at is not None:
        row.state, row.sent_at = OutgoingState.SENT.value, utcnow()
        row.error = "Sent, but the copy in Sent could not be saved: " + abandoned_jobs.SENTENCE
    else:
        row.state = OutgoingState.FAILED.value
        row.error = abandoned_jobs.SENTENCE + " The message may not have been sent."
    db.session.commit()


# -- the sweeper ----------------------------------------------------------------------------------


def _job_lost(row: OutgoingMessage) -> bool:
    """True when no job will ever send this row: none recorded, gone from Redis, or over."""
    if not row.job_id:
        return True
    try:
        job = Job.fetch(row.job_id, connection=get_redis())
    except NoSuchJobError:
        return True
    abandoned_jobs.recover(job)
    status = getattr(job.get_status(refresh=True), "value", None)
    return status not in _LIVE


def _resend(outgoing_id: int) -> str | None:
    """Enqueue a new job for a lost row (under the message's lock); what was done, or None."""
    try:
        with sending.message_lock(outgoing_id, wait=0.5):
            row = db.session.get(OutgoingMessage, outgoing_id)
            db.session.refresh(row)
            if row.state not in (OutgoingState.QUEUED.value, OutgoingState.SCHEDULED.value):
                return None
            if not _job_lost(row):
                return None
            sending.enqueue_send(row)
            return "enqueued"
    except Conflict:
        return None  # being sent, cancelled or edited right now


def sweep_outgoing() -> dict:
    """Cron: give a new job to every queued or scheduled message whose job is lost (see above)."""
    grace = int(current_app.config.get("SEND_SWEEP_GRACE", SWEEP_GRACE))
    cutoff = utcnow() - timedelta(seconds=grace)
    ids = [
        row_id
        for (row_id,) in db.session.query(OutgoingMessage.id)
        .filter(
            OutgoingMessage.state.in_([OutgoingState.QUEUED.value, OutgoingState.SCHEDULED.value]),
            OutgoingMessage.updated_at < cutoff,
        )
        .order_by(OutgoingMessage.id)
        .limit(1000)
    ]
    db.session.rollback()
    enqueued = []
    with reachable():
        for outgoing_id in ids:
            if _resend(outgoing_id):
                enqueued.append(outgoing_id)
    return {"checked": len(ids), "enqueued": enqueued}
