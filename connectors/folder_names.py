"""Generic folder names: the role a folder's name suggests on a server without SPECIAL-USE flags.

Common names in English, Italian, German, French, Spanish, Polish, Dutch and
Portuguese, as Outlook, Thunderbird or the webmail created them.  The built-in
plugin ``plugins.custom`` offers these guesses through the
``mailroom_folder_role_hints`` hook (ranked last, so a provider's answer wins),
and the folder-role code of the web app uses them to rank provider answers
first; both read them here, so neither imports the other.
"""

from __future__ import annotations

import unicodedata

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
