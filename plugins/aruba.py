"""Aruba mail (ordinary mailboxes on aruba.it and on domains hosted at Aruba)."""

from __future__ import annotations

from connectors.i18n import N_
from connectors.plugins import hookimpl
from connectors.presets import Endpoint, ServicePreset
from connectors.settings import Security, ServerSettings
from plugins._common import concerns

KEY = "aruba"
HOSTS = ("imaps.aruba.it", "smtps.aruba.it", "pop3s.aruba.it")

PRESET = ServicePreset(
    key=KEY,
    name="Aruba Mail",
    imap=Endpoint("imaps.aruba.it", 993, Security.TLS),
    smtp=Endpoint("smtps.aruba.it", 465, Security.TLS),
    pop3=Endpoint("pop3s.aruba.it", 995, Security.TLS),
    domains=("aruba.it",),
    # Aruba PEC's mx.pec.aruba.it is more specific and wins (see find_by_mx).
    mx_suffixes=("aruba.it",),
    hints=(
        N_("Sign in with the full email address and the mailbox password, not the Aruba customer-area password."),
    ),
    help_url="https://guide.hosting.aruba.it/email/",
)


@hookimpl
def mailroom_service_presets() -> list[ServicePreset]:
    return [PRESET]


@hookimpl
def mailroom_diagnosis_hints(
    error_class: str, protocol: str, service_key: str | None, settings: ServerSettings | None
) -> list[str]:
    if concerns(service_key, settings, KEY, HOSTS) and error_class == "auth":
        return [
            N_("Aruba wants the full email address as user name and the mailbox's own password "
            "(changeable at webmail.aruba.it), not the password of the Aruba customer area.")
        ]
    return []
