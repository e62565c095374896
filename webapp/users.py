"""Console users: creating them, the first administrator, and password changes.

Used by the sign-in pages' neighbours (profile, admin) and by ``mailroom users``; the
sign-in check itself is :mod:`webapp.sign_in`, the session rows :mod:`webapp.sessions`.
"""

from __future__ import annotations

import secrets

from . import sessions
from .extensions import db
from .models import Role, User


def _check_password_rules(password: str) -> None:
    if len(password) < 8:
        raise ValueError("the password must be at least 8 characters")


def create_user(username: str, password: str, admin: bool = False) -> User:
    if not username or not username.strip():
        raise ValueError("the username is empty")
    _check_password_rules(password)
    if User.query.filter_by(username=username.strip()).first():
        raise ValueError(f"a user named {username!r} exists already")
    user = User(username=username.strip(), role=(Role.ADMIN if admin else Role.USER).value)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def ensure_admin(password: str | None) -> str | None:
    """On a first start with no users, create ``admin``; return the generated password, if one was."""
    if db.session.query(User.id).first() is not None:
        return None
    generated = None
    if not password:
        password = generated = secrets.token_urlsafe(12)
    create_user("admin", password, admin=True)
    return generated


def change_password(user: User, new_password: str) -> int:
    """Set a new password and sign ``user`` out everywhere; return how many sessions ended.

    Every page or command that changes a password goes through here, so a browser
    signed in with the old password (perhaps someone else's) stops working at once.
    A page changing the person's own password signs them in again afterwards.
    API tokens are separate credentials and stay (revoke them with ``tokens revoke``).
    """
    _check_password_rules(new_password)
    user.set_password(new_password)
    ended = sessions.end_all(user)
    db.session.commit()
    return ended
