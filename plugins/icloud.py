"""iCloud Mail (icloud.com, me.com, mac.com): IMAP and SMTP only, app-specific passwords."""

from __future__ import annotations

from connectors.i18n import N_
from connectors.plugins import hookimpl
from connectors.presets import Endpoint, ServicePreset
from connectors.settings import Security, ServerSettings
from plugins._common import concerns

KEY = "icloud"
HOSTS = ("imap.mail.me.com", "smtp.mail.me.com")

APP_PASSWORD = (
    N_("iCloud Mail needs an app-specific password (Apple Account → Sign-In and Security → "
    "App-Specific Passwords, with two-factor authentication on); the Apple Account password is refused.")
)

PRESET = ServicePreset(
    key=KEY,
    name="iCloud Mail",
    imap=Endpoint("imap.mail.me.com", 993, Security.TLS),
    smtp=Endpoint("smtp.mail.me.com", 587, Security.STARTTLS),
    pop3=None,  # iCloud offers no POP
    domains=("icloud.com", "me.com", "mac.com"),
    mx_suffixes=("mail.icloud.com",),
    hints=(
        APP_PASSWORD,
        N_("iCloud has no POP; use IMAP."),
        N_("For IMAP Apple documents the name part of the address (emily, not emily@icloud.com) as user "
        "name; if that fails, try the full address. SMTP wants the full address."),
    ),
    help_url="https://support.apple.com/en-us/102525",
)


@hookimpl
def mailroom_service_presets() -> list[ServicePreset]:
    return [PRESET]


@hookimpl
def mailroom_diagnosis_hints(
    error_class: str, protocol: str, service_key: str | None, settings: ServerSettings | None
) -> list[str]:
    if not (concerns(service_key, settings, KEY, HOSTS) and error_class == "auth"):
        return []
    hints = [APP_PASSWORD]
    if protocol == "imap":
        hints.append(N_("Try the user name without @icloud.com (or with it, if you used the short form)."))
    return hints
