"""The send job: one outgoing message through its mailbox's SMTP server, then the Sent copy.

``send_outgoing(outgoing_id)`` runs in an RQ worker and receives the row id only.  It never
sends a message twice:

1. it takes the message's Redis lock (cancel and edit take it too, so a message cannot be
   cancelled halfway through its SMTP transaction);
2. a job that is no longer the row's job (the message was edited or cancelled) does nothing;
   a message whose owner is disabled is held, not sent (``webapp.send_holds``);
3. if ``smtp_accepted_at`` is set, an earlier run already handed the message to the SMTP
   server: this run only finishes the Sent copy;
4. otherwise it sends (MAIL FROM, RCPT TO for To, Cc and Bcc, DATA) and writes
   ``smtp_accepted_at`` and COMMITS the moment DATA is answered 250, before anything else
   can fail; in the same transaction a reply's original gets ``\\Answered``, a forward's
   ``$Forwarded`` (``webapp.jobs.message_changes.record_mark``: shown at once, written back by its
   job, enqueued right after the commit or, if the worker died first, by the sweeper);
5. the Sent copy — the same bytes, the same Message-ID, flagged ``\\Seen`` — is appended
   with IMAP APPEND to the folder holding the SENT role, unless the provider files it itself
   (the ``mailroom_server_saves_sent`` plugin hook; Gmail does).  No folder mapped to Sent yet
   (a mailbox used right after connecting): the folders are listed and the Sent folder found
   and mapped first (``webapp.jobs.folders.find_sent_folder``: SPECIAL-USE, provider hints, common
   names).  Still none: the message is sent, and the log says the copy was not kept.

Started by :func:`start` (now, or at ``send_at`` with RQ's scheduler) and :func:`reschedule`
(an edited scheduled message); :func:`sweep_outgoing` (cron) gives a new job to a message whose
job was lost, and :func:`on_send_failure` ends a message whose worker was killed.  The row's
state changes only along ``OUTGOING_TRANSITIONS`` (``OutgoingMessage.move_to``).

Failures are classified (connectors.errors) and stored on the row.  Transient ones (timeout,
refused, unreachable, throttled, server_error — a 454 to AUTH or a server hanging up during
sign-in —, a temporary 4xx answer) are raised again so RQ's ``Retry``
tries later; the row says ``failed`` only after the last attempt.  Authentication failures are
not retried.  Every send and failure is in the email log ("Email Logger", "SMTP Auth").
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from datetime import UTC, timedelta

from flask import current_app
from redis.exceptions import LockError
from rq import Callback, Retry, get_current_job
from rq.exceptions import AbandonedJobError, NoSuchJobError
from rq.job import Job
from sqlalchemy import update

from connectors import plugins
from connectors.errors import AUTH_CLASSES, TRANSIENT_CLASSES, ErrorClass, MailError
from connectors.i18n import N_
from connectors.outgoing import Attachment, Outgoing, build_message, envelope_recipients
from connectors.settings import Credentials

from .. import email_log, queue, send_holds
from ..errors import Conflict, Invalid, MailboxUnavailable, QueueUnavailable
from ..extensions import db
from ..models import (
    Account,
    Folder,
    FolderRole,
    LogLevel,
    LogSource,
    OutgoingAttachment,
    OutgoingMessage,
    OutgoingState,
    User,
    utcnow,
)
from ..sending import (
    LOCK_KEY,
    apply_fields,
    as_fields,
    clean,
    drop_job,
    job_timeout,
    message_lock,
    retry_intervals,
)
from ..signatures import signature_for
from . import abandoned as abandoned_jobs
from .folders import find_sent_folder
from .message_changes import enqueue_marks, record_mark, sweep_marks
from .outcome import Check, Line, record_failure, record_success, will_retry
from .session import open_client, server_settings

TRANSIENT = TRANSIENT_CLASSES
_AUTH = AUTH_CLASSES
log = logging.getLogger(__name__)
#: The job that syncs a mailbox after a send, by dotted path (webapp.jobs.sync imports this
#: module through automation's out-of-office replies).
SYNC_AFTER_SEND = "webapp.jobs.sync.sync_after_send"
#: Origins that get the sender's signature (automatic replies bring their own text).
SIGNED_ORIGINS = {"compose", "api"}

#: The email log's lines and the row's error texts (stored in English, translated when shown:
#: webapp.i18n).  Counts come after a label: a stored text cannot carry plural forms.
WORDS = {
    "sent": N_('Sent "{subject}" from {sender} ({message_id}); recipients: {count}.'),
    "copy_retry": N_('Saving the Sent copy of "{subject}" ({message_id}) failed: {error} It will be retried.'),
    "copy_failed": N_('Saving the Sent copy of "{subject}" ({message_id}) failed: {error}'),
    "send_retry": N_('Sending "{subject}" ({message_id}) failed: {error} It will be retried.'),
    "send_failed": N_('Sending "{subject}" ({message_id}) failed: {error}'),
    "copy_not_saved": N_("Sent, but the copy in Sent could not be saved: {error}"),
    "not_sent_maybe": N_("{error} The message may not have been sent."),
    "sent_found": N_(
        'No Sent folder was mapped for {email}: "{folder}" was found on the server ({how}) and is now '
        "the Sent folder."
    ),
    "by_name": N_("by its name"),
    "no_sent": N_(
        'No Sent folder is mapped for {email}: the copy of "{subject}" ({message_id}) was not kept. '
        "Choose a Sent folder on the mailbox's folder page."
    ),
    "mailbox_gone": N_("The mailbox this message was to be sent from no longer exists."),
}


class Transient(Exception):
    """Raised to RQ so the job is retried; the failure is already classified, stored and logged."""


def _signature(account: Account, user: User | None, address: str) -> tuple[str | None, str | None]:
    """The sender's signature (webapp.signatures), filled now for this sender and From address."""
    if user is None:
        return None, None
    return signature_for(account, user, address)


