"""Microsoft 365 (Exchange Online) work and school mailboxes."""

from __future__ import annotations

from connectors.connection_limits import ConnectionLimit
from connectors.i18n import N_
from connectors.plugins import hookimpl
from connectors.presets import Endpoint, OAuth2Endpoints, ServicePreset
from connectors.settings import Security, ServerSettings
from plugins._common import concerns, port_of

KEY = "office365"
HOSTS = ("outlook.office365.com", "smtp.office365.com")

#: Shared with the Outlook.com preset: same Entra ID endpoints, another tenant.
MICROSOFT_OAUTH2 = OAuth2Endpoints(
    authorize_url="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
    token_url="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
    scopes=(
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
        "https://outlook.office.com/POP.AccessAsUser.All",
        "offline_access",
    ),
)

PRESET = ServicePreset(
    key=KEY,
    name="Microsoft 365 (work or school)",
    imap=Endpoint("outlook.office365.com", 993, Security.TLS),
    smtp=Endpoint("smtp.office365.com", 587, Security.STARTTLS),
    pop3=Endpoint("outlook.office365.com", 995, Security.TLS),
    domains=("*.onmicrosoft.com",),
    mx_suffixes=("mail.protection.outlook.com",),
    hints=(
        N_("Exchange Online has retired basic authentication (user name and password) for IMAP and "
        "POP; connect with OAuth2. Password sign-in for SMTP works only where the tenant still "
        "allows SMTP AUTH."),
        N_("IMAP listens on outlook.office365.com port 993 (TLS) and POP on 995, not on 443: "
        "port 443 is the web and Exchange Web Services."),
        N_("An administrator may have to allow IMAP, POP or authenticated SMTP for the mailbox "
        "(Microsoft 365 admin center → Users → Mail → Manage email apps)."),
        N_("For OAuth2, replace {tenant} with your tenant id or 'organizations'."),
    ),
    auth_methods=("oauth2", "password"),
    oauth2=MICROSOFT_OAUTH2,
    help_url="https://learn.microsoft.com/exchange/client-developer/legacy-protocols/"
    "how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth",
)

_RIGHT_PORT = {"imap": "993 (TLS)", "pop3": "995 (TLS)", "smtp": "587 (STARTTLS)"}


@hookimpl
def mailroom_service_presets() -> list[ServicePreset]:
    return [PRESET]


@hookimpl
def mailroom_diagnosis_hints(
    error_class: str, protocol: str, service_key: str | None, settings: ServerSettings | None
) -> list[str]:
    if not concerns(service_key, settings, KEY, HOSTS):
        return []
    if error_class in ("timeout", "refused", "unreachable") and port_of(settings) == 443:
        return [
            f"Microsoft 365 does not serve {protocol.upper()} on port 443 (that is the web); "
            f"use port {_RIGHT_PORT.get(protocol, '993 (TLS)')}."
        ]
    if error_class == "auth":
        return [
            N_("Microsoft 365 no longer accepts passwords for IMAP and POP (basic authentication is "
            "retired): connect with OAuth2, and check the mailbox is allowed to use IMAP/POP/SMTP.")
        ]
    if error_class == "auth_method" and protocol == "smtp":
        return [
            N_("SMTP AUTH is probably disabled for this tenant or mailbox (error 5.7.139); an "
            "administrator can enable it per mailbox, or connect with OAuth2.")
        ]
    return []


@hookimpl
def mailroom_connection_limit(host: str) -> ConnectionLimit | None:
    """Exchange Online allows about 20 concurrent IMAP connections per mailbox."""
    if host == "outlook.office365.com":
        return ConnectionLimit(20, per_account=True)
    return None
