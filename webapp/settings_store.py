"""Console-wide settings kept in the ``settings`` table as JSON.

The known keys, their defaults and their validators live in :data:`SCHEMA`, so
the admin page, ``PATCH /api/v1/settings`` and the code that reads a setting
agree on what a valid value is.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from typing import Any

from flask_babel import gettext as _

from connectors.i18n import N_
from connectors.settings import ServerParseError, normalize_host

from . import email_log, signature_templates
from .errors import Invalid, Malformed
from .extensions import db
from .models import Account, LogLevel, LogSource, Setting
from .validation import MAX_ID, is_id

#: The email log's line of a change (stored in English, translated when shown: webapp.i18n): the
#: setting's label and its values as a person reads them. Marked before the older, shorter template
#: below, which still translates lines stored with the raw key (``default_outgoing_account_id``).
SETTING_CHANGED = N_('Setting "{setting}" changed from {before} to {after}.')
SETTING_CHANGED_BY_KEY = N_("Setting {key} changed from {before} to {after}.")
#: The labels of the admin page's fields (the same English, so the same translations).
SETTING_LABELS = {
    "allow_manual_entry": N_("Allow entering details of the mailing server manually"),
    "default_incoming_account_id": N_("Default incoming mailbox"),
    "default_outgoing_account_id": N_("Default outgoing mailbox"),
    "allowed_internal_hosts": N_("Internal servers that manual details may reach"),
    "connection_timeout": N_("Connection timeout (seconds)"),
    "sync_interval_minutes": N_("Sync every (minutes)"),
    "company_name": N_("Company name"),
    "central_signature_text": N_("Text signature"),
    "central_signature_html": N_("HTML signature"),
}
VALUE_WORDS = {None: N_("none"), True: N_("yes"), False: N_("no")}


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(_("must be true or false"))


def _account_id(value: Any) -> int | None:
    """A mailbox id (or null to clear), checked to exist."""
    if value is None:
        return None
    if not is_id(value):
        raise ValueError(
            _("must be a mailbox id (a whole number from 1 to %(MAX_ID)s) or null", MAX_ID=MAX_ID)
        )
    if db.session.get(Account, value) is None:
        raise ValueError(_("no such mailbox"))
    return value


def _internal_hosts(value: Any) -> list[str]:
    """Hosts and networks that manual server details may reach although they are internal."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(_('must be a list of host names or networks, e.g. ["127.0.0.1", "10.1.0.0/16"]'))
    out = []
    for item in value:
        item = item.strip()
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
            continue
        except ValueError:
            pass
        try:
            out.append(normalize_host(item))
        except ServerParseError:
            raise ValueError(_("%(item)s is neither a host name nor a network", item=repr(item))) from None
    return out


def _timeout(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 120:
        raise ValueError(_("must be a whole number of seconds from 1 to 120"))
    return value


def _sync_interval(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1440:
        raise ValueError(_("must be a whole number of minutes from 1 to 1440"))
    return value


SCHEMA: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    # When False, "Other" is not offered and server details typed by hand are refused.
    "allow_manual_entry": (True, _bool),
    # The mailboxes the business system reads from and sends through by default.
    "default_incoming_account_id": (None, _account_id),
    "default_outgoing_account_id": (None, _account_id),
    # Internal hosts or networks that hand-typed server details may nevertheless reach.
    "allowed_internal_hosts": ([], _internal_hosts),
    # Seconds a connection test or sync waits for a server.
    "connection_timeout": (15, _timeout),
    # Minutes between periodic syncs of a mailbox (the cron job enqueues those due).
    "sync_interval_minutes": (5, _sync_interval),
    # The company's centralized signature (webapp.signature_templates): {{placeholders}} checked when saved.
    "company_name": ("", signature_templates.clean_company),
    "central_signature_text": ("", signature_templates.clean_text_template),
    "central_signature_html": ("", signature_templates.clean_html_template),
}


def get(key: str) -> Any:
    default, _ = SCHEMA[key]
    row = db.session.get(Setting, key)
    return default if row is None else json.loads(row.value)


def all_settings() -> dict[str, Any]:
    stored = {row.key: json.loads(row.value) for row in Setting.query.all()}
    return {key: stored.get(key, default) for key, (default, _) in SCHEMA.items()}


def update(changes: Any) -> dict[str, Any]:
    """Validate and store ``changes`` (a mapping of key to value); all or nothing."""
    if not isinstance(changes, dict):
        raise Malformed(_("Send a JSON object of settings."))
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in SCHEMA:
            errors[key] = _("unknown setting")
            continue
        try:
            cleaned[key] = SCHEMA[key][1](value)
        except ValueError as exc:
            errors[key] = str(exc)
    if errors:
        raise Invalid(errors)
    before = all_settings()
    for key, value in cleaned.items():
        put(key, value)
        if before.get(key) != value:
            email_log.record(
                LogSource.ADMIN,
                LogLevel.INFO,
                SETTING_CHANGED.format(
                    setting=SETTING_LABELS.get(key, key),
                    before=_shown(key, before.get(key)),
                    after=_shown(key, value),
                ),
            )
    db.session.commit()
    return all_settings()


def _shown(key: str, value: Any) -> str:
    """A value as the log line names it: a mailbox by its address and owner, "none" when unset."""
    if isinstance(value, bool):
        return VALUE_WORDS[value]
    if value is None or value in ([], ""):
        return VALUE_WORDS[None]
    if key.endswith("_account_id"):
        account = db.session.get(Account, value)
        return f"{account.email} ({account.user.username})" if account is not None else f"#{value}"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return f"“{value}”" if isinstance(value, str) else str(value)


def put(key: str, value: Any) -> None:
    """Store one already-validated value (no commit)."""
    row = db.session.get(Setting, key)
    if row is None:
        db.session.add(Setting(key=key, value=json.dumps(value)))
    else:
        row.value = json.dumps(value)
