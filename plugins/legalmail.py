"""Legalmail: InfoCert's PEC (certified email) service."""

from __future__ import annotations

from connectors.i18n import N_
from connectors.plugins import hookimpl
from connectors.presets import Endpoint, ServicePreset
from connectors.settings import Security, ServerSettings
from plugins._common import concerns

KEY = "legalmail"
HOSTS = ("mbox.cert.legalmail.it", "sendm.cert.legalmail.it")

PRESET = ServicePreset(
    key=KEY,
    name="Legalmail PEC (InfoCert)",
    imap=Endpoint("mbox.cert.legalmail.it", 993, Security.TLS),
    smtp=Endpoint("sendm.cert.legalmail.it", 465, Security.TLS),
    pop3=Endpoint("mbox.cert.legalmail.it", 995, Security.TLS),
    domains=("legalmail.it",),
    mx_suffixes=("cert.legalmail.it",),
    hints=(
        N_("Sign in with the user ID InfoCert gave you at registration, not with the PEC address."),
        N_("PEC is certified mail: each message sent brings acceptance and delivery receipts back into the inbox."),
        N_("Legalmail sends at most 6 messages a minute per mailbox, and its terms forbid automated sending."),
    ),
    help_url="https://help.infocert.it/",
    username_is_email=False,
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
            N_("Legalmail signs in with the user ID from your registration, not the PEC address. If the "
            "password is right and still refused, InfoCert advises removing special characters from it.")
        ]
    if error_class == "throttled" or (error_class == "protocol" and protocol == "smtp"):
        return [
            N_("Legalmail allows 6 messages a minute per mailbox ('550 ... Too much traffic from this "
            "sender'); wait a minute and send again.")
        ]
    if error_class == "certificate":
        return [
            N_("Legalmail's certificate (*.cert.legalmail.it) chains to GlobalSign Root R3 via GlobalSign "
            "RSA OV SSL CA 2018; make sure the system CA bundle has that root.")
        ]
    return []
