"""Any other mail server: recognise common folder names in English, Italian, German, French, Spanish,
Polish, Dutch and Portuguese.

Servers without SPECIAL-USE flags still name their folders after what
Outlook, Thunderbird or the webmail created.  These guesses are the lowest
ranked (``trylast``) so a provider plugin's answer always wins.  The names
themselves are in ``connectors/folder_names.py``.
"""

from __future__ import annotations

from connectors.folder_names import role_for
from connectors.plugins import hookimpl


@hookimpl(trylast=True)
def mailroom_folder_role_hints(folders: list[str]) -> dict[str, str]:
    roles = {}
    for folder in folders:
        role = role_for(folder)
        if role:
            roles[folder] = role
    return roles
