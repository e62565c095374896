"""The administrator's list of mail services: built-in presets and corporate servers.

Built-in services come from the plugins' ``mailroom_service_presets`` hook and
are mirrored into the ``services`` table (by preset key) so that accounts,
the hidden flag and the API treat both kinds alike.  Only corporate servers
can be edited or deleted; any service can be hidden.
"""

from __future__ import annotations

import re
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from connectors import plugins as plugin_registry
from connectors.i18n import N_

from . import account_states, email_log, mailbox_usability, service_trust
from .errors import Conflict, Forbidden, Invalid, Malformed, NotFound
from .extensions import db
from .models import Account, LogLevel, LogSource, Notification, Service, ServiceKind, utcnow
from .validation import boolean, endpoint_from_json, is_id, text

PROTOCOLS = ("imap", "smtp")
#: A corporate server's own trust setting (webapp.service_trust).
TRUST_FIELDS = ("ca_certificate", "verify_certificate")
#: What an administrator may change on a built-in service (its servers belong to the plugin).
BUILTIN_EDITABLE = {"hidden", "max_connections"}
#: ``max_connections``: a cap on concurrent connections, from 1 to this (webapp.jobs.connection_slots).
MAX_CONNECTIONS = 1000


def sync_builtin_services(force: bool = False) -> None:
    """Mirror the plugins' presets into the services table (once per app unless forced)."""
    flag = "mailroom.builtin_synced"
    if current_app.extensions.get(flag) and not force:
        return
    presets = plugin_registry.service_presets()
    existing = {s.key: s for s in Service.query.filter(Service.key.isnot(None))}
    for preset in presets:
        service = existing.get(preset.key)
        if service is None:
            name = preset.name
            if _name_taken(name):
                name = f"{preset.name} (built-in)"
            service = Service(key=preset.key, kind=ServiceKind.BUILTIN.value, name=name)
            db.session.add(service)
        for proto in ("imap", "smtp", "pop3"):
            ep = getattr(preset, proto, None)
            service.set_endpoint(
                proto, {"host": ep.host, "port": ep.port, "security": ep.security.value} if ep else None
            )
    db.session.commit()
    current_app.extensions[flag] = True


def preset_for(service: Service | None):
    if service is None or not service.key:
        return None
    return next((p for p in plugin_registry.service_presets() if p.key == service.key), None)


def _name_taken(name: str, exclude_id: int | None = None) -> bool:
    q = select(Service.id).where(func.lower(Service.name) == name.lower())
    if exclude_id is not None:
        q = q.where(Service.id != exclude_id)
    return db.session.execute(q).first() is not None


def list_services(include_hidden: bool = True) -> list[Service]:
    sync_builtin_services()
    q = Service.query
    if not include_hidden:
        q = q.filter(Service.hidden.is_(False))
    services = q.all()
    # Built-in providers first, in plugin order, then corporate servers by name.
    order = {p.key: i for i, p in enumerate(plugin_registry.service_presets())}
    return sorted(
        services, key=lambda s: (0, order.get(s.key, 999), "") if s.is_builtin else (1, 0, s.name.lower())
    )


def get_service(service_id: Any) -> Service:
    sync_builtin_services()
    service = db.session.get(Service, service_id) if is_id(service_id) else None
    if service is None:
        raise NotFound(_("No such mail service."))
    return service


def clean_service(data: Any, existing: Service | None = None) -> dict:
    """Validate API input for a corporate server; with ``existing``, fields may be left out."""
    if not isinstance(data, dict):
        raise Malformed(_("Send a JSON object."))
    sync_builtin_services()  # built-in names must be known before a new name is checked
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    allowed = {"name", "imap", "smtp", "hidden", "id", "kind", "max_connections", *TRUST_FIELDS}
    for key in set(data) - allowed:
        errors[key] = _("unknown field")
    taken = None
    if existing is None or "name" in data:
        try:
            out["name"] = text(data.get("name"), max_length=120)
            if _name_taken(out["name"], existing.id if existing else None):
                taken = Conflict(_("A service with this name exists already."), {"name": "already in use"})
        except ValueError as exc:
            errors["name"] = str(exc)
    for proto in PROTOCOLS:
        if existing is None or proto in data:
            ep = endpoint_from_json(proto, data.get(proto), errors)
            if ep:
                out[proto] = ep
    if "hidden" in data:
        try:
            out["hidden"] = boolean(data["hidden"])
        except ValueError as exc:
            errors["hidden"] = str(exc)
    out.update(_clean_trust(data, errors))
    if "max_connections" in data:
        try:
            out["max_connections"] = clean_max_connections(data["max_connections"])
        except ValueError as exc:
            errors["max_connections"] = str(exc)
    if errors and taken:  # a taken name is said together with the other fields' errors
        errors["name"] = taken.message
    if errors:
        raise Invalid(errors)
    if taken:
        raise taken
    return out