def to_outgoing(row: OutgoingMessage, account: Account, user: User | None) -> Outgoing:
    """The Flask-free description of the row; the Date is the time the SMTP server accepted it."""
    names = {
        "to": json.loads(row.to_addrs or "[]"),
        "cc": json.loads(row.cc_addrs or "[]"),
        "bcc": json.loads(row.bcc_addrs or "[]"),
    }
    sig_text, sig_html = (
        _signature(account, user, row.from_addr) if row.origin in SIGNED_ORIGINS else (None, None)
    )
    date = row.smtp_accepted_at or utcnow()
    return Outgoing(
        from_addr=row.from_addr,
        from_name=row.from_name or "",
        message_id=row.message_id,
        to=names["to"],
        cc=names["cc"],
        bcc=names["bcc"],
        subject=row.subject or "",
        text=row.text_body,
        html=row.html_body,
        in_reply_to=row.in_reply_to,
        references=row.references_header,
        extra_headers=json.loads(row.extra_headers) if row.extra_headers else {},
        attachments=[Attachment(a.filename, a.content_type, a.data) for a in row.attachments],
        date=date.replace(tzinfo=UTC),
        signature_text=sig_text,
        signature_html=sig_html,
    )


def send_outgoing(outgoing_id: int) -> dict:
    """RQ job: send one outgoing message (ids only); see the module docstring."""
    row = db.session.get(OutgoingMessage, outgoing_id)
    if row is None:
        return {"ok": False, "error": N_("The message no longer exists.")}
    job = get_current_job()
    if job is not None and row.job_id and job.id != row.job_id:
        return {"ok": False, "skipped": True, "state": row.state, "error": N_("Superseded by a newer job.")}
    lock = queue.get_redis().lock(LOCK_KEY.format(outgoing_id), timeout=job_timeout(), blocking_timeout=10)
    # The job's id as the lock's token: if this worker dies, on_send_failure frees exactly this lock.
    if not lock.acquire(token=job.id if job is not None else None):
        return {"ok": False, "status": "already running", "error": N_("This message is being sent already.")}
    try:
        db.session.refresh(row)
        return _run(row)
    finally:
        try:
            lock.release()
        except Exception:
            pass  # expired meanwhile


