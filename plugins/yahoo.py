"""Yahoo Mail: servers, app passwords and the Bulk folder."""

from __future__ import annotations

from connectors.i18n import N_
from connectors.plugins import hookimpl
from connectors.presets import Endpoint, ServicePreset
from connectors.settings import Security, ServerSettings
from plugins._common import concerns

KEY = "yahoo"
HOSTS = ("imap.mail.yahoo.com", "smtp.mail.yahoo.com", "pop.mail.yahoo.com")

APP_PASSWORD = (
    N_("Yahoo Mail accepts only an app password from other apps: create one in Yahoo Account Info → "
    "Account Security → Generate app password, and use it instead of your Yahoo password.")
)

PRESET = ServicePreset(
    key=KEY,
    name="Yahoo Mail",
    imap=Endpoint("imap.mail.yahoo.com", 993, Security.TLS),
    smtp=Endpoint("smtp.mail.yahoo.com", 465, Security.TLS),
    pop3=Endpoint("pop.mail.yahoo.com", 995, Security.TLS),
    domains=(
        "yahoo.com",
        "yahoo.it",
        "yahoo.co.uk",
        "yahoo.fr",
        "yahoo.de",
        "yahoo.es",
        "ymail.com",
        "rocketmail.com",
    ),
    mx_suffixes=("yahoodns.net",),
    hints=(APP_PASSWORD,),
    help_url="https://help.yahoo.com/kb/SLN4075.html",
)


@hookimpl
def mailroom_service_presets() -> list[ServicePreset]:
    return [PRESET]


@hookimpl
def mailroom_folder_role_hints(service_key: str | None, folders: list[str]) -> dict[str, str]:
    # Yahoo calls its spam folder "Bulk" (or "Bulk Mail"); the name is too generic to map elsewhere.
    if service_key != KEY:
        return {}
    return {f: "spam" for f in folders if f.casefold() in ("bulk", "bulk mail")}


@hookimpl
def mailroom_diagnosis_hints(
    error_class: str, protocol: str, service_key: str | None, settings: ServerSettings | None
) -> list[str]:
    if concerns(service_key, settings, KEY, HOSTS) and error_class == "auth":
        return [APP_PASSWORD]
    return []
