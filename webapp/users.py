"""Console users: create, list, disable and enable, roles, and password changes.

Pages (Administration › Users, My profile › Password), the API (``/api/v1/users``) and
``mailroom users`` all go through these functions, so a rule holds whatever the door:

* :func:`update_user` is the one place that changes a user's role or disabled state, and
  it refuses to leave the console without an active administrator (the last one can be
  neither demoted nor disabled) and refuses an administrator disabling themselves.
* Disabling ends the user's page sessions at once (their rows are deleted); their API
  tokens are refused while disabled (:mod:`webapp.api_tokens`), their mailboxes are no
  longer picked by cron or ``mailroom idle`` (:mod:`webapp.jobs.due`,
  :mod:`webapp.jobs.idle`), and their waiting messages are held, not sent
  (:mod:`webapp.send_holds`). Nothing is deleted: enabling gives it all back (a held message
  whose time passed waits for its owner to send, edit or cancel it).
* Every password change goes through :func:`change_password`: the rules of
  :mod:`webapp.passwords`, then every session of the user ends.

The sign-in check itself is :mod:`webapp.sign_in`, the session rows :mod:`webapp.sessions`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from connectors.i18n import N_

from . import email_log, passwords, send_holds, sessions
from .errors import Conflict, Invalid, NotFound
from .extensions import db
from .models import Account, ApiToken, LogLevel, LogSource, Role, User, UserSession, utcnow

MAX_USERNAME = 150  # the column's width
#: Characters a new username may hold besides letters and digits (names appear in URLs and logs).
USERNAME_EXTRA = set("._-@+")
#: The email log's lines of users' changes (stored in English, translated when shown).
LOG_LINES = {
    "admin": N_("User {user} made an administrator by {who}."),
    "not_admin": N_("User {user} no longer an administrator by {who}."),
    "disabled": N_("User {user} disabled by {who}."),
    "enabled": N_("User {user} enabled by {who}."),
    "own_password": N_("User {user} changed their password."),
    "password_reset": N_("Password of {user} reset by {who}."),
    "cli": N_("the command line"),
}


@dataclass
class UserRow:
    """A row of Administration › Users: the user and how many mailboxes they have."""

    user: User
    mailboxes: int


# -- lookups -----------------------------------------------------------------------------------


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id) if 0 < user_id < 2**31 else None
    if user is None:
        raise NotFound(_("No such user."))
    return user


def user_named(username: str) -> User | None:
    return User.query.filter_by(username=username).first()


def list_users() -> list[UserRow]:
    """Every user by name, with their mailbox count (one query)."""
    counts = select(Account.user_id, func.count(Account.id).label("n")).group_by(Account.user_id).subquery()
    rows = db.session.execute(
        select(User, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.user_id == User.id)
        .order_by(func.lower(User.username), User.id)
    )
    return [UserRow(user, int(n)) for user, n in rows]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def as_dict(user: User, mailboxes: int | None = None) -> dict[str, Any]:
    """What an administrator sees of a user (never a password hash)."""
    if mailboxes is None:
        mailboxes = Account.query.filter_by(user_id=user.id).count()
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "admin": user.is_admin,
        "state": "disabled" if user.is_disabled else "active",
        "disabled_at": _iso(user.disabled_at),
        "last_sign_in_at": _iso(user.last_sign_in_at),
        "created_at": _iso(user.created_at),
        "mailboxes": mailboxes,
    }


# -- creating ----------------------------------------------------------------------------------


def clean_username(value: object) -> str:
    """A new user's name: 1-150 letters, digits and ``. _ - @ +``; Invalid names ``username``."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid({"username": _("Enter a username.")})
    name = value.strip()
    if len(name) > MAX_USERNAME:
        raise Invalid(
            {"username": _("The username must be at most %(count)d characters.", count=MAX_USERNAME)}
        )
    if not all(c.isalnum() or c in USERNAME_EXTRA for c in name):
        raise Invalid({"username": _("Use only letters, digits and . _ - @ + in a username (no spaces).")})
    return name


def create_user(username: str, password: str, admin: bool = False, confirm: str | None = None) -> User:
    """A new user; Invalid names the field (``username``, ``password``, ``confirm``), Conflict if taken.

    ``confirm``, when given, must equal ``password`` (the forms and a piped ``users create``).
    """
    errors: dict[str, str] = {}
    try:
        name = clean_username(username)
    except Invalid as exc:
        name, errors = None, dict(exc.fields)
    errors.update(_new_password_problems(password, confirm))
    if name is not None and user_named(name) is not None:
        taken = _("A user named %(name)s exists already.", name=name)
        if not errors:
            raise Conflict(taken, {"username": taken})
        errors["username"] = taken
    if errors:
        raise Invalid(errors)
    user = User(username=name, role=(Role.ADMIN if admin else Role.USER).value)
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:  # the same name created at the same moment by another request
        db.session.rollback()
        message = _("A user named %(name)s exists already.", name=name)
        raise Conflict(message, {"username": message}) from None
    return user


