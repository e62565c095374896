"""Sending: who may send as which address, outgoing messages, and their (scheduled) send jobs.

The contract other areas rely on (keep it stable):

* :func:`allowed_senders` ``(user) -> list[dict]`` — the From addresses ``user`` may use:
  their own active mailboxes (``email``, and ``smtp_from`` when set), the aliases of
  those mailboxes, and every active mailbox an administrator marked ``shared_sender``
  (for sending only: its messages stay its owner's).  The main mailbox comes first.
  Each entry: ``{"email", "name", "account_id", "kind": "mailbox"|"alias"|"shared",
  "is_main"}``.
* :func:`create_outgoing` ``(user, fields, origin="compose") -> OutgoingMessage`` —
  validates every field (422 :class:`~webapp.errors.Invalid` naming the field; a From
  outside :func:`allowed_senders` is :class:`~webapp.errors.Forbidden`, 403), picks the
  mailbox that owns the From address, makes the Message-ID once and stores the row,
  ``scheduled`` when ``send_at`` is in the future, else ``queued``.  It does not enqueue.
* :func:`webapp.jobs.send.start` ``(outgoing) -> Job`` — enqueues the send job now, or at
  ``send_at`` with RQ's scheduler, with ``Retry`` for transient failures.  Rows made elsewhere
  (out-of-office replies) may be passed too: state ``queued`` (or ``scheduled`` with
  ``send_at``), a unique ``message_id`` (use :func:`connectors.outgoing.make_message_id`) and
  ``account_id`` set.  :func:`webapp.jobs.send.reschedule` edits a scheduled message.
* :func:`cancel` (and ``reschedule``) — until the message goes; a message already
  sending or sent is a 409 (:class:`~webapp.errors.Conflict`).

The web never talks to a mail server: the job does (webapp.jobs.send).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from rq.exceptions import NoSuchJobError
from rq.job import Job

from connectors.errors import DESCRIPTIONS, ErrorClass
from connectors.outgoing import check_header_name, make_message_id

from . import html_safety, i18n, mailbox_usability, settings_store, validation
from .errors import Conflict, Forbidden, Invalid, NotFound
from .extensions import db
from .models import (
    Account,
    AccountState,
    Alias,
    OutgoingAttachment,
    OutgoingMessage,
    OutgoingState,
    User,
    utcnow,
)
from .queue import get_redis

#: Limits (config keys of the same name override them).
SEND_MAX_RECIPIENTS = 100
SEND_MAX_ATTACHMENT_BYTES = 15 * 1024 * 1024  # all attachments together, decoded
SEND_MAX_BODY_CHARS = 2_000_000
#: Seconds between retries of a transient failure (config ``SEND_RETRY_INTERVALS``).
SEND_RETRY_INTERVALS = (30, 120, 600)
#: How far ahead a send may be scheduled.
MAX_SCHEDULE_DAYS = 366

LOCK_KEY = "mailroom:send:lock:{}"
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*$")
_MSGID = re.compile(r"^<[^<>\s]+@[^<>\s]+>$")
FIELDS = {
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "text",
    "html",
    "attachments",
    "send_at",
    "in_reply_to",
    "references",
    "extra_headers",
}


def _config(name: str, default):
    return current_app.config.get(name, default)


# -- who may send as what ------------------------------------------------------------------------


def allowed_senders(user: User) -> list[dict]:
    """The From addresses ``user`` may use, main mailbox first; see the module docstring."""
    # A mailbox whose service was removed cannot send, even the main one: never offered.
    own = (
        Account.query.filter_by(user_id=user.id, active=True)
        .filter(Account.state != AccountState.SERVICE_REMOVED.value)
        .order_by(Account.is_main.desc(), Account.id)
        .all()
    )
    out: list[dict] = []
    seen: set[str] = set()

    def add(address: str | None, account: Account, kind: str, name: str = "") -> None:
        if not address or address.lower() in seen:
            return
        seen.add(address.lower())
        out.append(
            {
                "email": address,
                "name": name,
                "account_id": account.id,
                "kind": kind,
                "is_main": bool(account.is_main and kind == "mailbox"),
            }
        )

    for account in own:
        add(account.email, account, "mailbox", account.description or "")
        add(account.smtp_from, account, "mailbox", account.description or "")
    if own:
        aliases = (
            Alias.query.filter(Alias.account_id.in_([a.id for a in own]))
            .order_by(Alias.account_id, Alias.id)
            .all()
        )
        by_id = {a.id: a for a in own}
        for alias in aliases:
            add(alias.address, by_id[alias.account_id], "alias", alias.display_name or "")
    shared = (
        Account.query.filter(
            Account.shared_sender.is_(True),
            Account.active.is_(True),
            Account.state != AccountState.SERVICE_REMOVED.value,
            Account.user_id != user.id,
        )
        .order_by(Account.id)
        .all()
    )
    for account in shared:
        add(account.smtp_from or account.email, account, "shared", account.description or "")
    return out


def _sender_for(user: User, address: str | None) -> dict:
    """The sender entry for ``address`` (None: the main mailbox's); a mailbox of the user's that
    cannot send (service removed, turned off) is a 409 with its sentence, never a later failure."""
    blocked = mailbox_usability.blocked_sender(user, address)
    if blocked:
        raise Conflict(blocked, {"from": blocked})
    senders = allowed_senders(user)
    if not senders:
        raise Invalid({"from": _("You have no active mailbox to send from; connect one first.")})
    if address is None:
        return senders[0]
    for sender in senders:
        if sender["email"].lower() == address.lower():
            return sender
    raise Forbidden(
        _("You may not send as %(address)s: only your mailboxes, their aliases and shared senders.", address=address),
        {"from": "This address is not one you may send from."},
    )


# -- validation ----------------------------------------------------------------------------------


def _addresses(value: Any, name: str, errors: dict[str, str]) -> list[str]:
    """A list (or a comma-separated string) of ``addr`` / ``Name <addr>``, each validated."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items = [v for v in (x.strip() for x in _split_addresses(value)) if v]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value if v.strip()]
    else:
        errors[name] = _("must be a list of email addresses")
        return []
    out = []
    for item in items:
        display, addr = email.utils.parseaddr(item)
        if any(ord(c) < 32 for c in item):
            errors[name] = _("%(item)s contains control characters", item=repr(item))
            return []
        try:
            addr = validation.email(addr or item)
        except ValueError as exc:
            errors[name] = f"{item}: {exc}"
            return []
        out.append(readable_address(display, addr))
    return out


#: Characters that make a display name need quotes (RFC 5322 specials), as email.utils.formataddr.
_NAME_SPECIALS = re.compile(r'[][\\()<>@,:;".]')


def readable_address(name: str, addr: str) -> str:
    """``Name <addr>`` as people read it, quoted where it must be: never RFC 2047-encoded words
    (``email.utils.formataddr`` encodes a non-ASCII name; the page and the API showed
    ``=?utf-8?b?…?= <addr>``). The MIME builder encodes the name on the wire."""
    if not name:
        return addr
    if _NAME_SPECIALS.search(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{addr}>"


def _split_addresses(text: str) -> list[str]:
    """Split on commas and semicolons outside quotes (``"Doe, J" <j@x>`` stays whole)."""
    parts, buf, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch in ",;" and not quoted:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return parts


def addr_spec(entry: str) -> str:
    """The bare address of a stored ``addr`` / ``Name <addr>`` entry."""
    return email.utils.parseaddr(entry)[1] or entry


def _body(value: Any, name: str, errors: dict[str, str]) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errors[name] = _("must be a string")
        return None
    if len(value) > _config("SEND_MAX_BODY_CHARS", SEND_MAX_BODY_CHARS):
        errors[name] = _("is too long")
        return None
    return value.replace("\r\n", "\n")


def _attachments(value: Any, errors: dict[str, str]) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        errors["attachments"] = _("must be a list of {filename, content_type, content_base64}")
        return []
    out, total = [], 0
    limit = _config("SEND_MAX_ATTACHMENT_BYTES", SEND_MAX_ATTACHMENT_BYTES)
    for i, item in enumerate(value):
        key = f"attachments.{i}"
        if not isinstance(item, dict):
            errors[key] = _("must be an object {filename, content_type, content_base64}")
            continue
        unknown = set(item) - {"filename", "content_type", "content_base64"}
        if unknown:
            errors[f"{key}.{sorted(unknown)[0]}"] = _("unknown field")
            continue
        filename = item.get("filename")
        if not isinstance(filename, str) or not filename.strip():
            errors[f"{key}.filename"] = _("This field is required.")
            continue
        filename = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
        if not filename or len(filename) > 255 or any(ord(c) < 32 for c in filename):
            errors[f"{key}.filename"] = _("must be a file name of at most 255 characters")
            continue
        content_type = item.get("content_type") or "application/octet-stream"
        if not isinstance(content_type, str) or not _CONTENT_TYPE.match(content_type):
            errors[f"{key}.content_type"] = _("must be a MIME type such as application/pdf")
            continue
        data = item.get("content_base64")
        if not isinstance(data, str):
            errors[f"{key}.content_base64"] = _("This field is required (the file's bytes in base64).")
            continue
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            errors[f"{key}.content_base64"] = _("is not valid base64")
            continue
        total += len(raw)
        if total > limit:
            errors["attachments"] = _("Attachments may add up to %(limit)s MB at most.", limit=limit // (1024 * 1024))
            return []
        out.append({"filename": filename, "content_type": content_type.lower(), "data": raw})
    return out


def parse_send_at(value: Any, errors: dict[str, str]) -> datetime | None:
    """ISO 8601 in the future (naive means UTC), as naive UTC; None for "now"."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errors["send_at"] = _("must be an ISO 8601 date and time, e.g. 2030-01-31T09:00:00+01:00")
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        errors["send_at"] = _("must be an ISO 8601 date and time, e.g. 2030-01-31T09:00:00+01:00")
        return None
    if when.tzinfo is not None:
        try:
            when = when.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # year 1 east of UTC, 9999 west of it: far outside the window either way
            when = datetime.min if when.year == 1 else datetime.max
    now = utcnow()
    if when <= now:
        errors["send_at"] = _("must be in the future")
        return None
    if when > now + timedelta(days=MAX_SCHEDULE_DAYS):
        errors["send_at"] = _("must be within %(MAX_SCHEDULE_DAYS)s days", MAX_SCHEDULE_DAYS=MAX_SCHEDULE_DAYS)
        return None
    return when


def _msgid(value: Any, name: str, errors: dict[str, str], many: bool = False) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > (20000 if many else 998):
        errors[name] = _("must be a Message-ID like <id@example.com>")
        return None
    ids = value.split() if many else [value.strip()]
    if not ids or not all(_MSGID.match(i) for i in ids):
        errors[name] = "must be a Message-ID like <id@example.com>" + (", space-separated" if many else "")
        return None
    return " ".join(ids)


def _extra_headers(value: Any, errors: dict[str, str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors["extra_headers"] = _("must be an object {header name: value}")
        return {}
    out = {}
    for name, text in value.items():
        problem = check_header_name(name)
        if problem is None and (not isinstance(text, str) or any(ord(c) < 32 and c != "\t" for c in text)):
            problem = "must be a one-line string"
        if problem:
            errors[f"extra_headers.{name}"] = problem
            continue
        out[name] = text
    return out


def clean(user: User, data: Any) -> dict:
    """Validate a send request; raises Invalid (422) or Forbidden (403, From not allowed)."""
    if not isinstance(data, dict):
        raise Invalid({"body": _("must be an object")})
    errors: dict[str, str] = {}
    for key in sorted(set(data) - FIELDS):
        errors[key] = _("unknown field")
    frm = data.get("from")
    from_display, from_addr = "", None
    if frm not in (None, ""):
        if not isinstance(frm, str):
            errors["from"] = _("must be an email address")
        else:
            from_display, parsed = email.utils.parseaddr(frm)
            try:
                from_addr = validation.email(parsed or frm)
            except ValueError as exc:
                errors["from"] = str(exc)
    cleaned: dict[str, Any] = {
        "to": _addresses(data.get("to"), "to", errors),
        "cc": _addresses(data.get("cc"), "cc", errors),
        "bcc": _addresses(data.get("bcc"), "bcc", errors),
    }
    count = sum(len(cleaned[k]) for k in ("to", "cc", "bcc"))
    if not count and not any(k in errors for k in ("to", "cc", "bcc")):
        errors["to"] = _("Give at least one recipient (To, Cc or Bcc).")
    elif count > _config("SEND_MAX_RECIPIENTS", SEND_MAX_RECIPIENTS):
        errors["to"] = _("At most %(SEND_MAX_RECIPIENTS)s recipients in all.", SEND_MAX_RECIPIENTS=_config('SEND_MAX_RECIPIENTS', SEND_MAX_RECIPIENTS))
    subject = data.get("subject")
    if subject is None:
        subject = ""
    if not isinstance(subject, str):
        errors["subject"] = _("must be a string")
    elif len(subject) > 998 or any(ord(c) < 32 and c != "\t" for c in subject):
        errors["subject"] = _("must be one line of at most 998 characters")
    cleaned["subject"] = subject.strip() if isinstance(subject, str) else ""
    cleaned["text"] = _body(data.get("text"), "text", errors)
    markup = _body(data.get("html"), "html", errors)
    cleaned["html"] = html_safety.for_outgoing(markup) if markup else None
    if cleaned["text"] is None and cleaned["html"] is None and not ({"text", "html"} & set(errors)):
        errors["text"] = _("Write a message (text and/or HTML).")
    cleaned["attachments"] = _attachments(data.get("attachments"), errors)
    cleaned["send_at"] = parse_send_at(data.get("send_at"), errors)
    cleaned["in_reply_to"] = _msgid(data.get("in_reply_to"), "in_reply_to", errors)
    cleaned["references"] = _msgid(data.get("references"), "references", errors, many=True)
    cleaned["extra_headers"] = _extra_headers(data.get("extra_headers"), errors)
    if errors:
        raise Invalid(errors)
    sender = _sender_for(user, from_addr)  # after validation: a bad form is 422 before a 403
    cleaned["sender"] = sender
    cleaned["from_name"] = from_display or sender["name"] or _profile_name(user)
    return cleaned


def _profile_name(user: User) -> str:
    return " ".join(p for p in (user.first_name, user.last_name) if p)


# -- creating, enqueueing, changing --------------------------------------------------------------


def apply_fields(row: OutgoingMessage, cleaned: dict) -> None:
    """Write validated fields (:func:`clean`) on a new or scheduled row: ``scheduled`` or ``queued``."""
    sender = cleaned["sender"]
    row.account_id = sender["account_id"]
    row.from_addr = sender["email"]
    row.from_name = cleaned["from_name"]
    row.to_addrs = json.dumps(cleaned["to"])
    row.cc_addrs = json.dumps(cleaned["cc"])
    row.bcc_addrs = json.dumps(cleaned["bcc"])
    row.subject = cleaned["subject"]
    row.text_body = cleaned["text"]
    row.html_body = cleaned["html"]
    row.in_reply_to = cleaned["in_reply_to"]
    row.references_header = cleaned["references"]
    row.extra_headers = json.dumps(cleaned["extra_headers"]) if cleaned["extra_headers"] else None
    row.send_at = cleaned["send_at"]
    row.move_to(OutgoingState.SCHEDULED if cleaned["send_at"] else OutgoingState.QUEUED)
    row.error = row.error_class = None


def create_outgoing(
    user: User, fields: dict, origin: str = "compose", *, idempotency: tuple[str, str] | None = None
) -> OutgoingMessage:
    """Validate and store a message to send (not yet enqueued); see the module docstring.

    ``idempotency`` is the API client's ``(Idempotency-Key, request hash)``; a second row with
    the same key for the same user raises ``IntegrityError`` at the commit (webapp.send_queue).
    """
    cleaned = clean(user, fields)
    account = db.session.get(Account, cleaned["sender"]["account_id"])
    key, request_hash = idempotency or (None, None)
    row = OutgoingMessage(
        user_id=user.id,
        origin=origin,
        message_id=make_message_id(account.email.rpartition("@")[2]),
        attempts=0,
        idempotency_key=key,
        request_hash=request_hash,
    )
    apply_fields(row, cleaned)
    for att in cleaned["attachments"]:
        row.attachments.append(OutgoingAttachment(**att))
    db.session.add(row)
    db.session.commit()
    return row


def retry_intervals() -> list[int]:
    return list(_config("SEND_RETRY_INTERVALS", SEND_RETRY_INTERVALS))


def job_timeout() -> int:
    """Connect, TLS, login, MAIL/RCPT/DATA and the IMAP APPEND, each bounded by the connection timeout."""

    return 8 * int(settings_store.get("connection_timeout")) + 60


@contextmanager
def message_lock(outgoing_id: int, wait: float = 5.0):
    """The per-message Redis lock the send job holds while it sends; 409 if it cannot be had."""
    lock = get_redis().lock(LOCK_KEY.format(outgoing_id), timeout=60, blocking_timeout=wait)
    if not lock.acquire():
        raise Conflict(_("This message is being sent right now."))
    try:
        yield
    finally:
        try:
            lock.release()
        except Exception:
            pass


def drop_job(job_id: str | None) -> None:
    """Delete the message's RQ job (a scheduled one too), if it still exists."""
    if not job_id:
        return
    try:
        Job.fetch(job_id, connection=get_redis()).delete()
    except NoSuchJobError:
        pass


def _cancellable(outgoing: OutgoingMessage, states: tuple[str, ...]) -> None:
    if outgoing.state not in states:
        raise Conflict(_("This message is %(state)s; it can no longer be cancelled.", state=outgoing.state))


def cancel(outgoing: OutgoingMessage) -> OutgoingMessage:
    """Cancel a scheduled, held (or still queued) message and its RQ job; 409 once it is sending or sent."""
    with message_lock(outgoing.id):
        db.session.refresh(outgoing)
        _cancellable(
            outgoing, (OutgoingState.SCHEDULED.value, OutgoingState.QUEUED.value, OutgoingState.HELD.value)
        )
        drop_job(outgoing.job_id)
        outgoing.move_to(OutgoingState.CANCELLED)
        db.session.commit()
    return outgoing


def as_fields(outgoing: OutgoingMessage) -> dict:
    """The row as the fields :func:`clean` takes (for editing); attachments are kept separately."""
    return {
        "from": outgoing.from_addr,
        "to": json.loads(outgoing.to_addrs or "[]"),
        "cc": json.loads(outgoing.cc_addrs or "[]"),
        "bcc": json.loads(outgoing.bcc_addrs or "[]"),
        "subject": outgoing.subject,
        "text": outgoing.text_body,
        "html": outgoing.html_body,
        "send_at": outgoing.send_at.replace(tzinfo=UTC).isoformat() if outgoing.send_at else None,
        "in_reply_to": outgoing.in_reply_to,
        "references": outgoing.references_header,
        "extra_headers": json.loads(outgoing.extra_headers) if outgoing.extra_headers else None,
    }


# -- reading ------------------------------------------------------------------------------------


def get_outgoing(user: User, outgoing_id: int) -> OutgoingMessage:
    """The user's own outgoing message (administrators too see only their own here)."""
    row = db.session.get(OutgoingMessage, outgoing_id)
    if row is None or row.user_id != user.id:
        raise NotFound(_("No such outgoing message."))
    return row


def list_outgoing(user: User, state: str | None = None, limit: int = 100) -> list[OutgoingMessage]:
    q = OutgoingMessage.query.filter_by(user_id=user.id)
    if state:
        states = [s.strip() for s in state.split(",") if s.strip()]
        known = {s.value for s in OutgoingState}
        bad = [s for s in states if s not in known]
        if bad:
            raise Invalid({"state": "must be one of " + ", ".join(sorted(known))})
        q = q.filter(OutgoingMessage.state.in_(states))
    return q.order_by(OutgoingMessage.created_at.desc(), OutgoingMessage.id.desc()).limit(limit).all()


def _iso(value: datetime | None) -> str | None:
    return value.replace(tzinfo=UTC).isoformat() if value else None


def outgoing_as_dict(row: OutgoingMessage, full: bool = False) -> dict:
    """The row for the API and the pages (never the attachment bytes)."""

    sentence = None
    if row.error_class:
        try:
            sentence = DESCRIPTIONS[ErrorClass(row.error_class)][0]
        except ValueError:
            sentence = None
    body = {
        "id": row.id,
        "state": row.state,
        "message_id": row.message_id,
        "job_id": row.job_id,
        "account_id": row.account_id,
        "from": readable_address(row.from_name or "", row.from_addr),
        "to": json.loads(row.to_addrs or "[]"),
        "cc": json.loads(row.cc_addrs or "[]"),
        "bcc": json.loads(row.bcc_addrs or "[]"),
        "subject": row.subject,
        "origin": row.origin,
        "send_at": _iso(row.send_at),
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "smtp_accepted_at": _iso(row.smtp_accepted_at),
        "sent_copy_saved_at": _iso(row.sent_copy_saved_at),
        "sent_at": _iso(row.sent_at),
        "attempts": row.attempts,
        # Stored in English (webapp.jobs.send.WORDS, connectors.errors): in the reader's language.
        "error": i18n.translate_stored(row.error) if row.error else row.error,
        "error_class": row.error_class,
        "error_sentence": i18n.translate_stored(sentence) if sentence else sentence,
        "attachments": [
            {
                "id": a.id,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": len(a.data),
            }
            for a in row.attachments
        ],
    }
    if full:
        body["text"] = row.text_body
        body["html"] = row.html_body
        body["in_reply_to"] = row.in_reply_to
        body["references"] = row.references_header
    return body
