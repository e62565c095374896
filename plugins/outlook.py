"""Outlook.com personal accounts (outlook.com, hotmail.com, live.com, msn.com)."""

from __future__ import annotations

from connectors.i18n import N_
from connectors.plugins import hookimpl
from connectors.presets import Endpoint, ServicePreset
from connectors.settings import Security, ServerSettings
from plugins._common import concerns
from plugins.office365 import MICROSOFT_OAUTH2

KEY = "outlook"
HOSTS = ("smtp-mail.outlook.com",)  # outlook.office365.com is shared with Microsoft 365

PRESET = ServicePreset(
    key=KEY,
    name="Outlook.com / Hotmail",
    imap=Endpoint("outlook.office365.com", 993, Security.TLS),
    smtp=Endpoint("smtp-mail.outlook.com", 587, Security.STARTTLS),
    pop3=Endpoint("outlook.office365.com", 995, Security.TLS),
    domains=("outlook.com", "hotmail.com", "live.com", "msn.com", "outlook.it", "hotmail.it", "live.it"),
    mx_suffixes=("olc.protection.outlook.com",),
    hints=(
        N_("Since 16 September 2024 Outlook.com accepts only OAuth2 from other apps: passwords and app "
        "passwords no longer work for IMAP, POP or SMTP."),
        N_("POP is off by default: turn it on in Outlook.com Settings → Mail → Forwarding and IMAP."),
    ),
    auth_methods=("oauth2",),
    oauth2=MICROSOFT_OAUTH2.for_tenant("consumers"),
    help_url="https://support.microsoft.com/office/pop-imap-and-smtp-settings-for-outlook-com-"
    "d088b986-291d-42b8-9564-9c414e2aa040",
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
    hints = []
    if error_class == "auth":
        hints.append(
            N_("Outlook.com accepts only OAuth2 from other apps since 16 September 2024; connect with OAuth2."))
    if error_class in ("auth", "protocol") and protocol == "pop3":
        hints.append(N_("Check POP is turned on in Outlook.com Settings → Mail → Forwarding and IMAP."))
    return hints
