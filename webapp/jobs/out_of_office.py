"""Out-of-office replies on new mail, in the sync job (RFC 3834): who gets a reply, and queuing it.

The settings and their window are :mod:`webapp.out_of_office`; the rules are its docstring's.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from email.header import decode_header, make_header
from email.utils import getaddresses, parseaddr

from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from connectors.i18n import N_
from connectors.outgoing import make_message_id

from .. import email_log, i18n
from ..extensions import db
from ..models import (
    Account,
    Alias,
    AutoReply,
    LogLevel,
    LogSource,
    Message,
    OutgoingMessage,
    OutgoingState,
    OutOfOffice,
    utcnow,
)
from ..out_of_office import in_window
from . import send

#: Headers fetched from the server for each new inbox message (they are not stored).
HEADERS = (
    "return-path",
    "from",
    "to",
    "cc",
    "auto-submitted",
    "precedence",
    "list-id",
    "list-unsubscribe",
    "message-id",
    "references",
)
#: The email log's lines and why a message got no reply (stored in English, translated when shown).
WORDS = {
    "skipped": N_('Out-of-office: no reply to "{subject}" from {sender}: {reason}.'),
    "queued": N_('Out-of-office: reply to {address} for "{subject}" queued.'),
    "delivery_report": N_("it is a delivery report (empty Return-Path)"),
    "no_sender": N_("it has no sender address"),
    "automatic": N_("it is an automatic message (Auto-Submitted: {value})"),
    "bulk": N_("it is bulk mail (Precedence: {value})"),
    "list": N_("it came from a mailing list ({header})"),
    "no_reply": N_("the sender {address} does not take replies"),
    "own": N_("it came from one of your own addresses"),
    "not_named": N_("this mailbox is not named in To or Cc (mailing list, Bcc or forward)"),
    "out_of_dates": N_("the out-of-office is outside its dates"),
    "already": N_("{address} already had a reply on {when} UTC"),
}

_NO_REPLY = re.compile(
    r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer[-_.]?daemon|postmaster|bounces?)([-+_.].*)?$", re.I
)

# Who gets a reply ----------------------------------------------------------------------------


def decoded(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except Exception:
        return value


def own_addresses(account: Account) -> set[str]:
    """Every address of the mailbox's owner: all their mailboxes and all their aliases (lower-case)."""
    out: set[str] = set()
    for acc in Account.query.filter_by(user_id=account.user_id):
        out.update(a.lower() for a in (acc.email, acc.smtp_from) if a)
    aliases = db.session.query(Alias.address).join(Account, Alias.account_id == Account.id)
    out.update(a.lower() for (a,) in aliases.filter(Account.user_id == account.user_id))
    return out


def mailbox_addresses(account: Account) -> set[str]:
    """The addresses this mailbox receives as: its address, its SMTP From and its aliases."""
    out = {a.lower() for a in (account.email, account.smtp_from) if a}
    out.update(a.lower() for (a,) in db.session.query(Alias.address).filter(Alias.account_id == account.id))
    return out


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0].strip() if values else None


def reply_address(headers: dict[str, list[str]]) -> tuple[str | None, str | None]:
    """(address to reply to, reason for no reply): Return-Path, else From (RFC 3834 section 4)."""
    return_path = _first(headers, "return-path")
    if return_path is not None:
        addr = parseaddr(return_path)[1].strip()
        if not addr or return_path.replace(" ", "") == "<>":
            return None, WORDS["delivery_report"]
        return addr.lower(), None
    addr = parseaddr(decoded(_first(headers, "from") or ""))[1].strip()
    if not addr:
        return None, WORDS["no_sender"]
    return addr.lower(), None


def skip_reason(
    headers: dict[str, list[str]], own: set[str], mailbox: set[str]
) -> tuple[str | None, str | None]:
    """(reply address, None) when the message gets a reply, or (None, reason) when it does not."""
    auto = _first(headers, "auto-submitted")
    if auto is not None and auto.split(";")[0].strip().lower() != "no":
        return None, WORDS["automatic"].format(value=auto[:60])
    precedence = (_first(headers, "precedence") or "").lower()
    if precedence in ("bulk", "list", "junk"):
        return None, WORDS["bulk"].format(value=precedence)
    for name, label in (("list-id", "List-Id"), ("list-unsubscribe", "List-Unsubscribe")):
        if headers.get(name):
            return None, WORDS["list"].format(header=label)
    address, reason = reply_address(headers)
    if address is None:
        return None, reason
    from_addr = parseaddr(decoded(_first(headers, "from") or ""))[1].lower()
    for candidate in {address, from_addr} - {""}:
        if _NO_REPLY.match(candidate.split("@")[0]):
            return None, WORDS["no_reply"].format(address=candidate)
    if address in own or from_addr in own:
        return None, WORDS["own"]
    named = {
        a.lower() for _, a in getaddresses([decoded(v) for k in ("to", "cc") for v in headers.get(k, [])])
    }
    if not named & mailbox:
        return None, WORDS["not_named"]
    return address, None


