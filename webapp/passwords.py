"""Console passwords: werkzeug's scrypt hashing, the minimum length, and upgrading old hashes.

The method is ``PASSWORD_HASH_METHOD`` (``MAILROOM_PASSWORD_HASH``, default werkzeug's
``scrypt``, n=2**15, r=8, p=1: memory-hard, from a library that is kept up to date).  A
stored hash records its method and parameters before the first ``$``; when they differ from
the configured ones (an old ``pbkdf2:sha256:…`` hash, or scrypt with other costs) the hash is
replaced at the next successful sign-in, when the password is at hand (:mod:`webapp.sign_in`).
"""

from __future__ import annotations

from functools import cache

from flask import current_app
from flask_babel import gettext as _
from werkzeug.security import check_password_hash, generate_password_hash

from .errors import Invalid

DEFAULT_METHOD = "scrypt"
DEFAULT_MIN_LENGTH = 12
#: Longer input is refused before hashing: nobody types more, and it bounds the work per guess.
MAX_LENGTH = 1024


def _method() -> str:
    return current_app.config.get("PASSWORD_HASH_METHOD") or DEFAULT_METHOD


@cache
def _prefix(method: str) -> str:
    """What werkzeug writes before the salt for ``method`` (``scrypt`` -> ``scrypt:32768:8:1``)."""
    return generate_password_hash("x", method=method).split("$", 1)[0]


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=_method())


def verify(stored_hash: str, password: str) -> bool:
    try:
        return check_password_hash(stored_hash, password)
    except (ValueError, TypeError):  # an unreadable stored hash matches nothing
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when ``stored_hash`` was made with another method or other costs than configured."""
    return stored_hash.split("$", 1)[0] != _prefix(_method())


def min_length() -> int:
    return int(current_app.config.get("PASSWORD_MIN_LENGTH") or DEFAULT_MIN_LENGTH)


def problem(password: object) -> str | None:
    """The sentence saying why ``password`` cannot be a new password, or None when it can."""
    if not isinstance(password, str) or not password:
        return _("Enter a password.")
    if len(password) < min_length():
        return _("The password must be at least %(count)d characters long.", count=min_length())
    if len(password) > MAX_LENGTH:
        return _("The password must be at most %(count)d characters long.", count=MAX_LENGTH)
    if password != password.strip():
        return _("The password must not start or end with a space.")
    return None


def check(password: object, field: str = "password") -> str:
    """``password`` if it may be a new password, else Invalid naming ``field``."""
    message = problem(password)
    if message:
        raise Invalid({field: message}, message)
    return password  # type: ignore[return-value]
