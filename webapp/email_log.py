"""The email log: one table for connection tests, syncs, sends and administrators' changes.

Write with :func:`record`; read with :func:`search`, which applies the same
filters for the admin page, the user's page and ``GET /api/v1/logs``.  Nothing
secret is ever passed in: callers log ids, names and classified errors, and
protocol transcripts arrive here already masked by connectors.transcript.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import g, has_request_context
from flask_babel import gettext as _
from flask_login import current_user

from .errors import Invalid
from .extensions import db
from .models import Account, LogEntry, LogLevel, LogSource, User
from .validation import record_id


def actor() -> str:
    """The console user behind the current request, or "system" for jobs and commands."""
    if has_request_context():
        api_user = g.get("api_user")
        if api_user is not None:
            return api_user.username
        if current_user and current_user.is_authenticated:
            return current_user.username
    return "system"


def record(
    source: LogSource,
    level: LogLevel,
    message: str,
    account: Account | None = None,
    user: User | None = None,
    details: dict | None = None,
    created_by: str | None = None,
    commit: bool = False,
) -> LogEntry:
    if user is None and account is not None:
        user = account.user
    entry = LogEntry(
        source=LogSource(source).value,
        level=LogLevel(level).value,
        message=message,
        account_id=account.id if account is not None else None,
        account_label=account.email if account is not None else None,
        user_id=user.id if user is not None else None,
        user_label=user.username if user is not None else None,
        created_by=created_by or actor(),
        details=json.dumps(details) if details else None,
    )
    db.session.add(entry)
    if commit:
        db.session.commit()
    return entry


def _parse_time(value: str, field: str, errors: dict) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        errors[field] = _("must be an ISO 8601 date or time, e.g. 2026-11-22T10:00:00Z")
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


#: The longest search text ``q``, as for messages (webapp.message_queries.clean_query).
MAX_QUERY = 200


def search(viewer: User, args: dict[str, Any], max_limit: int = 500) -> tuple[list[LogEntry], int | None]:
    """Entries visible to ``viewer`` matching the filters, newest first; returns (rows, next cursor).

    Filters (:data:`FILTERS`): ``source``, ``level`` (that level and above), ``account_id``,
    ``user_id``, ``since``, ``until``, ``q`` (text in the message), ``cursor`` (an entry id);
    and ``limit``.
    """
    errors: dict[str, str] = {}
    q = _visible_to(viewer)
    for key, (given, condition) in FILTERS.items():
        value = args.get(key)
        if not given(value):
            continue
        try:
            q = q.filter(condition(value))
        except ValueError as exc:
            errors[key] = str(exc)
    limit = _limit(args.get("limit"), max_limit, errors)
    if errors:
        raise Invalid(errors)
    rows = q.order_by(LogEntry.id.desc()).limit(limit + 1).all()
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_cursor


def _visible_to(viewer: User):
    q = LogEntry.query
    if not viewer.is_admin:
        # A user sees the entries of their own mailboxes (and their own actions on them).
        own = db.session.query(Account.id).filter(Account.user_id == viewer.id)
        q = q.filter(db.or_(LogEntry.account_id.in_(own), LogEntry.user_id == viewer.id))
    return q


def _limit(value: Any, max_limit: int, errors: dict[str, str]) -> int:
    try:
        limit = int(value or 100)
        if not 1 <= limit <= max_limit:
            raise ValueError
    except (TypeError, ValueError):
        errors["limit"] = _("must be a whole number from 1 to %(max_limit)s", max_limit=max_limit)
        return 100
    return limit


def _source(value: str):
    valid = {s.value for s in LogSource}
    if value not in valid:
        raise ValueError("must be one of " + ", ".join(sorted(valid)))
    return LogEntry.source == value


def _level(value: str):
    order = [lv.value for lv in LogLevel]
    if value not in order:
        raise ValueError("must be one of " + ", ".join(order))
    return LogEntry.level.in_(order[order.index(value) :])


def _time(field: str, compare):
    """``since``/``until``: a time, compared with the entry's creation time (no filter if unparsable)."""

    def condition(value: str):
        errors: dict[str, str] = {}
        moment = _parse_time(value, field, errors)
        if errors:
            raise ValueError(errors[field])
        return compare(LogEntry.created_at, moment)

    return condition


def _text(value: str):
    if len(value) > MAX_QUERY:  # SQLite refuses a longer LIKE pattern ("too complex"): a 500
        raise ValueError(_("must be at most %(MAX_QUERY)s characters", MAX_QUERY=MAX_QUERY))
    return LogEntry.message.ilike(f"%{value}%")


def _cursor(value: Any):
    try:
        return LogEntry.id < record_id(value)
    except ValueError:
        raise ValueError(_("must be the next_cursor of a previous page")) from None


def _sent(value: Any) -> bool:
    return bool(value)


def _sent_id(value: Any) -> bool:
    return value not in (None, "")


#: Query parameter -> (whether it was given, its SQL condition or a ValueError with the sentence).
FILTERS = {
    "source": (_sent, _source),
    "level": (_sent, _level),
    "account_id": (_sent_id, lambda value: LogEntry.account_id == record_id(value)),
    "user_id": (_sent_id, lambda value: LogEntry.user_id == record_id(value)),
    "since": (_sent, _time("since", lambda column, moment: column >= moment)),
    "until": (_sent, _time("until", lambda column, moment: column <= moment)),
    "q": (_sent, _text),
    "cursor": (_sent, _cursor),
}


def entry_as_dict(entry: LogEntry) -> dict:
    return {
        "id": entry.id,
        "created_at": entry.created_at.isoformat() + "Z",
        "source": entry.source,
        "level": entry.level,
        "message": entry.message,
        "account_id": entry.account_id,
        "account": entry.account_label,
        "user_id": entry.user_id,
        "user": entry.user_label,
        "created_by": entry.created_by,
        "details": json.loads(entry.details) if entry.details else None,
    }
