"""Out-of-office replies (RFC 3834): settings per mailbox, who gets a reply, and queuing the reply.

While a mailbox's out-of-office is on and the time is inside its window (either end may be
open), each NEW message of its inbox (found by sync, never the first seeding) gets at most one
automatic reply per sender per ``interval_days``.  No reply goes to:

* automatic mail: ``Auto-Submitted`` other than ``no``, ``Precedence: bulk/list/junk``, a
  ``List-Id`` or ``List-Unsubscribe`` header, an empty Return-Path (a bounce);
* no-reply, mailer-daemon and postmaster senders;
* the user's own addresses (every mailbox they have and its aliases);
* mail that does not name this mailbox (or an alias of it) in To or Cc (RFC 3834 section 2:
  a vacation notice only for mail explicitly addressed to the person).

The reply goes to the Return-Path, as RFC 3834 section 4 says (it is the address responsible
for the message; From or Reply-To may be a list or a third party); only a message without a
Return-Path header falls back to From.  It carries ``Auto-Submitted: auto-replied``,
``In-Reply-To`` and ``References``.  The AutoReply row and the outgoing message are written in
one transaction; every reply and every skip, with its reason, goes to the email log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask_babel import gettext as _

from .errors import Invalid
from .extensions import db
from .models import (
    Account,
    OutOfOffice,
    utcnow,
)

MAX_SUBJECT = 255
MAX_BODY = 20_000


# Settings ------------------------------------------------------------------------------------


def settings_for(account: Account) -> OutOfOffice:
    """The mailbox's settings (an unsaved default, off, when it never had any)."""
    row = db.session.get(OutOfOffice, account.id)
    if row is None:
        row = OutOfOffice(account_id=account.id, enabled=False, subject="", body="", interval_days=4)
    return row


def _time(value: Any, name: str, errors: dict[str, str]) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        errors[name] = _("must be an ISO 8601 date and time, or null")
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        errors[name] = _("must be an ISO 8601 date and time, e.g. 2026-08-01T09:00:00Z")
        return None
    if parsed.tzinfo is not None:  # stored as naive UTC; a time without zone is taken as UTC
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def clean(current: OutOfOffice, data: Any) -> dict[str, Any]:
    """Validate ``{enabled, starts_at, ends_at, subject, body, interval_days}`` (missing keys keep
    their value); errors name the field (422)."""
    if not isinstance(data, dict):
        raise Invalid({"body": _("must be a JSON object")})
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    for key in set(data) - {"enabled", "starts_at", "ends_at", "subject", "body", "interval_days"}:
        errors[key] = _("unknown field")
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            errors["enabled"] = _("must be true or false")
        else:
            out["enabled"] = data["enabled"]
    for key in ("starts_at", "ends_at"):
        if key in data:
            out[key] = _time(data[key], key, errors)
    if "subject" in data:
        if not isinstance(data["subject"], str) or len(data["subject"]) > MAX_SUBJECT:
            errors["subject"] = _("must be text of at most %(MAX_SUBJECT)s characters", MAX_SUBJECT=MAX_SUBJECT)
        elif "\n" in data["subject"] or "\r" in data["subject"]:
            errors["subject"] = _("must be one line")
        else:
            out["subject"] = data["subject"].strip()
    if "body" in data:
        if not isinstance(data["body"], str) or len(data["body"]) > MAX_BODY:
            errors["body"] = _("must be text of at most %(MAX_BODY)s characters", MAX_BODY=MAX_BODY)
        else:
            out["body"] = data["body"].replace("\r\n", "\n").strip()
    if "interval_days" in data:
        days = data["interval_days"]
        if isinstance(days, str) and days.strip().isdigit():
            days = int(days)
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 30:
            errors["interval_days"] = _("must be a whole number of days from 1 to 30")
        else:
            out["interval_days"] = days
    enabled = out.get("enabled", current.enabled)
    starts = out["starts_at"] if "starts_at" in out else current.starts_at
    ends = out["ends_at"] if "ends_at" in out else current.ends_at
    body = out["body"] if "body" in out else current.body
    if enabled and not (body or "").strip() and "body" not in errors:
        errors["body"] = _("write the reply text before turning the out-of-office on")
    if starts and ends and ends <= starts and not {"starts_at", "ends_at"} & set(errors):
        errors["ends_at"] = _("must be after the start")
    if errors:
        raise Invalid(errors, "The out-of-office settings are not valid.")
    return out


def save(account: Account, cleaned: dict[str, Any]) -> OutOfOffice:
    row = db.session.get(OutOfOffice, account.id)
    if row is None:
        row = settings_for(account)
        db.session.add(row)
    for key, value in cleaned.items():
        setattr(row, key, value)
    db.session.commit()
    return row


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


def as_dict(row: OutOfOffice, now: datetime | None = None) -> dict[str, Any]:
    return {
        "account_id": row.account_id,
        "enabled": bool(row.enabled),
        "starts_at": _iso(row.starts_at),
        "ends_at": _iso(row.ends_at),
        "subject": row.subject or "",
        "body": row.body or "",
        "interval_days": row.interval_days or 4,
        "active_now": in_window(row, now or utcnow()),
    }


def in_window(row: OutOfOffice, now: datetime) -> bool:
    return bool(
        row.enabled
        and (row.starts_at is None or now >= row.starts_at)
        and (row.ends_at is None or now < row.ends_at)
    )
