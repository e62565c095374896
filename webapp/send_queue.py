"""Getting an outgoing message onto the queue exactly once: submit, Idempotency-Key, sweeper.

The row and its job must not diverge (docs/sending.md, "When the queue is down"):

* :func:`submit` commits the row as ``queued`` (or ``scheduled``) and then enqueues its job.
  If the queue cannot be reached, the row is deleted again and
  :class:`~webapp.errors.QueueUnavailable` (503) is raised: nothing was accepted, so a client
  (or a person pressing Send again) may simply retry without making a duplicate.
* :func:`webapp.jobs.send.sweep_outgoing` (cron, every minute) covers what :func:`submit` cannot:
  a web process killed between the commit and the enqueue, a job lost with Redis's data, a job
  that ended without updating its row.  Rows older than the grace period whose job is missing or
  over get a new job; the send job itself never sends twice (``smtp_accepted_at``).
* ``Idempotency-Key``: the key and a hash of the request body are stored on the row; a unique
  constraint on (user, key) decides between concurrent requests.  The same key with the same
  body answers the first message again; with another body it is a 422.
"""

from __future__ import annotations

import hashlib
import json
import time

from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from . import sending
from .errors import Conflict, Invalid, Malformed, QueueUnavailable
from .extensions import db
from .jobs import send as send_job
from .jobs.send import on_send_failure, sweep_outgoing  # queued jobs and callbacks name these paths
from .models import OutgoingMessage, OutgoingState, User

__all__ = ["KeyInFlight", "idempotency_key", "on_send_failure", "request_hash", "submit", "sweep_outgoing"]

KEY_HEADER = "Idempotency-Key"
#: Seconds a request waits for a concurrent request with the same key to finish enqueueing.
SETTLE_WAIT = 3.0


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
            _("The %(KEY_HEADER)s header must be 1 to 255 printable ASCII characters.", KEY_HEADER=KEY_HEADER),
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
            {KEY_HEADER: _("was already used with a different request body")},
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
        send_job.start(row)
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