def _run(row: OutgoingMessage) -> dict:
    if row.state == OutgoingState.CANCELLED.value:
        return {"ok": False, "skipped": True, "state": row.state, "error": N_("The message was cancelled.")}
    if row.state == OutgoingState.SENT.value:
        return {"ok": True, "state": row.state, "skipped": True}
    account = db.session.get(Account, row.account_id) if row.account_id else None
    user = db.session.get(User, row.user_id)
    if send_holds.must_hold(row, user):
        return _held(row)
    if account is None:
        return _failed(
            row, None, user, WORDS["mailbox_gone"], None
        )
    if not _claim(row):
        db.session.rollback()
        return {"ok": False, "skipped": True, "state": row.state, "error": N_("The message changed meanwhile.")}
    try:
        if row.smtp_accepted_at is None:
            _smtp(row, account, user)
        copy_note = _sent_copy(row, account, user)
    except MailboxUnavailable as exc:
        db.session.rollback()
        return _failed(row, account, user, str(exc), None)
    except MailError as exc:
        db.session.rollback()
        return _failed(row, account, user, exc.message, exc)
    row.move_to(OutgoingState.SENT)
    row.sent_at = utcnow()
    db.session.commit()
    if row.sent_copy_saved_at is not None:
        _sync_sent(account)
    return {
        "ok": True,
        "state": row.state,
        "message_id": row.message_id,
        "sent_copy": copy_note,
    }


def _sync_sent(account: Account) -> None:
    """Have the mailbox synced on the interactive lane so its Sent view shows the copy just
    appended (else only the next periodic sync would).  Only when its Sent folder is synced.
    Never fails the send: :func:`webapp.jobs.sync.sync_after_send` leaves a sync queued or
    running (it holds the mailbox lock) to bring the copy, and an unreachable queue the next one."""
    if not Folder.query.filter_by(account_id=account.id, role=FolderRole.SENT.value, sync=True).count():
        return
    try:
        queue.enqueue(SYNC_AFTER_SEND, account.id, lane=queue.INTERACTIVE, job_timeout=60)
    except QueueUnavailable:
        log.warning("Could not start a sync after sending from mailbox %s: no queue.", account.id)