def ensure_admin(password: str | None) -> str | None:
    """On a first start with no users, create ``admin``; return the generated password, if one was."""
    if db.session.query(User.id).first() is not None:
        return None
    generated = None
    if not password:
        password = generated = secrets.token_urlsafe(18)
    create_user("admin", password, admin=True)
    return generated


# -- passwords ---------------------------------------------------------------------------------


def _new_password_problems(password: object, confirm: str | None, field: str = "password") -> dict[str, str]:
    """Everything wrong with a new password and its repetition at once, each under its field, so a
    form names every mistake in one answer (a short password and a differing repetition)."""
    errors: dict[str, str] = {}
    problem = passwords.problem(password)
    if problem:
        errors[field] = problem
    if confirm is not None and confirm != password:
        errors["confirm"] = _("The two passwords differ; type the same password twice.")
    return errors


def change_password(
    user: User, new_password: str, confirm: str | None = None, field: str = "password"
) -> int:
    """Set a new password and sign ``user`` out everywhere; return how many sessions ended.

    Every page, API call and command that changes a password goes through here, so a
    browser signed in with the old password (perhaps someone else's) stops working at once.
    A page changing the person's own password signs them in again afterwards.
    API tokens are separate credentials and stay (revoke them on the API tokens page).
    """
    errors = _new_password_problems(new_password, confirm, field)
    if errors:
        raise Invalid(errors)
    user.set_password(new_password)
    ended = sessions.end_all(user)
    db.session.commit()
    return ended


def change_own_password(user: User, current: str, new_password: str, confirm: str | None = None) -> int:
    """A person's own change, with the current password; Invalid names every field that is wrong
    (``current_password``, ``new_password``, ``confirm``) in one answer."""
    errors = _new_password_problems(new_password, confirm, "new_password")
    if not isinstance(current, str) or not user.check_password(current):
        errors["current_password"] = _("The current password is not right.")
    elif new_password == current:
        errors["new_password"] = _("The new password must differ from the current one.")
    if errors:
        raise Invalid(errors)
    ended = change_password(user, new_password, confirm, field="new_password")
    _log_password(user, LOG_LINES["own_password"].format(user=user.username), user.username)
    return ended


def reset_password(
    user: User, new_password: str, confirm: str | None = None, actor: User | None = None
) -> int:
    """An administrator's (or the command line's) reset of ``user``'s password; logged."""
    ended = change_password(user, new_password, confirm)
    who = actor.username if actor is not None else LOG_LINES["cli"]
    message = LOG_LINES["password_reset"].format(user=user.username, who=who)
    _log_password(user, message, actor.username if actor else "cli")
    return ended


def _log_password(user: User, message: str, created_by: str) -> None:
    email_log.record(LogSource.ADMIN, LogLevel.INFO, message, user=user, created_by=created_by, commit=True)


# -- role and state: the one place ---------------------------------------------------------------


def last_active_admin_id() -> int | None:
    """The one active administrator when there is only one: the users page does not offer them
    "Make user", which :func:`update_user` would refuse."""
    query = select(User.id).where(User.role == Role.ADMIN.value, User.disabled_at.is_(None)).limit(2)
    ids = list(db.session.execute(query).scalars())
    return ids[0] if len(ids) == 1 else None


def _active_admin_ids() -> set[int]:
    # FOR UPDATE: two administrators demoting each other at once on PostgreSQL cannot both pass
    # the check (SQLite serialises writers anyway and ignores the clause).
    query = select(User.id).where(User.role == Role.ADMIN.value, User.disabled_at.is_(None)).with_for_update()
    return set(db.session.execute(query).scalars())