# Replying ------------------------------------------------------------------------------------


def reply_to_new(account: Account, messages: list[tuple[Message, dict[str, list[str]]]]) -> dict[str, int]:
    """Reply (or log why not) to each new inbox message; commits per message.  Returns counts."""
    counts = {"replied": 0, "skipped": 0}
    row = db.session.get(OutOfOffice, account.id)
    if row is None or not row.enabled or not messages:
        return counts
    now = utcnow()
    if not in_window(row, now):
        for message, _ in messages:
            _log_skip(account, message, WORDS["out_of_dates"], LogLevel.DEBUG)
            counts["skipped"] += 1
        db.session.commit()
        return counts
    own, mailbox = own_addresses(account), mailbox_addresses(account)
    for message, headers in messages:
        address, reason = skip_reason(headers, own, mailbox)
        if address is None:
            _log_skip(account, message, reason)
            counts["skipped"] += 1
            db.session.commit()
            continue
        outgoing, reason = _reply(account, row, message, headers, address, now)
        if outgoing is None:
            _log_skip(account, message, reason)
            counts["skipped"] += 1
            db.session.commit()
            continue
        counts["replied"] += 1
    return counts


def _log_skip(account: Account, message: Message, reason: str, level: LogLevel = LogLevel.INFO) -> None:
    email_log.record(
        LogSource.INCOMING,
        level,
        WORDS["skipped"].format(subject=message.subject[:120], sender=message.from_addr or "?", reason=reason),
        account=account,
        details={"message_id": message.message_id, "reason": reason},
        created_by="system",
    )


def _reply(account, row: OutOfOffice, message: Message, headers, address: str, now: datetime):
    """Write the AutoReply row and the outgoing reply in one transaction, then queue the send."""
    since = now - timedelta(days=row.interval_days or 4)
    last = AutoReply.query.filter_by(account_id=account.id, sender=address).first()
    if last is not None and last.replied_at > since:
        return None, WORDS["already"].format(address=address, when=f"{last.replied_at:%Y-%m-%d %H:%M}")
    if last is None:
        db.session.add(AutoReply(account_id=account.id, sender=address, replied_at=now))
    else:
        last.replied_at = now
    original_id = _first(headers, "message-id") or message.message_id
    references = " ".join(
        x
        for x in (
            (_first(headers, "references") or message.references_header or "").split() + [original_id or ""]
        )
        if x
    )
    subject = row.subject or _auto_subject(account, message.subject or "")
    try:
        outgoing = _create_outgoing(account, address, subject, row.body or "", original_id, references)
        email_log.record(
            LogSource.INCOMING,
            LogLevel.INFO,
            WORDS["queued"].format(address=address, subject=message.subject[:120]),
            account=account,
            details={"message_id": message.message_id, "outgoing_id": outgoing.id, "to": address},
            created_by="system",
        )
        db.session.commit()
    except IntegrityError:  # another run replied to this sender at the same instant
        db.session.rollback()
        return None, f"{address} is being replied to by another run"
    send.start(outgoing)
    return outgoing, None


AUTO_HEADERS = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}


def _create_outgoing(account: Account, to: str, subject: str, body: str, in_reply_to, references):
    """The reply row, built here as webapp.sending's contract allows (queued, own Message-ID,
    ``account_id`` set); flushed, not committed, so it shares the AutoReply row's transaction."""
    message_id = make_message_id(account.email.rpartition("@")[2] or "mailroom.invalid")
    user = account.user
    outgoing = OutgoingMessage(
        user_id=account.user_id,
        account_id=account.id,
        from_addr=account.smtp_from or account.email,
        from_name=" ".join(p for p in (user.first_name, user.last_name) if p),
        to_addrs=json.dumps([to]),
        subject=subject,
        text_body=body,
        in_reply_to=in_reply_to,
        references_header=references or None,
        extra_headers=json.dumps(AUTO_HEADERS),
        message_id=message_id,
        origin="out_of_office",
        attempts=0,
    )
    outgoing.move_to(OutgoingState.QUEUED)
    db.session.add(outgoing)
    db.session.flush()
    return outgoing


def _auto_subject(account: Account, subject: str) -> str:
    """The built-in subject of a reply whose owner left it empty, in the owner's language (the
    text the owner wrote, subject and body, is sent as written)."""
    with i18n.in_language_of(account.user):
        return _("Auto: %(subject)s", subject=subject).strip()
