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
        errors[field] = "must be an ISO 8601 date or time, e.g. 2026-11-22T10:00:00Z"
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


#: The longest search text ``q``, as for messages (webapp.message_queries.clean_query).
MAX_QUERY = 200


def search(viewer: User, args: dict[str, Any], max_limit: int = 500) -> tuple[list[LogEntry], int | None]:
    """Entries visible to ``viewer`` matching the filters, newest first; returns (rows, next cursor).

    Filters: ``source``, ``level`` (that level and above), ``account_id``, ``user_id``,
    ``since``, ``until``, ``q`` (text in the message), ``limit``, ``cursor`` (an entry id).
    """
    errors: dict[str, str] = {}
    q = LogEntry.query
    if not viewer.is_admin:
        # A user sees the entries of their own mailboxes (and their own actions on them).
        own = db.session.query(Account.id).filter(Account.user_id == viewer.id)
        q = q.filter(db.or_(LogEntry.account_id.in_(own), LogEntry.user_id == viewer.id))
    source = args.get("source")
    if source:
        valid = {s.value for s in LogSource}
        if source not in valid:
            errors["source"] = "must be one of " + ", ".join(sorted(valid))
        else:
            q = q.filter(LogEntry.source == source)
    level = args.get("level")
    if level:
        order = [lv.value for lv in LogLevel]
        if level not in order:
            errors["level"] = "must be one of " + ", ".join(order)
        else:
            q = q.filter(LogEntry.level.in_(order[order.index(level) :]))
    for key, column in (("account_id", LogEntry.account_id), ("user_id", LogEntry.user_id)):
        value = args.get(key)
        if value not in (None, ""):
            try:
                q = q.filter(column == record_id(value))
            except ValueError as exc:
                errors[key] = str(exc)
    since, until = args.get("since"), args.get("until")
    if since:
        t = _parse_time(since, "since", errors)
        if t:
            q = q.filter(LogEntry.created_at >= t)
    if until:
        t = _parse_time(until, "until", errors)
        if t:
            q = q.filter(LogEntry.created_at <= t)
    text = args.get("q")
    if text and len(text) > MAX_QUERY:  # SQLite refuses a longer LIKE pattern ("too complex"): a 500
        errors["q"] = f"must be at most {MAX_QUERY} characters"
    elif text:
        q = q.filter(LogEntry.message.ilike(f"%{text}%"))
    try:
        limit = int(args.get("limit") or 100)
        if not 1 <= limit <= max_limit:
            raise ValueError
    except (TypeError, ValueError):
        errors["limit"] = f"must be a whole number from 1 to {max_limit}"
        limit = 100
    cursor = args.get("cursor")
    if cursor:
        try:
            q = q.filter(LogEntry.id < record_id(cursor))
        except ValueError:
            errors["cursor"] = "must be the next_cursor of a previous page"
    if errors:
        raise Invalid(errors)
    rows = q.order_by(LogEntry.id.desc()).limit(limit + 1).all()
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_cursor


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