def _claim(row: OutgoingMessage) -> bool:
    """Move ``row`` to ``sending`` (committed) only if its state is still the one this job read.

    A disable that held the message (webapp.send_holds), a cancel or an edit committed since the
    job's checks wins: one conditional UPDATE, so the job never overwrites it and sends anyway.
    """
    if not row.can_move_to(OutgoingState.SENDING):
        row.move_to(OutgoingState.SENDING)  # raises IllegalTransition, naming both states
    claimed = db.session.execute(
        update(OutgoingMessage)
        .where(OutgoingMessage.id == row.id, OutgoingMessage.state == row.state)
        .values(state=OutgoingState.SENDING.value, attempts=(row.attempts or 0) + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed:
        db.session.commit()  # expires the row: it is read again as sending
    return bool(claimed)


def _held(row: OutgoingMessage) -> dict:
    """Its owner is disabled (or it waits for them): keep it, send nothing (webapp.send_holds)."""
    send_holds.hold(row)
    db.session.commit()
    return {"ok": False, "skipped": True, "state": row.state, "error": N_("Held: its owner is disabled.")}


@contextmanager
def _smtp_client(account: Account):
    """The mailbox's SMTP connection, logged in unless the server takes mail without a login."""
    if account.smtp_requires_auth:
        with open_client(account, "smtp") as client:
            yield client
        return
    client_class = plugins.protocol_clients()["smtp"]
    username = account.smtp_username or account.username
    with client_class(server_settings(account, "smtp"), Credentials(username=username)) as client:
        yield client


def _smtp(row: OutgoingMessage, account: Account, user: User | None) -> None:
    accepted_at = utcnow().replace(microsecond=0)
    spec = to_outgoing(row, account, user)
    spec.date = accepted_at.replace(tzinfo=UTC)
    data = build_message(spec).as_bytes()
    recipients = envelope_recipients(spec)
    with _smtp_client(account) as client:
        reply = client.send_message(data, row.from_addr, recipients)
        # The server has it now: record that before anything else can fail, together with the
        # original's \\Answered / $Forwarded, so a worker killed now loses neither.
        marks = _accepted(row, accepted_at)
    enqueue_marks(marks)  # without Redis (or killed first): sweep_marks enqueues them later
    line = Line(
        LogSource.EMAIL_LOGGER,
        LogLevel.INFO,
        WORDS["sent"].format(
            subject=row.subject, sender=row.from_addr, message_id=row.message_id, count=len(recipients)
        ),
        {"outgoing_id": row.id, "message_id": row.message_id, "size": len(data), "reply": reply},
        user=user,
    )
    record_success(account, Check.SEND, lines=[line])


def _accepted(row: OutgoingMessage, accepted_at) -> list[int]:
    """Commit ``smtp_accepted_at`` and the original's pending mark in one transaction; the mark's ids.

    Recording the mark may fail (a database hiccup): the send is committed without it, since
    the recipients have the message whatever becomes of the original's flag.
    """
    outgoing_id = row.id
    row.smtp_accepted_at = accepted_at
    row.error = row.error_class = None
    try:
        marks = record_mark(row)
        db.session.commit()
        return marks
    except Exception:
        db.session.rollback()
        log.warning("Could not mark the original of outgoing message %s.", outgoing_id, exc_info=True)
    row = db.session.get(OutgoingMessage, outgoing_id)
    row.smtp_accepted_at = accepted_at
    row.error = row.error_class = None
    db.session.commit()
    return []


def _sent_copy(row: OutgoingMessage, account: Account, user: User | None) -> str:
    """APPEND the Sent copy unless it is saved already, the provider files it, or there is no Sent.

    With no folder mapped to the Sent role yet (a mailbox used right after connecting), the
    Sent folder is found on the server and mapped first (webapp.jobs.folders.find_sent_folder).
    """
    if row.sent_copy_saved_at is not None:
        return "saved"
    service_key = account.service.key if account.service is not None else None
    if plugins.server_saves_sent(service_key):
        return "filed by the provider"
    if account.incoming_protocol != "imap":
        return "not kept (POP3 mailbox)"
    folder = Folder.query.filter_by(account_id=account.id, role=FolderRole.SENT.value).first()
    data = build_message(to_outgoing(row, account, user)).as_bytes()
    with open_client(account, "imap") as client:
        if folder is None:
            folder = _found_sent(account, user, client)
        if folder is None:
            _no_sent_folder(row, account, user)
            return "not kept (no Sent folder)"
        imap = client.imap
        imap.folder_encode = False  # Folder.name is the server's modified UTF-7 already
        try:
            imap.append(
                folder.name, data, flags=(rb"\Seen",), msg_time=row.smtp_accepted_at.replace(tzinfo=UTC)
            )
        except MailError:
            raise
        except Exception as exc:
            raise client.classify(exc, "append") from exc
    row.sent_copy_saved_at = utcnow()
    db.session.commit()
    return f"saved in {folder.display_name}"


def _found_sent(account: Account, user: User | None, client) -> Folder | None:
    """List the server's folders to find and map the Sent folder; the log says which was chosen."""
    try:
        folder = find_sent_folder(account, client)
    except MailError:
        raise
    except Exception as exc:
        raise client.classify(exc, "list") from exc
    if folder is not None:
        email_log.record(
            LogSource.EMAIL_LOGGER,
            LogLevel.INFO,
            WORDS["sent_found"].format(
                email=account.email, folder=folder.display_name, how=folder.special_use or WORDS["by_name"]
            ),
            account=account,
            user=user,
            details={"folder_id": folder.id},
            created_by="system",
            commit=True,
        )
    return folder


def _no_sent_folder(row: OutgoingMessage, account: Account, user: User | None) -> None:
    email_log.record(
        LogSource.EMAIL_LOGGER,
        LogLevel.WARNING,
        WORDS["no_sent"].format(email=account.email, subject=row.subject, message_id=row.message_id),
        account=account,
        user=user,
        details={"outgoing_id": row.id},
        created_by="system",
        commit=True,
    )


def _transient(exc: MailError | None) -> bool:
    if exc is None:
        return False
    if exc.error_class in TRANSIENT:
        return True
    return exc.error_class is ErrorClass.PROTOCOL and exc.raw[:1] == "4"  # a temporary SMTP answer


def _failed(
    row: OutgoingMessage, account: Account | None, user: User | None, message: str, exc: MailError | None
) -> dict:
    retry = will_retry(_transient(exc))
    accepted = row.smtp_accepted_at is not None
    protocol = exc.protocol.upper() if exc is not None else ""
    text = f"{protocol}: {message}" if protocol else message
    if accepted:
        # Sent; only the Sent copy failed.  Never "failed": the recipients have it.
        row.move_to(OutgoingState.SENDING if retry else OutgoingState.SENT)
        row.error = WORDS["copy_not_saved"].format(error=text)
        if not retry:
            row.sent_at = utcnow()
    else:
        row.move_to(OutgoingState.QUEUED if retry else OutgoingState.FAILED)
        row.error = text
        row.error_class = exc.error_class.value if exc is not None else None
    source = LogSource.SMTP_AUTH if exc is not None and exc.error_class in _AUTH else LogSource.EMAIL_LOGGER
    template = WORDS[("copy" if accepted else "send") + ("_retry" if retry else "_failed")]
    line = Line(
        source,
        LogLevel.WARNING if accepted else LogLevel.ERROR,
        template.format(subject=row.subject, message_id=row.message_id, error=text),
        {"outgoing_id": row.id, "error": exc.as_dict()} if exc else {"outgoing_id": row.id},
        user=user,
    )
    record_failure(account, Check.SEND, text, lines=[line])
    if retry:
        raise Transient(text)
    return {"ok": accepted, "state": row.state, "error": row.error, "class": row.error_class}


# -- starting -------------------------------------------------------------------------------------


def start(outgoing: OutgoingMessage) -> Job:
    """Enqueue the send job (now, or at ``send_at``); store its id on the row and commit.

    Rows made elsewhere (out-of-office replies) may be passed too: state ``queued`` (or
    ``scheduled`` with ``send_at``), a unique ``message_id`` and ``account_id`` set.
    """
    if outgoing.state not in (OutgoingState.QUEUED.value, OutgoingState.SCHEDULED.value):
        raise Conflict(f"This message is {outgoing.state}; it cannot be sent again.")
    intervals = retry_intervals()
    options = dict(
        job_timeout=job_timeout(),
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
        on_failure=FAILURE_CALLBACK,  # a worker killed mid-send
        meta={
            "owner_id": outgoing.user_id,
            "kind": "send",
            "account_id": outgoing.account_id,
            "outgoing_id": outgoing.id,
        },
    )
    if outgoing.send_at is not None and outgoing.send_at > utcnow():
        outgoing.move_to(OutgoingState.SCHEDULED)
        job = queue.enqueue_at(outgoing.send_at.replace(tzinfo=UTC), send_outgoing, outgoing.id, **options)
    else:
        outgoing.move_to(OutgoingState.QUEUED)
        job = queue.enqueue(send_outgoing, outgoing.id, **options)
    outgoing.job_id = job.id
    db.session.commit()
    return job


def reschedule(outgoing: OutgoingMessage, fields: dict) -> Job:
    """Edit a scheduled (or held) message and start it again (``send_at`` null: now); 409 once it goes.

    Fields not given keep their values; ``attachments`` given replaces them all.
    """
    if not isinstance(fields, dict):
        raise Invalid({"body": "must be an object"})
    user = db.session.get(User, outgoing.user_id)
    with message_lock(outgoing.id):
        db.session.refresh(outgoing)
        if outgoing.state not in (OutgoingState.SCHEDULED.value, OutgoingState.HELD.value):
            raise Conflict(f"This message is {outgoing.state}; it can no longer be edited.")
        merged = {**as_fields(outgoing), **fields}
        if "send_at" not in fields and outgoing.send_at is not None and outgoing.send_at <= utcnow():
            merged["send_at"] = None  # it is due right now
        cleaned = clean(user, merged)
        drop_job(outgoing.job_id)
        apply_fields(outgoing, cleaned)
        if "attachments" in fields:
            outgoing.attachments.clear()
            for att in cleaned["attachments"]:
                outgoing.attachments.append(OutgoingAttachment(**att))
        db.session.flush()
        return start(outgoing)


# -- a killed worker, a lost job ------------------------------------------------------------------

#: Seconds a queued message may wait for its job before the sweeper steps in (``SEND_SWEEP_GRACE``).
SWEEP_GRACE = 120
_LIVE = {"queued", "deferred", "scheduled", "started"}


def on_send_failure(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback of a send job; acts only when RQ found the job abandoned.

    The dead job's message lock is freed first (else the retry would wait for it, give up and
    leave the row ``sending``).  With retries left RQ runs the job again (it never sends twice
    once the server accepted the message).  After the last one the row says why instead of
    staying ``sending`` for ever.
    """
    if exc_type is not AbandonedJobError:
        return
    _free_lock(job)
    if job.retries_left:
        return
    row = db.session.get(OutgoingMessage, job.meta.get("outgoing_id"))
    if (
        row is None
        or row.job_id != job.id
        or row.state in (OutgoingState.SENT.value, OutgoingState.CANCELLED.value)
    ):
        return
    if row.smtp_accepted_at is not None:
        row.move_to(OutgoingState.SENT)
        row.sent_at = utcnow()
        row.error = WORDS["copy_not_saved"].format(error=abandoned_jobs.SENTENCE)
    else:
        row.move_to(OutgoingState.FAILED)
        row.error = WORDS["not_sent_maybe"].format(error=abandoned_jobs.SENTENCE)
    db.session.commit()


def _free_lock(job: Job) -> None:
    """Release the message lock a dead send job holds (its token is the job's id), if it still does."""
    lock = queue.get_redis().lock(LOCK_KEY.format(job.meta.get("outgoing_id")), timeout=job_timeout())
    lock.local.token = job.id.encode()
    try:
        lock.release()
    except LockError:
        pass  # expired meanwhile, or held by someone else now: not the dead job's to free


FAILURE_CALLBACK = Callback(on_send_failure)


def _job_lost(row: OutgoingMessage) -> bool:
    """True when no job will ever send this row: none recorded, gone from Redis, or over."""
    if not row.job_id:
        return True
    try:
        job = Job.fetch(row.job_id, connection=queue.get_redis())
    except NoSuchJobError:
        return True
    abandoned_jobs.recover(job)
    status = getattr(job.get_status(refresh=True), "value", None)
    return status not in _LIVE


def _resend(outgoing_id: int) -> str | None:
    """Enqueue a new job for a lost row (under the message's lock); what was done, or None."""
    try:
        with message_lock(outgoing_id, wait=0.5):
            row = db.session.get(OutgoingMessage, outgoing_id)
            db.session.refresh(row)
            if row.state not in (OutgoingState.QUEUED.value, OutgoingState.SCHEDULED.value):
                return None
            if not _job_lost(row):
                return None
            start(row)
            return "enqueued"
    except Conflict:
        return None  # being sent, cancelled or edited right now


def sweep_outgoing() -> dict:
    """Cron: give a new job to every queued or scheduled message whose job is lost.

    Covers what :func:`webapp.send_queue.submit` cannot: a web process killed between the
    commit and the enqueue, a job lost with Redis's data, a job that ended without updating its
    row.  The send job itself never sends twice (``smtp_accepted_at``).  Then the pending
    message changes left without a job (a reply's original whose mark was committed with the
    send by a worker killed before it enqueued the write-back) get theirs.
    """
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
    with queue.reachable():
        for outgoing_id in ids:
            if _resend(outgoing_id):
                enqueued.append(outgoing_id)
        marks = sweep_marks(grace)  # an original's mark whose worker died before enqueueing it
    return {"checked": len(ids), "enqueued": enqueued, "marks": marks}
