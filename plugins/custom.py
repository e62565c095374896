"""Any other mail server: recognise common folder names in English, Italian, German, French, Spanish,
Polish, Dutch and Portuguese.

Servers without SPECIAL-USE flags still name their folders after what
Outlook, Thunderbird or the webmail created.  These guesses are the lowest
ranked (``trylast``) so a provider plugin's answer always wins.
"""

from __future__ import annotations

import unicodedata

from connectors.plugins import hookimpl

_NAMES: dict[str, tuple[str, ...]] = {
    # Only INBOX: IMAP reserves that name, and a folder called "Posta in arrivo" is not the inbox.
    "inbox": ("INBOX",),
    "sent": (
        "Sent",
        "Sent Items",
        "Sent Messages",
        "Sent Mail",
        "Posta inviata",
        "Inviata",
        "Inviati",
        "Elementi inviati",
        "Gesendet",
        "Gesendete Elemente",
        "Gesendete Objekte",
        "Éléments envoyés",
        "Messages envoyés",
        "Envoyés",
        "Enviados",
        "Elementos enviados",
        "Wysłane",
        "Elementy wysłane",
        "Verzonden",
        "Verzonden items",
        "Itens enviados",
        "Enviadas",
    ),
    "drafts": (
        "Drafts",
        "Draft",
        "Bozze",
        "Entwürfe",
        "Brouillons",
        "Borradores",
        "Kopie robocze",
        "Concepten",
        "Rascunhos",
    ),
    "spam": (
        "Junk",
        "Junk E-mail",
        "Junk Email",
        "Junk Mail",
        "Spam",
        "Posta indesiderata",
        "Indesiderata",
        "Junk-E-Mail",
        "Unerwünscht",
        "Courrier indésirable",
        "Indésirables",
        "Correo no deseado",
    ),
    "trash": (
        "Trash",
        "Deleted Items",
        "Deleted Messages",
        "Deleted",
        "Bin",
        "Cestino",
        "Posta eliminata",
        "Elementi eliminati",
        "Papierkorb",
        "Gelöschte Elemente",
        "Gelöschte Objekte",
        "Corbeille",
        "Éléments supprimés",
        "Papelera",
        "Elementos eliminados",
        "Kosz",
        "Prullenbak",
        "Lixeira",
        "Itens excluídos",
    ),
    "archive": ("Archive", "Archives", "Archivio", "Archiv", "Archivo"),
}


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).strip().casefold()


ROLE_BY_NAME: dict[str, str] = {_fold(n): role for role, names in _NAMES.items() for n in names}

#: Courier, Cyrus and some Dovecot setups keep every folder under INBOX.
_INBOX_PREFIXES = ("inbox.", "inbox/")


def role_for(folder: str) -> str | None:
    """The role a folder's name suggests, or None; ``INBOX.Sent`` counts as ``Sent``."""
    name = _fold(folder)
    role = ROLE_BY_NAME.get(name)
    if role is None:
        for prefix in _INBOX_PREFIXES:
            if name.startswith(prefix):
                role = ROLE_BY_NAME.get(name[len(prefix) :])
    return role


@hookimpl(trylast=True)
def mailroom_folder_role_hints(folders: list[str]) -> dict[str, str]:
    roles = {}
    for folder in folders:
        role = role_for(folder)
        if role:
            roles[folder] = role
    return roles