def clean_max_connections(value: Any) -> int | None:
    """None or empty: no cap of our own (the provider plugin's default applies); else 1..1000.

    A whole number of connections; a whole number as text is accepted (the admin form sends text),
    signed too, so that ``-5`` is told the range rather than "not a whole number"."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(_("Max connections must be a whole number, or empty for the provider's default."))
    if not 1 <= value <= MAX_CONNECTIONS:
        raise ValueError(_("Max connections must be between 1 and %(MAX_CONNECTIONS)s.", MAX_CONNECTIONS=MAX_CONNECTIONS))
    return value


def _clean_trust(data: dict, errors: dict[str, str]) -> dict:
    """The service's own trust setting: CA certificate(s) as PEM, and "do not verify"."""
    out: dict[str, Any] = {}
    if "ca_certificate" in data:
        try:
            out["ca_certificate"] = service_trust.clean_ca_certificate(data["ca_certificate"])
        except ValueError as exc:
            errors["ca_certificate"] = _("CA certificate: %(exc)s", exc=exc)
    if "verify_certificate" in data:
        try:
            out["verify_certificate"] = boolean(data["verify_certificate"])
        except ValueError as exc:
            errors["verify_certificate"] = str(exc)
    return out


def create_service(cleaned: dict) -> Service:
    service = Service(
        kind=ServiceKind.CORPORATE.value,
        name=cleaned["name"],
        hidden=cleaned.get("hidden", False),
        ca_certificate=cleaned.get("ca_certificate"),
        verify_certificate=cleaned.get("verify_certificate", True),
        max_connections=cleaned.get("max_connections"),
    )
    for proto in PROTOCOLS:
        service.set_endpoint(proto, cleaned[proto])
    db.session.add(service)
    email_log.record(
        LogSource.ADMIN, LogLevel.INFO, LOG_LINES["added"].format(service=service.name, servers=_describe(service))
    )
    db.session.commit()
    return service


def _describe(service: Service) -> str:
    return "; ".join(
        f"{p.upper()} {ep['host']}:{ep['port']} {ep['security']}"
        for p in PROTOCOLS
        if (ep := service.endpoint(p))
    )


def update_service(service: Service, cleaned: dict) -> Service:
    """Apply changes; accounts read the service at each connection, so nobody reconnects."""
    if service.is_builtin and set(cleaned) - BUILTIN_EDITABLE:
        raise Forbidden(
            _("Built-in services are maintained by their plugin; only hiding them and their "
            "max_connections can be changed."),
            {k: "cannot be changed on a built-in service" for k in set(cleaned) - BUILTIN_EDITABLE},
        )
    if "name" in cleaned:
        service.name = cleaned["name"]
        # Keep the name accounts remember in step, so a later removal names it right.
        for account in service.accounts:
            account.service_name = cleaned["name"]
    for proto in PROTOCOLS:
        if proto in cleaned:
            service.set_endpoint(proto, cleaned[proto])
    _apply_trust(service, cleaned)
    _apply_limit(service, cleaned)
    changed = [key for key in ("name", *PROTOCOLS) if key in cleaned]
    if changed:
        email_log.record(
            LogSource.ADMIN,
            LogLevel.INFO,
            LOG_LINES["changed"].format(
                service=service.name, servers=_describe(service), count=len(service.accounts)
            ),
        )
    if "hidden" in cleaned and cleaned["hidden"] != service.hidden:
        service.hidden = cleaned["hidden"]
        email_log.record(
            LogSource.ADMIN,
            LogLevel.INFO,
            LOG_LINES["hidden" if service.hidden else "shown"].format(service=service.name),
        )
    db.session.commit()
    return service


def _apply_trust(service: Service, cleaned: dict) -> None:
    """Store a changed trust setting and say in the log what every mailbox of the service now trusts."""
    before = (service.ca_certificate, service.verify_certificate)
    for key in TRUST_FIELDS:
        if key in cleaned:
            setattr(service, key, cleaned[key])
    if (service.ca_certificate, service.verify_certificate) == before:
        return
    if not service.verify_certificate:
        what, level = LOG_LINES["not_verified"], LogLevel.WARNING
    elif service.ca_certificate:
        what = LOG_LINES["own_ca"].format(certificates=", ".join(service_trust.summary(service.ca_certificate)))
        level = LogLevel.INFO
    else:
        what, level = LOG_LINES["system_ca"], LogLevel.INFO
    email_log.record(
        LogSource.ADMIN,
        level,
        LOG_LINES["trust"].format(service=service.name, what=what, count=len(service.accounts)),
    )


