"""Users' mailboxes: connect, edit, remove, choose the main one.

Rules that both the connect form and ``/api/v1/accounts`` follow: a hidden
service cannot take a new mailbox; hand-typed servers are refused while the
administrator forbids them; a password is encrypted before it is stored and
an empty password on edit keeps the stored one; exactly one mailbox per user
is the main one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func

from connectors.i18n import N_

from . import account_states, address_guard, email_log, settings_store, signatures, validation
from .errors import Conflict, Forbidden, Invalid, Malformed, NotFound
from .extensions import db
from .i18n import translate_stored
from .identities import set_shared_sender
from .models import Account, LogLevel, LogSource, Notification, Service, User
from .secretbox import box
from .service_catalog import PROTOCOLS, sync_builtin_services
from .validation import SKIP, Rule, boolean, email, endpoint_from_json, text

CREATE_FIELDS = {
    "service_id",
    "manual",
    "username",
    "password",
    "email",
    "description",
    "is_main",
    "active",
    "debug",
    "push",
    "verify_certificate",
    "incoming_protocol",
    "pop3_leave_on_server",
    "shared_sender",
    "signature_mode",
    "signature_text",
    "signature_html",
    "smtp_requires_auth",
    "smtp_username",
    "smtp_password",
    "smtp_from",
}
FLAGS = ("active", "debug", "push", "verify_certificate", "smtp_requires_auth", "pop3_leave_on_server")

#: The email log's lines (stored in English, translated when shown: webapp.i18n).
LOG_LINES = {
    "connected_manual": N_("Mailbox {email} connected through server details entered manually."),
    "connected_service": N_('Mailbox {email} connected through the service "{service}".'),
    "default_incoming_removed": N_(
        "The default incoming mailbox {email} was removed; there is no default incoming mailbox now."
    ),
    "default_outgoing_removed": N_(
        "The default outgoing mailbox {email} was removed; there is no default outgoing mailbox now."
    ),
    "removed": N_("Mailbox {email} removed."),
}


def clean_account(user: User, data: Any, existing: Account | None = None, actor: User | None = None) -> dict:
    """Validate API-shaped input; ``manual`` is ``{"imap": {...}, "smtp": {...}}``.

    ``actor`` is who asks (``user`` is the owner): only an administrator may set ``shared_sender``.
    The fields' rules are the table :data:`ACCOUNT_FIELDS`; where the mail comes from (a service
    or hand-typed servers) and the signature fields have steps of their own.
    """
    if not isinstance(data, dict):
        raise Malformed(_("Send a JSON object."))
    errors: dict[str, str] = {key: "unknown field" for key in set(data) - CREATE_FIELDS - {"id", "state"}}
    out: dict[str, Any] = {}
    creating = existing is None
    if creating or "service_id" in data or "manual" in data:
        _clean_source(data, existing, out, errors)
    context = _Context(creating=creating, actor=actor)
    validation.clean_fields(ACCOUNT_FIELDS, data, context, creating, out, errors)
    _push_needs_imap(existing, out, errors)

    out.update(signatures.clean_account_fields(data, existing, errors))
    if creating and "username" in out and not out.get("email") and not _typed_email(data):
        _email_from_login(out, errors)
    if errors:
        raise Invalid(errors)
    return out


def _push_needs_imap(existing: Account | None, out: dict, errors: dict[str, str]) -> None:
    """Push is IMAP IDLE (``mailroom idle``): a POP3 mailbox cannot have it."""
    protocol = out.get("incoming_protocol") or (existing.incoming_protocol if existing else "imap")
    if out.get("push", existing.push if existing else False) and protocol == "pop3" and "push" not in errors:
        errors["push"] = _("Push needs IMAP (IDLE); this mailbox reads its mail with POP3.")


def _clean_source(data: dict, existing: Account | None, out: dict, errors: dict[str, str]) -> None:
    """Exactly one of ``service_id`` (a visible service) and ``manual`` (if the administrator allows it)."""
    has_service = data.get("service_id") is not None
    has_manual = data.get("manual") is not None
    if has_service and has_manual:
        errors["service_id"] = _("Give either service_id or manual server details, not both.")
    elif not has_service and not has_manual:
        errors["service_id"] = _("Choose a mail service, or enter the server details (manual).")
    elif has_service:
        _clean_service(data["service_id"], existing, out, errors)
    else:
        _clean_manual(data["manual"], out, errors)


def _clean_service(sid: Any, existing: Account | None, out: dict, errors: dict[str, str]) -> None:
    if not validation.is_id(sid):
        errors["service_id"] = _("must be an id (a whole number from 1 to %(MAX_ID)s)", MAX_ID=validation.MAX_ID)
        return
    sync_builtin_services()
    service = db.session.get(Service, sid)
    if service is None:
        errors["service_id"] = _("No such mail service.")
    elif service.hidden and (existing is None or existing.service_id != service.id):
        raise Forbidden(
            _("This mail service is not offered for new mailboxes."), {"service_id": "hidden service"}
        )
    else:
        out["service"] = service


def _clean_manual(manual: Any, out: dict, errors: dict[str, str]) -> None:
    if not settings_store.get("allow_manual_entry"):
        raise Forbidden(
            _("The administrator does not allow entering server details manually."),
            {"manual": "manual server details are not allowed"},
        )
    if not isinstance(manual, dict):
        errors["manual"] = _('must be an object {"imap": {...}, "smtp": {...}}')
        return
    for key in set(manual) - {*PROTOCOLS, "pop3"}:
        errors[f"manual.{key}"] = _("unknown field")
    eps: dict[str, dict | None] = {}
    for p in (*PROTOCOLS, "pop3"):
        if p == "pop3" and manual.get(p) is None:
            continue  # POP3 is optional
        sub: dict[str, str] = {}
        eps[p] = endpoint_from_json(p, manual.get(p), sub)
        errors.update({f"manual.{k}": v for k, v in sub.items()})
    # The address guard the connection test applies, as far as it goes without resolving names.
    refused = address_guard.refused_on_save({p: ep for p, ep in eps.items() if f"manual.{p}" not in errors})
    errors.update({f"manual.{k}": v for k, v in refused.items()})
    if all(eps.values()) and not refused:
        out["manual"] = eps


def _typed_email(data: dict) -> bool:
    """Whether the body holds an email text, valid or not: then the login does not stand in for it."""
    try:
        return bool(text(data.get("email"), required=False, max_length=320))
    except ValueError:
        return False


def _email_from_login(out: dict, errors: dict[str, str]) -> None:
    """A new mailbox without an email address takes its login, when the login is an address."""
    if "@" in (out["username"] or ""):
        try:
            out["email"] = email(out["username"])
            return
        except ValueError:
            pass
    errors["email"] = _("The login is not an email address; enter the email address.")


@dataclass(frozen=True)
class _Context:
    creating: bool
    actor: User | None


def _password(value: Any, context: _Context) -> Any:
    if value in (None, "") and not context.creating:
        return SKIP  # an empty password on edit keeps the stored one
    if not isinstance(value, str) or value == "":
        raise ValueError(_("This field is required."))
    if len(value) > 1024:
        raise ValueError(_("must be at most 1024 characters"))
    return value


def _optional_email(value: Any, _context: _Context) -> str | None:
    value = text(value, required=False, max_length=320)
    return email(value) if value else value


def _shared_sender(value: Any, context: _Context) -> bool:
    if context.actor is None or not context.actor.is_admin:
        raise Forbidden(
            _("Only an administrator may share a mailbox for sending."),
            {"shared_sender": "only an administrator may change this"},
        )
    return boolean(value)


def _incoming_protocol(value: Any, _context: _Context) -> str:
    if value not in ("imap", "pop3"):
        raise ValueError(_("must be imap or pop3"))
    return value


def _smtp_password(value: Any, _context: _Context) -> Any:
    if value is not None and not isinstance(value, str):
        raise ValueError(_("must be a string"))
    return value or SKIP  # empty: keep the stored one (or none)


def _flag(value: Any, _context: _Context) -> bool:
    return boolean(value)


#: Field -> its rule (webapp.validation.Rule): what the connect form and the API accept, in the
#: order the errors are found. ``service_id``/``manual`` and the signature fields have steps of their own.
ACCOUNT_FIELDS: dict[str, Rule] = {
    "username": Rule(lambda v, _c: text(v, max_length=320), on_create=True),
    "password": Rule(_password, on_create=True),
    "email": Rule(_optional_email),
    "description": Rule(lambda v, _c: text(v, required=False, max_length=255)),
    **{key: Rule(_flag) for key in ("is_main", *FLAGS)},
    "shared_sender": Rule(_shared_sender),
    "incoming_protocol": Rule(_incoming_protocol),
    "smtp_username": Rule(lambda v, _c: text(v, required=False, max_length=320)),
    "smtp_password": Rule(_smtp_password),
    "smtp_from": Rule(_optional_email),
}


def _duplicate(
    user: User, username: str, service: Service | None, manual: dict | None, exclude: int | None
) -> bool:
    q = Account.query.filter(Account.user_id == user.id, func.lower(Account.username) == username.lower())
    if exclude is not None:
        q = q.filter(Account.id != exclude)
    if service is not None:
        q = q.filter(Account.service_id == service.id)
    else:
        q = q.filter(Account.manual.is_(True), Account.imap_host == manual["imap"]["host"])
    return db.session.query(q.exists()).scalar()


def _apply(account: Account, cleaned: dict) -> None:
    if "service" in cleaned:
        service = cleaned["service"]
        account.service = service
        account.service_name = service.name
        account.manual = False
        for proto in (*PROTOCOLS, "pop3"):
            account.set_endpoint(proto, None)
        account_states.reconnected(account)
    elif "manual" in cleaned:
        account.service = None
        account.service_name = None
        account.manual = True
        for proto in (*PROTOCOLS, "pop3"):
            account.set_endpoint(proto, cleaned["manual"].get(proto))
        account_states.reconnected(account)
    for key in ("username", "email"):
        if cleaned.get(key):
            setattr(account, key, cleaned[key])
    if "description" in cleaned:
        account.description = cleaned["description"] or account.username
    if "password" in cleaned:
        account.password_encrypted = box().encrypt(cleaned["password"])
    if "smtp_password" in cleaned:
        account.smtp_password_encrypted = box().encrypt(cleaned["smtp_password"])
    for key in (*FLAGS, "incoming_protocol", "smtp_username", "smtp_from"):
        if key in cleaned:
            setattr(account, key, cleaned[key])
    for key in ("signature_mode", "signature_text", "signature_html"):
        if key in cleaned:
            setattr(account, key, cleaned[key])
    if "active" in cleaned:
        if not cleaned["active"]:
            account_states.turned_off(account)
        else:
            account_states.turned_on(account)


def _check_incoming(account: Account) -> None:
    if account.incoming_protocol == "pop3" and account.server("pop3") is None and not account.service_removed:
        raise Invalid({"incoming_protocol": _("No POP3 server is known for this mailbox; add one or use IMAP.")})


def _set_main(user: User, account: Account) -> None:
    """Move the main mark to ``account``; the unique index sees one main at every flush."""
    for other in Account.query.filter(
        Account.user_id == user.id, Account.is_main.is_(True), Account.id != account.id
    ):
        other.is_main = False
    db.session.flush()
    account.is_main = True


def create_account(user: User, cleaned: dict) -> Account:
    service, manual = cleaned.get("service"), cleaned.get("manual")
    if _duplicate(user, cleaned["username"], service, manual, None):
        raise Conflict(_("This mailbox is connected already."), {"username": "already connected"})
    account = Account(user_id=user.id, username=cleaned["username"], email=cleaned["email"], is_main=False)
    account.description = cleaned.get("description") or cleaned["username"]
    _apply(account, cleaned)
    _check_incoming(account)
    db.session.add(account)
    db.session.flush()
    first = Account.query.filter_by(user_id=user.id).count() == 1
    if first or cleaned.get("is_main"):
        _set_main(user, account)
    if "shared_sender" in cleaned:
        set_shared_sender(account, cleaned["shared_sender"])
    line = LOG_LINES["connected_manual"] if account.manual else LOG_LINES["connected_service"]
    email_log.record(
        LogSource.EMAIL_LOGGER,
        LogLevel.INFO,
        line.format(email=account.email, service=account.service_name),
        account=account,
    )
    db.session.commit()
    return account


def update_account(account: Account, cleaned: dict, *, commit: bool = True) -> Account:
    """Apply an edit.  ``commit=False`` leaves the commit to the caller: the edit of a working
    mailbox whose new connection settings are tried first (webapp/jobs/edit_trial.py) puts the
    working ones back before its one commit, so no sync or send ever reads untested settings."""
    user = account.user
    service = cleaned.get("service", account.service if not cleaned.get("manual") else None)
    manual = cleaned.get("manual") or ({"imap": account.endpoint("imap")} if account.manual else None)
    username = cleaned.get("username", account.username)
    if (service is not None or manual) and _duplicate(user, username, service, manual, account.id):
        raise Conflict(_("This mailbox is connected already."), {"username": "already connected"})
    _apply(account, cleaned)
    _check_incoming(account)
    if "shared_sender" in cleaned:
        set_shared_sender(account, cleaned["shared_sender"])
    if cleaned.get("is_main"):
        _set_main(user, account)
    elif cleaned.get("is_main") is False and account.is_main:
        raise Invalid({"is_main": _("Choose another mailbox as the main one instead; one must stay main.")})
    if commit:
        db.session.commit()
    return account


def delete_account(account: Account) -> None:
    user, was_main = account.user, account.is_main
    for key, role in (
        ("default_incoming_account_id", "incoming"),
        ("default_outgoing_account_id", "outgoing"),
    ):
        if settings_store.get(key) == account.id:
            settings_store.put(key, None)
            email_log.record(
                LogSource.ADMIN,
                LogLevel.WARNING,
                LOG_LINES[f"default_{role}_removed"].format(email=account.email),
                user=user,
            )
    email_log.record(
        LogSource.EMAIL_LOGGER, LogLevel.INFO, LOG_LINES["removed"].format(email=account.email), user=user
    )
    db.session.delete(account)
    db.session.flush()
    if was_main:
        successor = Account.query.filter_by(user_id=user.id).order_by(Account.id).first()
        if successor is not None:
            successor.is_main = True
    db.session.commit()


def get_account(user: User, account_id: int) -> Account:
    """An account the user may see: their own (an administrator's API may see all)."""
    account = db.session.get(Account, account_id)
    if account is None or (account.user_id != user.id and not user.is_admin):
        raise NotFound(_("No such mailbox."))
    return account


def password(account: Account) -> str | None:
    """The decrypted password, for the connectors only; never rendered or logged."""
    return box().decrypt(account.password_encrypted) if account.password_encrypted else None


def unread_notifications(user: User) -> list[Notification]:
    return Notification.query.filter_by(user_id=user.id, read_at=None).order_by(Notification.created_at).all()


def account_as_dict(account: Account) -> dict:
    return {
        "id": account.id,
        "user": account.user.username,
        "service_id": account.service_id,
        "service_name": account.service.name if account.service else account.service_name,
        "manual": account.manual,
        "imap": account.server("imap"),
        "smtp": account.server("smtp"),
        "username": account.username,
        "email": account.email,
        "description": account.description,
        "is_main": account.is_main,
        "state": account.state,
        "last_error": translate_stored(account.last_error) or None,
        "last_error_at": account.last_error_at.isoformat() + "Z" if account.last_error_at else None,
        "has_password": bool(account.password_encrypted),
        "auth_method": account.auth_method,
        "oauth_expires_at": account.oauth_expires_at.isoformat() + "Z" if account.oauth_expires_at else None,
        "pop3": account.server("pop3"),
        "incoming_protocol": account.incoming_protocol,
        "pop3_leave_on_server": account.pop3_leave_on_server,
        "shared_sender": account.shared_sender,
        "signature_mode": account.signature_mode,
        "signature_text": account.signature_text,
        "signature_html": account.signature_html,
        "active": account.active,
        "debug": account.debug,
        "push": account.push,
        "verify_certificate": account.verify_certificate,
        "smtp_requires_auth": account.smtp_requires_auth,
        "smtp_username": account.smtp_username,
        "has_smtp_password": bool(account.smtp_password_encrypted),
        "smtp_from": account.smtp_from,
        "last_checked_at": account.last_checked_at.isoformat() + "Z" if account.last_checked_at else None,
        "last_check": json.loads(account.last_check) if account.last_check else None,
        "last_synced_at": _iso(account.last_synced_at),
        "last_sync_error": account.last_sync_error,
        "next_sync_at": _iso(account.next_sync_at),
    }


def _iso(moment) -> str | None:
    """A stored UTC time as the API writes times (ISO 8601 with ``Z``), or None."""
    return moment.isoformat() + "Z" if moment else None
