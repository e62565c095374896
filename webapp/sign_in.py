"""Checking a console sign-in (page and API alike): throttling, constant-time answers, safe redirects.

Order matters for cost: an address over its limit and a locked account are refused
*before* any password hash is computed, so a crowd of guessers costs one Redis round
trip each and cannot slow the page for everyone else.  An unknown name is checked
against a dummy hash, so it takes as long as a wrong password and gets the same
sentence: the answer does not tell which names exist.  Unknown names are counted and
locked like real ones for the same reason.

A disabled user is told so only after the right password (the same single hash check as
any attempt, so it takes as long as a wrong one); with a wrong password they get the
usual sentence, so the refusal reveals nothing a successful sign-in would not.  A right
password stored under an older hash method or cost is re-hashed then (webapp/passwords.py).
"""

from __future__ import annotations

import secrets
from functools import cache
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _

from connectors.i18n import N_

from . import email_log, passwords, throttle
from .extensions import db
from .models import LogLevel, LogSource, User, utcnow

WRONG_PASSWORD = "Wrong username or password."
MAX_USERNAME = 150  # the column's width; a longer name cannot exist


class SignInRefused(Exception):
    """A refused sign-in: the sentence for the person, the HTTP status and, if throttled, Retry-After."""

    def __init__(self, message: str, status: int = 401, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


@cache
def _dummy_hash() -> str:
    """A hash made the same way as users' (same method and cost), computed once per process."""
    return passwords.hash_password(secrets.token_urlsafe(16))


def _duration(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _locked_sentence(seconds: int) -> str:
    return (
        f"This account is locked for {_duration(seconds)} after too many failed sign-ins. "
        "Try again later, or ask an administrator to unlock it."
    )


def _find_user(username: str) -> User | None:
    # A name that cannot be in the column (too long, control characters such as NUL, which
    # PostgreSQL refuses in text) is simply unknown: no query, same answer, same cost.
    if len(username) > MAX_USERNAME or any(ord(c) < 32 for c in username):
        return None
    return User.query.filter_by(username=username).first()


def _password_matches(user: User | None, password: str) -> bool:
    if user is None:
        passwords.verify(_dummy_hash(), password)  # the same work as a real check
        return False
    return user.check_password(password)


#: The email log's line of a lock (stored in English, translated when shown: webapp.i18n).
#: The longer one first: a shown text is matched against the templates in this order.
LOCKED_LINES = {
    "no_user": N_(
        "Sign-in locked for {minutes} min: {failures} failed attempts for the name {name!r} (no such user), "
        "the last from {address}."
    ),
    "user": N_(
        "Sign-in locked for {minutes} min: {failures} failed attempts for the name {name!r}, the last from {address}."
    ),
}


def _log_lockout(username: str, user: User | None, address: str, seconds: int) -> None:
    failures = current_app.config["SIGN_IN_ACCOUNT_FAILURES"]
    email_log.record(
        LogSource.ADMIN,
        LogLevel.WARNING,
        LOCKED_LINES["user" if user else "no_user"].format(
            minutes=max(1, -(-seconds // 60)), failures=failures, name=username[:MAX_USERNAME], address=address
        ),
        user=user,
        details={"username": username[:MAX_USERNAME], "address": address, "lock_seconds": seconds},
        created_by="system",
        commit=True,
    )


def sign_in(username: str, password: str, address: str) -> User:
    """The user if ``password`` is right and nothing is throttled; else raise SignInRefused."""
    username = username.strip()
    retry_after = throttle.address_retry_after(address)
    if retry_after:
        raise SignInRefused(
            f"Too many failed sign-ins from your address; try again in {_duration(retry_after)}.",
            429,
            retry_after,
        )
    locked_for = throttle.account_locked_for(username)
    if locked_for:
        throttle.record_failure(username, address, count_account=False)
        raise SignInRefused(_locked_sentence(locked_for), 429, locked_for)
    user = _find_user(username)
    if _password_matches(user, password):
        if user.is_disabled:
            raise SignInRefused(disabled_sentence(), 403)
        throttle.record_success(username)
        _signed_in(user, password)
        return user
    locked_for = throttle.record_failure(username, address)
    if locked_for:
        _log_lockout(username, user, address, locked_for)
        raise SignInRefused(_locked_sentence(locked_for), 429, locked_for)
    raise SignInRefused(WRONG_PASSWORD, 401)


def disabled_sentence() -> str:
    return _("This account is disabled. Ask an administrator to enable it.")


def _signed_in(user: User, password: str) -> None:
    """Note the time and, while the password is at hand, bring an old hash up to the current method."""
    user.last_sign_in_at = utcnow()
    if passwords.needs_rehash(user.password_hash):
        user.set_password(password)
    db.session.commit()


# Browsers drop these before parsing a URL: C0 controls and space at the ends,
# tab/CR/LF anywhere (WHATWG URL standard); they also read "\" as "/".
_EDGE = "".join(chr(c) for c in range(0x21))
_INSIDE = str.maketrans({"\t": None, "\r": None, "\n": None, "\\": "/"})


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site as a browser would read it, else None.

    The check runs on what the browser will see, so ``/%09/evil.example`` (tab
    dropped, giving ``//evil.example``) and ``/\\evil`` are refused.
    """
    if not target:
        return None
    cleaned = target.strip(_EDGE).translate(_INSIDE)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in cleaned):
        return None
    try:
        parts = urlsplit(cleaned)
    except ValueError:
        return None
    # urlsplit reads "///evil" as an empty host and path "/evil"; a browser goes to evil.
    if parts.scheme or parts.netloc or not cleaned.startswith("/") or cleaned.startswith("//"):
        return None
    return cleaned
