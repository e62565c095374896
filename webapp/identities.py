"""Who may send as what: a mailbox's aliases, shared senders, and the sender's profile.

The same rules serve the pages and ``/api/v1``: an alias is a valid address,
unique per mailbox (409) and not the mailbox's own address; only an
administrator shares a mailbox for sending, and each change is in the email
log (source "Admin").  Sharing is for sending only: message visibility
(webapp.message_queries) never looks at ``shared_sender``.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from connectors.i18n import N_

from . import email_log
from .errors import Conflict, Invalid, Malformed, NotFound
from .extensions import db
from .models import Account, Alias, LogLevel, LogSource, User
from .signatures import render_preview
from .validation import email as clean_email
from .validation import text

PROFILE_FIELDS = {"first_name": 120, "last_name": 120, "job_title": 120, "phone": 64}


# -- aliases ------------------------------------------------------------------------------------

#: The email log's lines (stored in English, translated when shown: webapp.i18n).
LOG_LINES = {
    "alias_added": N_("Alias {alias} added to {email}."),
    "alias_removed": N_("Alias {alias} removed from {email}."),
    "shared": N_("Mailbox {email} ({user}) is now shared for sending with every user."),
    "not_shared": N_("Mailbox {email} ({user}) is no longer shared for sending."),
}


def aliases_of(account: Account) -> list[Alias]:
    return Alias.query.filter_by(account_id=account.id).order_by(Alias.address).all()


def clean_alias(account: Account, data: Any) -> dict:
    if not isinstance(data, dict):
        raise Malformed(_("Send a JSON object."))
    errors: dict[str, str] = {}
    out: dict[str, str] = {}
    for key in set(data) - {"address", "display_name"}:
        errors[key] = _("unknown field")
    try:
        address = text(data.get("address"), max_length=320)
        out["address"] = clean_email(address).lower()
    except ValueError as exc:
        errors["address"] = str(exc)
    try:
        out["display_name"] = text(data.get("display_name"), required=False, max_length=320) or ""
    except ValueError as exc:
        errors["display_name"] = str(exc)
    if "address" in out and out["address"] in {
        (account.email or "").lower(),
        (account.smtp_from or "").lower(),
    }:
        errors["address"] = _("This is the mailbox's own address; an alias is another address it may send as.")
    if errors:
        raise Invalid(errors)
    return out


def add_alias(account: Account, cleaned: dict) -> Alias:
    if Alias.query.filter_by(account_id=account.id, address=cleaned["address"]).first() is not None:
        raise Conflict(
            _("This mailbox has that alias already."), {"address": "already an alias of this mailbox"}
        )
    alias = Alias(account_id=account.id, address=cleaned["address"], display_name=cleaned["display_name"])
    db.session.add(alias)
    email_log.record(
        LogSource.EMAIL_LOGGER,
        LogLevel.INFO,
        LOG_LINES["alias_added"].format(alias=alias.address, email=account.email),
        account=account,
    )
    try:
        db.session.commit()
    except IntegrityError:  # the same alias added at the same moment by another request
        db.session.rollback()
        raise Conflict(
            _("This mailbox has that alias already."), {"address": "already an alias of this mailbox"}
        ) from None
    return alias


def get_alias(account: Account, alias_id: int) -> Alias:
    alias = db.session.get(Alias, alias_id)
    if alias is None or alias.account_id != account.id:
        raise NotFound(_("No such alias."))
    return alias


def delete_alias(account: Account, alias: Alias) -> None:
    email_log.record(
        LogSource.EMAIL_LOGGER,
        LogLevel.INFO,
        LOG_LINES["alias_removed"].format(alias=alias.address, email=account.email),
        account=account,
    )
    db.session.delete(alias)
    db.session.commit()


def alias_as_dict(alias: Alias) -> dict:
    return {
        "id": alias.id,
        "account_id": alias.account_id,
        "address": alias.address,
        "display_name": alias.display_name,
        "created_at": alias.created_at.isoformat() + "Z" if alias.created_at else None,
    }


# -- shared senders -----------------------------------------------------------------------------


def set_shared_sender(account: Account, shared: bool) -> None:
    """Mark or unmark (no commit); the caller has checked that an administrator asks."""
    if bool(account.shared_sender) == shared:
        return
    account.shared_sender = shared
    email_log.record(
        LogSource.ADMIN,
        LogLevel.INFO,
        LOG_LINES["shared" if shared else "not_shared"].format(email=account.email, user=account.user.username),
        account=account,
    )


def shared_senders() -> list[Account]:
    return Account.query.filter(Account.shared_sender.is_(True)).order_by(Account.email).all()


# -- sender profile -----------------------------------------------------------------------------


def clean_profile(data: Any) -> dict:
    if not isinstance(data, dict):
        raise Malformed(_("Send a JSON object."))
    errors: dict[str, str] = {}
    out: dict[str, str] = {}
    for key in set(data) - set(PROFILE_FIELDS):
        errors[key] = _("unknown field")
    for key, max_length in PROFILE_FIELDS.items():
        if key not in data:
            continue
        try:
            out[key] = text(data[key], required=False, max_length=max_length) or ""
        except ValueError as exc:
            errors[key] = str(exc)
    if out.get("phone") and not all(c.isdigit() or c in " +-./()" for c in out["phone"]):
        errors["phone"] = _("may contain digits, spaces and + - . / ( ) only")
    if errors:
        raise Invalid(errors)
    return out


def update_profile(user: User, cleaned: dict) -> User:
    for key, value in cleaned.items():
        setattr(user, key, value)
    db.session.commit()
    return user


def profile_as_dict(user: User) -> dict:
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        **{key: getattr(user, key) or "" for key in PROFILE_FIELDS},
        "central_signature_preview": render_preview(user),
    }
