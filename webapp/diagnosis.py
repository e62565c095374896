"""A connection test's diagnosis in the words of the person who reads it.

The taxonomy (``connectors.errors``) names a failing field by id (``imap.security``) and gives
the fix a server's owner would make.  Who reads it decides what helps:

* the owner of a hand-typed mailbox ("Other") can change every field: the hint stays, the field
  is named by the connect form's own label ("IMAP server", "Connection protection");
* a mailbox on an administrator's service cannot change the service's host, port, protection or
  certificate trust: the hint says "Ask your administrator to …" instead, and no field of the
  mailbox's form is pointed at;
* the administrator testing the service gets the admin-side fix, in the service form's labels.

The job stores the explained report, so the page, the mailbox row and the API say the same.
"""

from __future__ import annotations

import enum
import re

from flask_babel import lazy_pgettext

from connectors.errors import VARIANT_HINTS
from connectors.i18n import N_

from .forms import SERVER_FIELDS


class Audience(str, enum.Enum):
    OWNER = "owner"  # a hand-typed server: the mailbox's owner changes every field
    SERVICE_USER = "service_user"  # a mailbox on an administrator's service
    ADMIN = "admin"  # the administrator testing the service itself


#: Field ids of the taxonomy -> the form field that holds them, per form.
_CONNECT_FIELDS = {
    "imap.host": "imap_server",
    "imap.port": "imap_server",
    "imap.security": "imap_security",
    "smtp.host": "smtp_server",
    "smtp.port": "smtp_server",
    "smtp.security": "smtp_use_tls",
    "pop3.host": "pop3_server",
    "pop3.port": "pop3_server",
    "pop3.security": "pop3_security",
    "password": "password",
    "smtp_requires_auth": "smtp_requires_auth",
}
#: The service form, and the password of its test dialog ("password" was shown as the raw key).
_SERVICE_FIELDS = {
    key: value
    for key, value in _CONNECT_FIELDS.items()
    if key.startswith(("imap.", "smtp.")) or key == "password"
}
#: Fields that are not on a form but still name something on the page.
_OTHER_LABELS = {"oauth2": N_("Sign in again"), "folder": N_("Folders")}
#: Classes whose fix is the service's (host, port, protection, certificate trust).
_SERVICE_SIDE = re.compile(r"^(imap|smtp|pop3)\.(host|port|security)$")
#: What to ask the administrator, per class (whole sentences: each is one catalogue entry, and a
#: stored hint is translated when shown by matching these templates; see webapp/i18n.py).
_ASK_PORT = N_(
    'Ask your administrator to check the {proto} server and port of the mail service "{service}". '
    "This is a setting of the service, not of your mailbox."
)
_ASK = {
    "certificate": N_(
        "Ask your administrator to add the certificate of the authority that issued the {proto} server's "
        'certificate to the mail service "{service}" (or have the server\'s certificate renewed). '
        "This is a setting of the service, not of your mailbox."
    ),
    "dns": N_(
        'Ask your administrator to check the {proto} server name of the mail service "{service}". '
        "This is a setting of the service, not of your mailbox."
    ),
    "unreachable": N_(
        'Ask your administrator to check the {proto} server name of the mail service "{service}" and that '
        "this machine can reach it. This is a setting of the service, not of your mailbox."
    ),
    "refused": _ASK_PORT,
    "timeout": _ASK_PORT,
    "protocol": _ASK_PORT,
}
_ASK_SECURITY = N_(
    "Ask your administrator to check the {proto} connection protection (TLS or STARTTLS) and port of the "
    'mail service "{service}". This is a setting of the service, not of your mailbox.'
)
#: The admin-side fix for an untrusted certificate: the service's own trust setting.
_ADMIN_CERT_HINT = N_(
    "If the server uses a certificate from your company's own authority, or a self-signed one, paste "
    "that authority's certificate into \"CA certificate\" in this service's settings (or, not "
    'recommended, tick "Do not verify the certificate").'
)


def field_label(field: str, audience: Audience | str = Audience.OWNER) -> str:
    """``imap.host`` -> ``IMAP server``: the label of the form the reader fills in."""
    fields = _SERVICE_FIELDS if Audience(audience) is Audience.ADMIN else _CONNECT_FIELDS
    name = fields.get(field)
    if name is not None:
        return str(SERVER_FIELDS[name].args[0])  # a lazy label: English in a job, translated when shown
    return _OTHER_LABELS.get(field, field)


#: A connection test's steps (``connectors`` names them in code) as the chips on the page say them.
STEP_LABELS = {
    "connect": lazy_pgettext("connection step", "connect"),
    "tls": lazy_pgettext("connection step", "TLS"),
    "capabilities": lazy_pgettext("connection step", "capabilities"),
    "login": lazy_pgettext("connection step", "login"),
    "ehlo": lazy_pgettext("connection step", "EHLO greeting"),
    "list": lazy_pgettext("connection step", "folder list"),
    "stat": lazy_pgettext("connection step", "mailbox status"),
}


def step_label(name: str) -> str:
    """``capabilities`` -> it "funzionalità": a step's name in the reader's language (else as is)."""
    label = STEP_LABELS.get(name)
    return str(label) if label is not None else name


def form_words(text: str) -> str:
    """The protection choices as the forms write them ("No", not the enum's "None")."""
    return re.sub(r"\bNone\b", '"No"', text)


def explain(error: dict, audience: Audience | str, service_name: str | None = None) -> dict:
    """The error dict of a check report, with ``field_label``, ``fix_by`` and hints for ``audience``."""
    audience = Audience(audience)
    out = dict(error)
    field = error.get("field") or ""
    service_side = bool(_SERVICE_SIDE.match(field)) or error.get("class") == "certificate"
    out["audience"] = audience.value
    if audience is Audience.SERVICE_USER and service_side:
        return _for_service_user(out, service_name or "")
    out["fix_by"] = "administrator" if audience is Audience.ADMIN else "you"
    out["message"] = form_words(error.get("message", ""))
    out["hints"] = [form_words(h) for h in _admin_hints(error, audience)]
    out["field_label"] = field_label(field, audience) if field else ""
    return out


def _admin_hints(error: dict, audience: Audience) -> list[str]:
    hints = list(error.get("hints") or [])
    if audience is not Audience.ADMIN:
        return hints
    trust = {VARIANT_HINTS["self_signed"], VARIANT_HINTS["untrusted"]}
    return [_ADMIN_CERT_HINT if hint in trust else hint for hint in hints]


def _for_service_user(out: dict, service_name: str) -> dict:
    """Nothing on the mailbox's form fixes a service setting: say whom to ask, and what."""
    protocol = (out.get("protocol") or "").upper()
    ask = _ASK_SECURITY if out["field"].endswith(".security") else _ASK.get(out.get("class"), _ASK["refused"])
    # The class sentence states the fact; a detail may carry an instruction meant for the
    # service's owner ("choose TLS instead of STARTTLS"), except the certificate variants.
    if out.get("class") != "certificate":
        out["message"] = out.get("sentence") or out.get("message", "")
    out["hints"] = [ask.format(proto=protocol, service=service_name)]
    out["field_label"] = ""
    out["fix_by"] = "administrator"
    return out


def explain_summary(summary: dict, audience: Audience | str, service_name: str | None = None) -> dict:
    """A connection test summary with every failed check explained for ``audience``."""
    summary["audience"] = Audience(audience).value
    for check in summary.get("checks", {}).values():
        if check.get("error"):
            check["error"] = explain(check["error"], audience, service_name)
    return summary
