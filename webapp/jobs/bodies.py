"""Fetching a message's whole body into the cache, when someone opens it (``webapp.body_cache``).

The job SELECTs the folder by its raw server name, read-only, and sends ``UID FETCH <uid>
BODY.PEEK[]`` (PEEK: opening a message in the console does not mark it read on the server).
A folder or UID the server no longer has marks the message "gone" for an hour.
"""

from __future__ import annotations

from flask import current_app
from imapclient.exceptions import IMAPClientError
from rq.exceptions import NoSuchJobError
from rq.job import Job

from connectors.errors import MailError
from connectors.i18n import N_
from connectors.mime_text import preview_of_message

from .. import email_log, message_changes
from ..body_cache import GONE_TEXT, mark_gone
from ..errors import MailboxUnavailable
from ..extensions import db
from ..models import Account, Folder, LogLevel, LogSource, Message, MessageBody, User, utcnow
from ..queue import enqueue_for, get_redis
from .session import open_client, timeout

#: The email log's line and the job's answer (stored in English, translated when shown).
FETCH_FAILED = N_("Fetching a message of {folder} failed: {error}")
BEING_MOVED = N_("The message is being moved; open it again in a moment.")

#: The fetch job: connect, log in, SELECT, one FETCH; bounded by the connection timeout plus slack.
_JOB_SLACK = 60
_ACTIVE = ("queued", "started", "deferred", "scheduled")


class MessageGone(Exception):
    """The folder or the UID is not on the server any more."""


def _job_key(message_pk: int, user_id: int) -> str:
    return f"mailroom:body-job:{message_pk}:{user_id}"


def start(message: Message, user: User) -> Job:
    """Enqueue the fetch of ``message``'s body for ``user``, or answer their fetch already queued."""
    redis = get_redis()
    key = _job_key(message.id, user.id)
    job_id = redis.get(key)
    if job_id is not None:
        try:
            job = Job.fetch(job_id.decode(), connection=redis)
            if job.get_status(refresh=True) in _ACTIVE:
                return job
        except NoSuchJobError:
            pass
    job_timeout = 2 * timeout() + _JOB_SLACK
    job = enqueue_for(
        fetch_body,
        message.id,
        owner_id=user.id,
        kind="fetch_body",
        account_id=message.account_id,
        timeout=job_timeout,
    )
    redis.set(key, job.id, ex=job_timeout + 60)
    return job


def fetch_body(message_pk: int) -> dict:
    """The job: fetch the whole message from the server into the cache; ids in, a small dict out."""
    message = db.session.get(Message, message_pk)
    if message is None:
        return {"ok": False, "gone": True, "error": N_("The message was removed from the console.")}
    if db.session.get(MessageBody, message.id) is not None:
        return {"ok": True, "message_id": message.id, "cached": True}
    place = message_changes.server_place(message)  # a moved row may wait for its UID
    if place is None:
        return {"ok": False, "gone": False, "error": BEING_MOVED}
    folder = db.session.get(Folder, place[0])
    account = db.session.get(Account, message.account_id)
    try:
        with open_client(account, "imap") as client:
            raw = _fetch_raw(client, folder, place[1])
    except MessageGone as exc:
        mark_gone(message.id)
        return {"ok": False, "gone": True, "error": str(exc)}
    except MailboxUnavailable as exc:
        return {"ok": False, "gone": False, "error": str(exc)}
    except MailError as exc:
        email_log.record(
            LogSource.INCOMING,
            LogLevel.ERROR,
            FETCH_FAILED.format(folder=folder.display_name, error=exc.message),
            account=account,
            created_by="system",
        )
        db.session.commit()
        return {"ok": False, "gone": False, "error": exc.message}
    db.session.merge(MessageBody(message_pk=message.id, raw=raw, fetched_at=utcnow()))
    # The whole message is here now: its preview from the whole text part, not sync's first bytes.
    message.preview = preview_of_message(raw)
    db.session.commit()
    current_app.logger.debug("cached body of message %s (%d bytes)", message.id, len(raw))
    return {"ok": True, "message_id": message.id, "size": len(raw)}


def _fetch_raw(client, folder: Folder, uid: int) -> bytes:
    """SELECT the folder by its raw name (readonly), check UIDVALIDITY, ``UID FETCH uid BODY.PEEK[]``."""
    imap = client.imap
    imap.folder_encode = False  # Folder.name is already the server's modified UTF-7
    try:
        try:
            status = imap.select_folder(folder.name, readonly=True)
        except IMAPClientError as exc:
            text = str(exc)
            if "NONEXISTENT" in text.upper() or "doesn't exist" in text.lower():
                raise MessageGone(f'The folder "{folder.display_name}" is no longer on the server.') from None
            raise client.classify(exc, "select") from exc
        except Exception as exc:
            raise client.classify(exc, "select") from exc
        uidvalidity = status.get(b"UIDVALIDITY")
        if (
            folder.uidvalidity is not None
            and uidvalidity is not None
            and int(uidvalidity) != folder.uidvalidity
        ):
            raise MessageGone(GONE_TEXT)
        try:
            data = imap.fetch([uid], [b"BODY.PEEK[]"])
        except Exception as exc:
            raise client.classify(exc, "fetch") from exc
    finally:
        imap.folder_encode = True
    for item in data.values():
        raw = item.get(b"BODY[]")
        if raw is not None:
            return bytes(raw)
    raise MessageGone(GONE_TEXT)


# -- MIME to what a page may show ---------------------------------------------------------
