"""Aruba PEC: Italian certified email (posta elettronica certificata) on pec.it and hosted domains."""

from __future__ import annotations

from connectors.i18n import N_
from connectors.plugins import hookimpl
from connectors.presets import Endpoint, ServicePreset
from connectors.settings import Security, ServerSettings
from plugins._common import concerns

KEY = "aruba_pec"
HOSTS = ("imaps.pec.aruba.it", "smtps.pec.aruba.it", "pop3s.pec.aruba.it")

PRESET = ServicePreset(
    key=KEY,
    name="Aruba PEC",
    imap=Endpoint("imaps.pec.aruba.it", 993, Security.TLS),
    smtp=Endpoint("smtps.pec.aruba.it", 465, Security.TLS),
    pop3=Endpoint("pop3s.pec.aruba.it", 995, Security.TLS),
    domains=("pec.it",),
    mx_suffixes=("pec.aruba.it",),
    hints=(
        N_("PEC is certified mail: every message sent brings acceptance and delivery receipts back "
        "into the inbox, and it has legal value only when the recipient is a PEC address too."),
        N_("Certified messages can only be sent through smtps.pec.aruba.it; Bcc is not allowed."),
        N_("A new Aruba PEC mailbox receives only certified mail; receiving ordinary mail is switched "
        "on in Webmail PEC."),
        N_("With two-step verification on, mail apps need the dedicated password generated in Webmail PEC."),
    ),
    help_url="https://guide.pec.it/",
)


@hookimpl
def mailroom_service_presets() -> list[ServicePreset]:
    return [PRESET]


@hookimpl
def mailroom_diagnosis_hints(
    error_class: str, protocol: str, service_key: str | None, settings: ServerSettings | None
) -> list[str]:
    if not concerns(service_key, settings, KEY, HOSTS):
        return []
    if error_class == "auth":
        return [
            N_("With two-step verification on, Aruba PEC needs the dedicated mail-app password generated "
            "in Webmail PEC, and IMAP/POP3/SMTP must not be disabled there (they are on by default).")
        ]
    if error_class == "protocol" and protocol == "smtp":
        return [
            N_("Aruba PEC refuses messages whose sender is not the mailbox address itself, and messages "
            "with Bcc recipients.")
        ]
    return []
