"""API bearer tokens: issue (shown once), check, list and revoke; each has a name and an expiry.

Only a token's SHA-256 is stored.  A token is refused once ``expires_at`` has passed
(``TOKEN_DAYS`` after issue unless asked otherwise), once it is revoked, and while its user
is disabled; the refusal says which, so a client knows to ask for a new one rather than retry.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _

from . import validation
from .errors import Invalid, NotFound
from .extensions import db
from .models import ApiToken, User, utcnow

MAX_DAYS = 3650
# last_used_at is written at most this often, not on every API call.
TOUCH_EVERY = timedelta(minutes=1)


class TokenRefused(Exception):
    """A token that exists but may no longer be used; the message says why."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def issue(user: User, name: str = "", days: int | None = None) -> tuple[str, ApiToken]:
    """A new token for ``user`` and its row; the token itself is never stored, so show it once."""
    token = "mr_" + secrets.token_urlsafe(32)
    days = days or int(current_app.config["TOKEN_DAYS"])
    row = ApiToken(
        user_id=user.id,
        token_hash=_hash(token),
        name=name,
        expires_at=utcnow() + timedelta(days=days),
    )
    db.session.add(row)
    db.session.commit()
    return token, row


def issue_token(user: User, name: str = "", days: int | None = None) -> str:
    return issue(user, name, days)[0]


def authenticate(token: str) -> User | None:
    """The user of a usable token; None for an unknown one; TokenRefused if expired or revoked."""
    row = ApiToken.query.filter_by(token_hash=_hash(token)).first()
    if row is None:
        return None
    now = utcnow()
    if row.revoked_at is not None:
        raise TokenRefused(f"This API token was revoked on {_when(row.revoked_at)}; create a new one.")
    if row.expires_at <= now:
        raise TokenRefused(f"This API token expired on {_when(row.expires_at)}; create a new one.")
    if row.user.is_disabled:  # kept, not revoked: it works again once the user is enabled
        raise TokenRefused("The user of this API token is disabled; ask an administrator to enable it.")
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        row.last_used_at = now
        db.session.commit()
    return row.user


def user_for_token(token: str) -> User | None:
    """The user of a usable token, or None (unknown, expired or revoked)."""
    try:
        return authenticate(token)
    except TokenRefused:
        return None


def tokens_of(user: User) -> list[ApiToken]:
    return ApiToken.query.filter_by(user_id=user.id).order_by(ApiToken.id).all()


def revoke(token_id: int, owner: User | None = None) -> ApiToken:
    """Revoke a token (again is a no-op); with ``owner``, another user's token is 'not found'."""
    # An id beyond the column's range is simply unknown (SQLite would overflow, not answer).
    row = db.session.get(ApiToken, token_id) if 0 < token_id < 2**31 else None
    if row is None or (owner is not None and row.user_id != owner.id):
        raise NotFound(_("No such API token."))
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        db.session.commit()
    return row


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def as_dict(row: ApiToken) -> dict[str, Any]:
    """What the owner may see of a token: never the secret (it is not even stored)."""
    now = utcnow()
    return {
        "id": row.id,
        "name": row.name,
        "created_at": _iso(row.created_at),
        "last_used_at": _iso(row.last_used_at),
        "expires_at": _iso(row.expires_at),
        "revoked_at": _iso(row.revoked_at),
        "active": row.revoked_at is None and row.expires_at > now,
    }


def clean_options(body: dict[str, Any]) -> tuple[str, int | None]:
    """The optional ``name`` and ``days`` of a token request; Invalid names the bad field."""
    errors: dict[str, str] = {}
    name, days = "", body.get("days")
    try:
        name = validation.text(body.get("name"), required=False, max_length=100) or ""
    except ValueError as exc:
        errors["name"] = str(exc)
    if days is not None and (
        isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS
    ):
        errors["days"] = _("must be a whole number of days between 1 and %(MAX_DAYS)s", MAX_DAYS=MAX_DAYS)
    if errors:
        raise Invalid(errors)
    return name, days
