"""Gmail and Google Workspace: servers, app passwords, OAuth2 and [Gmail]/ folders."""

from __future__ import annotations

import unicodedata

from connectors.connection_limits import ConnectionLimit
from connectors.i18n import N_
from connectors.plugins import hookimpl
from connectors.presets import Endpoint, OAuth2Endpoints, ServicePreset
from connectors.settings import Security, ServerSettings
from plugins._common import concerns

KEY = "gmail"
HOSTS = ("imap.gmail.com", "smtp.gmail.com", "pop.gmail.com")

PRESET = ServicePreset(
    key=KEY,
    name="Gmail / Google Workspace",
    imap=Endpoint("imap.gmail.com", 993, Security.TLS),
    # 587 with STARTTLS works too; 465 is TLS from the first byte (RFC 8314).
    smtp=Endpoint("smtp.gmail.com", 465, Security.TLS),
    pop3=Endpoint("pop.gmail.com", 995, Security.TLS),
    domains=("gmail.com", "googlemail.com"),
    mx_suffixes=("google.com", "googlemail.com"),
    hints=(
        N_("Without OAuth2 Gmail needs an app password: since 30 May 2022 Google refuses the account "
        "password from other apps. Turn on 2-Step Verification, then create one at "
        "https://myaccount.google.com/apppasswords."),
        N_("Spaces in the 16-character app password don't matter."),
        N_("Gmail files a copy of everything sent through smtp.gmail.com in [Gmail]/Sent Mail itself."),
        N_("Google Workspace addresses on your own domain use the same servers."),
    ),
    auth_methods=("oauth2", "password"),
    oauth2=OAuth2Endpoints(
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",
        scopes=("https://mail.google.com/",),
    ),
    help_url="https://support.google.com/mail/answer/7126229",
    files_sent_copy=True,
)

#: Gmail's system folders live under one of these, depending on account age and country.
PREFIXES = ("[gmail]/", "[google mail]/")

#: Leaf names of Gmail's system folders in English, Italian, German, French and Spanish.
ROLES_BY_LEAF = {
    "sent mail": "sent",
    "posta inviata": "sent",
    "gesendet": "sent",
    "messages envoyés": "sent",
    "enviados": "sent",
    "drafts": "drafts",
    "bozze": "drafts",
    "entwürfe": "drafts",
    "brouillons": "drafts",
    "borradores": "drafts",
    "spam": "spam",
    "trash": "trash",
    "bin": "trash",
    "cestino": "trash",
    "papierkorb": "trash",
    "corbeille": "trash",
    "papelera": "trash",
    "all mail": "archive",
    "tutti i messaggi": "archive",
    "alle nachrichten": "archive",
    "tous les messages": "archive",
    "todos": "archive",
}


@hookimpl
def mailroom_service_presets() -> list[ServicePreset]:
    return [PRESET]


@hookimpl
def mailroom_server_saves_sent(service_key: str | None) -> bool | None:
    # smtp.gmail.com files every sent message in [Gmail]/Sent Mail; an APPEND would make two.
    return True if service_key == KEY else None


@hookimpl
def mailroom_folder_role_hints(service_key: str | None, folders: list[str]) -> dict[str, str]:
    # The [Gmail]/ prefix identifies Gmail even on hand-entered servers; INBOX is left to plugins.custom.
    roles = {}
    for folder in folders:
        name = unicodedata.normalize("NFC", folder).casefold()
        for prefix in PREFIXES:
            role = ROLES_BY_LEAF.get(name[len(prefix) :]) if name.startswith(prefix) else None
            if role:
                roles[folder] = role
    return roles


@hookimpl
def mailroom_diagnosis_hints(
    error_class: str, protocol: str, service_key: str | None, settings: ServerSettings | None
) -> list[str]:
    if not concerns(service_key, settings, KEY, HOSTS):
        return []
    if error_class == "auth":
        return [
            N_("Gmail rejects the normal Google password here: create an app password "
            "(https://myaccount.google.com/apppasswords, needs 2-Step Verification) or connect with "
            "OAuth2. Spaces in the 16-character app password don't matter.")
        ]
    if error_class == "throttled":
        return [N_("Gmail limits how much one account may download over IMAP per day; sync again later.")]
    if error_class == "folder_missing":
        return [
            N_("A Gmail label is only visible over IMAP when 'Show in IMAP' is ticked for it in "
            "Gmail settings → Labels.")
        ]
    return []


@hookimpl
def mailroom_connection_limit(host: str) -> ConnectionLimit | None:
    """Gmail allows 15 simultaneous IMAP connections per account (https://support.google.com/mail/answer/7126229)."""
    if host in ("imap.gmail.com", "pop.gmail.com"):
        return ConnectionLimit(15, per_account=True)
    return None
