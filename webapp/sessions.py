"""Server-side page sessions: a signed cookie is not enough, its row must exist and be fresh.

Flask's session cookie is signed, not revocable: a copy taken before logout would keep
working until it expired.  So signing in creates a ``user_sessions`` row and puts only
a random id in the cookie; every request's user is loaded through :func:`user_for_request`,
which accepts the cookie only while that row exists, has not been idle longer than
``SESSION_IDLE_MINUTES`` and is younger than ``SESSION_LIFETIME_DAYS``.  Logout deletes
the row; :func:`end_all` (a password change, disabling the user) deletes every row of the user,
and a disabled user's row is refused even if one were left.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app, request, session
from sqlalchemy import delete, or_

from .extensions import db
from .models import User, UserSession, utcnow

SESSION_KEY = "mailroom_sid"
# last_seen_at is written at most this often: one UPDATE a minute per person, not per request.
TOUCH_EVERY = timedelta(minutes=1)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _limits() -> tuple[timedelta, timedelta]:
    config = current_app.config
    return timedelta(minutes=int(config["SESSION_IDLE_MINUTES"])), timedelta(
        days=int(config["SESSION_LIFETIME_DAYS"])
    )


def _is_stale(row: UserSession, now: datetime) -> bool:
    idle, lifetime = _limits()
    return now - row.last_seen_at > idle or now - row.created_at > lifetime


def start(user: User) -> None:
    """Record a new signed-in browser for ``user`` and put its id in the session cookie.

    Also drops the user's stale rows, so the table does not grow with abandoned browsers.
    """
    now = utcnow()
    idle, lifetime = _limits()
    db.session.execute(
        delete(UserSession).where(
            UserSession.user_id == user.id,
            or_(UserSession.last_seen_at < now - idle, UserSession.created_at < now - lifetime),
        )
    )
    session_id = secrets.token_urlsafe(32)
    db.session.add(
        UserSession(
            session_hash=_hash(session_id),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            ip=(request.remote_addr or "")[:64] or None,
            user_agent=(request.user_agent.string or "")[:255] or None,
        )
    )
    db.session.commit()
    session[SESSION_KEY] = session_id


def _current_row() -> UserSession | None:
    session_id = session.get(SESSION_KEY)
    if not isinstance(session_id, str) or not session_id:
        return None
    return UserSession.query.filter_by(session_hash=_hash(session_id)).first()


def user_for_request(user_id: str) -> User | None:
    """Flask-Login's user loader: the user only if this cookie's session row is alive.

    A remember-me cookie alone carries no session id, so it cannot bring a session back.
    """
    row = _current_row()
    if row is None or str(row.user_id) != str(user_id):
        return None
    now = utcnow()
    if _is_stale(row, now):
        db.session.delete(row)
        db.session.commit()
        return None
    user = db.session.get(User, row.user_id)
    if user is None or user.is_disabled:  # disabling deletes the rows; this is the second lock
        db.session.delete(row)
        db.session.commit()
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        db.session.commit()
    return user


def end() -> None:
    """Logout: delete this browser's row, so any copy of its cookie stops working at once."""
    row = _current_row()
    if row is not None:
        db.session.delete(row)
        db.session.commit()
    session.pop(SESSION_KEY, None)


def end_all(user: User) -> int:
    """Delete every session of ``user`` (all browsers signed out); return how many. No commit."""
    result = db.session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    return result.rowcount or 0