def _apply_limit(service: Service, cleaned: dict) -> None:
    if "max_connections" not in cleaned or cleaned["max_connections"] == service.max_connections:
        return
    service.max_connections = cleaned["max_connections"]
    what = (
        LOG_LINES["at_most"].format(count=service.max_connections)
        if service.max_connections
        else LOG_LINES["default_limit"]
    )
    email_log.record(LogSource.ADMIN, LogLevel.INFO, LOG_LINES["limit"].format(service=service.name, what=what))


def affected_accounts(service: Service) -> list[Account]:
    return Account.query.filter_by(service_id=service.id).order_by(Account.user_id, Account.id).all()


def delete_service(service: Service) -> list[Account]:
    """Delete a corporate server; its accounts stay, marked as having lost their service."""
    if service.is_builtin:
        raise Forbidden(_("Built-in services cannot be deleted; hide them instead."))
    accounts = affected_accounts(service)
    now = utcnow()
    message = SERVICE_REMOVED.format(service=service.name)
    for account in accounts:
        account.service_name = service.name
        account.service_id = None
        account_states.service_removed(account, message, now)
        db.session.add(
            Notification(
                user_id=account.user_id,
                account_id=account.id,
                kind="service_removed",
                message=_removal_note(account, service.name),
            )
        )
        email_log.record(LogSource.ADMIN, LogLevel.WARNING, message, account=account)
    email_log.record(
        LogSource.ADMIN,
        LogLevel.WARNING,
        SERVER_DELETED.format(service=service.name, count=len(accounts)),
    )
    db.session.delete(service)
    db.session.commit()
    return accounts


#: Stored in English (the admin's language is not the owner's) and translated when shown: these are
#: the templates webapp.i18n.translate_stored matches the stored text against.
SERVICE_REMOVED = N_(
    'The mail service "{service}" was removed by an administrator; this mailbox cannot connect any more.'
)
#: The email log's lines of the administrators' changes (stored in English, translated when shown).
LOG_LINES = {
    "added": N_('Added the corporate server "{service}" ({servers}).'),
    "changed": N_(
        'Changed the mail service "{service}": {servers}; '
        "{count} connected mailbox(es) use it from their next connection."
    ),
    "hidden": N_('Hid the mail service "{service}" from the connect form.'),
    "shown": N_('Unhid the mail service "{service}" in the connect form.'),
    "trust": N_(
        'Changed the trust setting of "{service}": {what}; '
        "{count} connected mailbox(es) use it from their next connection."
    ),
    "not_verified": N_("certificates are NOT verified"),
    "own_ca": N_("certificates are verified against its CA certificate(s) {certificates}"),
    "system_ca": N_("certificates are verified against the system's authorities"),
    "limit": N_('Changed the connection limit of "{service}": {what}.'),
    "at_most": N_("at most {count} connection(s) at once to its server"),
    "default_limit": N_("the provider's default connection limit"),
}
SERVER_DELETED = N_('Deleted the corporate server "{service}"; {count} mailbox(es) lost their service.')
REMOVAL_NOTE = N_(
    'Your mailbox {email} stopped working: the mail service "{service}" was removed by an administrator. '
    "Messages synced before stay available; connect the mailbox again through another service to resume."
)
REMOVAL_NOTE_WAITING = N_(
    'Your mailbox {email} stopped working: the mail service "{service}" was removed by an administrator. '
    "Messages synced before stay available; connect the mailbox again through another service to resume. "
    "{count} message(s) waiting to go from it can no longer be sent: {waiting}. Open each to choose "
    "another From."
)


def _removal_note(account: Account, service_name: str) -> str:
    """What the owner reads: the mailbox stopped, and which of its messages can no longer go."""
    waiting = mailbox_usability.waiting_messages(account)
    if waiting:
        return REMOVAL_NOTE_WAITING.format(
            email=account.email,
            service=service_name,
            count=len(waiting),
            waiting=mailbox_usability.describe_waiting(waiting),
        )
    return REMOVAL_NOTE.format(email=account.email, service=service_name)


def service_as_dict(service: Service) -> dict:
    return {
        "id": service.id,
        "name": service.name,
        "kind": service.kind,
        "key": service.key,
        "hidden": service.hidden,
        "imap": service.endpoint("imap"),
        "smtp": service.endpoint("smtp"),
        "pop3": service.endpoint("pop3"),
        "ca_certificate": service.ca_certificate,
        "verify_certificate": service.verify_certificate,
        "max_connections": service.max_connections,
        "accounts": len(service.accounts),
    }