def update_user(
    user: User, *, admin: bool | None = None, disabled: bool | None = None, actor: User | None = None
) -> User:
    """Change ``user``'s role and/or disabled state; the rules of the module docstring hold.

    ``actor`` is the administrator doing it (None: the command line). Raises Conflict (409)
    naming the field (``admin`` or ``disabled``) when the change is refused.
    """
    was_active_admin = user.is_admin and not user.is_disabled
    becomes_active_admin = (user.is_admin if admin is None else admin) and not (
        user.is_disabled if disabled is None else disabled
    )
    field = "disabled" if disabled else "admin"
    if disabled and actor is not None and actor.id == user.id:
        raise Conflict(_("You cannot disable your own account."), {field: _("You cannot disable yourself.")})
    if was_active_admin and not becomes_active_admin and _active_admin_ids() <= {user.id}:
        message = _(
            "%(name)s is the last active administrator; make another user an administrator first.",
            name=user.username,
        )
        raise Conflict(message, {field: message})
    changes = _apply(user, admin, disabled)
    if changes:
        _log(user, actor, changes)
    db.session.commit()
    return user


def _apply(user: User, admin: bool | None, disabled: bool | None) -> list[str]:
    changes = []
    if admin is not None and admin != user.is_admin:
        user.role = (Role.ADMIN if admin else Role.USER).value
        changes.append("admin" if admin else "not_admin")
    if disabled is not None and disabled != user.is_disabled:
        user.disabled_at = utcnow() if disabled else None
        if disabled:
            sessions.end_all(user)  # every browser signed out at once
            send_holds.hold_all(user)  # nothing more goes out; the send job checks too
        else:
            send_holds.release_all(user)  # what is still to come goes at its time
        changes.append("disabled" if disabled else "enabled")
    return changes


def _log(user: User, actor: User | None, changes: list[str]) -> None:
    """One line per change (a whole sentence each, so each language can word it)."""
    who = actor.username if actor is not None else LOG_LINES["cli"]
    for change in changes:
        email_log.record(
            LogSource.ADMIN,
            LogLevel.INFO,
            LOG_LINES[change].format(user=user.username, who=who),
            user=user,
            details={"changes": changes},
            created_by=actor.username if actor is not None else "cli",
        )


def disable_user(user: User, actor: User | None = None) -> User:
    return update_user(user, disabled=True, actor=actor)


def enable_user(user: User, actor: User | None = None) -> User:
    return update_user(user, disabled=False, actor=actor)


def set_admin(user: User, admin: bool, actor: User | None = None) -> User:
    return update_user(user, admin=admin, actor=actor)


@dataclass
class DisableImpact:
    """What disabling a user stops, for the confirmation page."""

    sessions: int
    tokens: int
    mailboxes: int


def disable_impact(user: User) -> DisableImpact:
    now = utcnow()
    return DisableImpact(
        sessions=UserSession.query.filter_by(user_id=user.id).count(),
        tokens=ApiToken.query.filter(
            ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None), ApiToken.expires_at > now
        ).count(),
        mailboxes=Account.query.filter_by(user_id=user.id, active=True).count(),
    )


def owner_enabled():
    """SQL condition on ``Account``: its user is not disabled.

    Cron's due query (:mod:`webapp.jobs.due`) and ``mailroom idle`` (:mod:`webapp.jobs.idle`)
    add it, so a disabled user's mailboxes are neither synced nor watched; the subquery is
    empty (and cheap) while nobody is disabled.
    """
    return Account.user_id.notin_(select(User.id).where(User.disabled_at.is_not(None)))


# -- the API's bodies --------------------------------------------------------------------------


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = {key: _("unknown field") for key in set(body) - allowed}
    if unknown:
        raise Invalid(unknown)


def _flag(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise Invalid({key: _("must be true or false")})
    return value


def create_from_body(body: dict[str, Any]) -> User:
    """``POST /users``: ``username``, ``password``, optional ``admin``."""
    _only(body, {"username", "password", "admin"})
    admin = _flag(body, "admin") or False
    return create_user(body.get("username"), body.get("password"), admin=admin)  # type: ignore[arg-type]


def update_from_body(user: User, body: dict[str, Any], actor: User) -> User:
    """``PATCH /users/<id>``: ``admin`` and/or ``disabled`` (booleans)."""
    _only(body, {"admin", "disabled"})
    return update_user(user, admin=_flag(body, "admin"), disabled=_flag(body, "disabled"), actor=actor)


def password_from_body(user: User, body: dict[str, Any], own: bool, actor: User | None = None) -> int:
    """An administrator's reset (``password``) or one's own change (``current_password`` too)."""
    if own:
        _only(body, {"current_password", "new_password"})
        return change_own_password(user, body.get("current_password"), body.get("new_password"))  # type: ignore[arg-type]
    _only(body, {"password"})
    return reset_password(user, body.get("password"), actor=actor)  # type: ignore[arg-type]
