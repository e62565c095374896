"""A mailbox's folders in the database: refreshed from LIST, chosen for sync, mapped to roles.

Rules that the job, the API and the page share:

* a folder row is keyed by the name exactly as the server sent it; the
  decoded name is only for display;
* new folders are created with sync off, except INBOX; a folder the server
  no longer lists stays, marked ``exists_on_server=False``, with its messages;
* \\Noselect (and \\NonExistent) folders are listed but can never be synced
  or hold a role;
* roles are filled automatically only from folders seen for the first time
  (special-use attributes first, then provider plugins), and only for roles
  no existing folder holds: so whatever the user chose, including "no Spam
  folder", survives every refresh;
* one folder per role per mailbox: moving a role clears it from the other
  folder in the same transaction (the database's partial unique index
  enforces it too).
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from connectors import plugins
from connectors.folder_list import NOSELECT, ListedFolder
from connectors.folder_names import role_for
from connectors.i18n import N_

from .errors import Conflict, Invalid
from .extensions import db
from .models import Account, Folder, FolderRole, Message, MessageBody

ROLES = tuple(r.value for r in FolderRole)
ROLE_LABELS = {"inbox": N_("Inbox"), "drafts": N_("Drafts"), "sent": N_("Sent"), "spam": N_("Spam"), "trash": N_("Trash")}


def selectable(folder: Folder) -> bool:
    """Can the folder be opened (and so synced or given a role)?"""
    return not any(a.lower() in NOSELECT for a in (folder.attributes or "").split())


def ordered(account: Account, include_vanished: bool = True) -> list[Folder]:
    """The mailbox's folders in hierarchy order, INBOX first (children right after their parent)."""
    q = Folder.query.filter_by(account_id=account.id)
    if not include_vanished:
        q = q.filter(Folder.exists_on_server.is_(True))
    return sorted(q.all(), key=_sort_key)


def _sort_key(folder: Folder) -> tuple:
    parts = folder.display_name.split(folder.delimiter) if folder.delimiter else [folder.display_name]
    return (folder.name.upper() != "INBOX", [p.casefold() for p in parts])


def depth(folder: Folder) -> int:
    return folder.name.count(folder.delimiter) if folder.delimiter else 0


def leaf_name(folder: Folder) -> str:
    """The last part of the decoded name (``Posta ricevuta`` of ``Entrata/Posta ricevuta``)."""
    if folder.delimiter and folder.delimiter in folder.display_name:
        return folder.display_name.rsplit(folder.delimiter, 1)[1]
    return folder.display_name


def folder_as_dict(folder: Folder) -> dict[str, Any]:
    return {
        "id": folder.id,
        "name": folder.name,
        "display_name": folder.display_name,
        "delimiter": folder.delimiter,
        "attributes": (folder.attributes or "").split(),
        "special_use": folder.special_use,
        "selectable": selectable(folder),
        "role": folder.role,
        "sync": folder.sync,
        "exists_on_server": folder.exists_on_server,
        "message_count": folder.message_count,
        "last_synced_at": folder.last_synced_at.isoformat() + "Z" if folder.last_synced_at else None,
        "last_error": folder.last_error,
    }


# Store what the server listed (the job lists: webapp.jobs.folders) -------------------------


def store_listing(account: Account, listed: list[ListedFolder]) -> list[Folder]:
    """Upsert the folder rows from a LIST answer (the rules above); returns the folders the server has."""
    rows = {f.name: f for f in Folder.query.filter_by(account_id=account.id)}
    first_listing = not rows
    fresh: list[Folder] = []
    current: list[Folder] = []
    for item in listed:
        row = rows.get(item.name)
        if row is None:
            row = Folder(
                account_id=account.id,
                name=item.name,
                sync=item.name.upper() == "INBOX" and item.selectable,
                exists_on_server=True,
            )
            db.session.add(row)
            rows[item.name] = row
            fresh.append(row)
        row.display_name = item.display_name
        row.delimiter = item.delimiter
        row.attributes = " ".join(item.attributes)
        row.special_use = item.special_use
        row.exists_on_server = True
        if not item.selectable:
            row.sync = False
            row.role = None
        if item.message_count is not None and row.uidvalidity is None:
            # Only before the first sync: afterwards the count is sync state the engine compares.
            row.message_count = item.message_count
        current.append(row)
    listed_names = {item.name for item in listed}
    for name, row in rows.items():
        if name not in listed_names:
            row.exists_on_server = False
    db.session.flush()
    _fill_roles(account, listed, rows, fresh if not first_listing else current)
    db.session.commit()
    return sorted(current, key=_sort_key)


def _fill_roles(
    account: Account, listed: list[ListedFolder], rows: dict[str, Folder], candidates: list[Folder]
) -> None:
    """Give empty roles to folders seen for the first time: special-use first, then plugin hints."""
    holders = {row.role: row for row in rows.values() if row.role}
    free = [r for r in ROLES if r not in holders or not holders[r].exists_on_server]
    if not free or not candidates:
        return
    by_name = {item.name: item for item in listed}
    usable = [row for row in candidates if by_name[row.name].selectable and not row.role]
    service_key = account.service.key if account.service is not None else None
    hints = plugins.folder_role_hints(service_key, [row.display_name for row in usable])
    generic = _generic_guesses([row.display_name for row in usable])
    chosen: dict[str, Folder] = {}
    taken: set[str] = set()
    for source in (
        lambda row: by_name[row.name].special_use_role,
        # A provider plugin's answer first: "[Gmail]/Cestino" beats a folder merely called "Papierkorb".
        lambda row: (
            hints.get(row.display_name)
            if hints.get(row.display_name) != generic.get(row.display_name)
            else None
        ),
        lambda row: hints.get(row.display_name),
    ):
        for row in usable:
            role = source(row)
            if role in free and role not in chosen and row.name not in taken:
                chosen[role] = row
                taken.add(row.name)
    if not chosen:
        return
    for role in chosen:
        old = holders.get(role)
        if old is not None:
            old.role = None  # it vanished from the server: the role moves to the new folder
    db.session.flush()
    for role, row in chosen.items():
        row.role = role


def _generic_guesses(names: list[str]) -> dict[str, str]:
    """What the generic folder names alone suggest (to rank provider answers first)."""
    return {name: role for name in names if (role := role_for(name))}


# Choices of the user -------------------------------------------------------------------------


def clean_changes(folder: Folder, data: Any) -> dict[str, Any]:
    """Validate ``{"sync": bool, "role": role | null}``; field errors raise Invalid (422)."""
    if not isinstance(data, dict):
        raise Invalid({"body": _("must be a JSON object")})
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    for key in set(data) - {"sync", "role"}:
        errors[key] = _("unknown field")
    if "sync" in data:
        value = data["sync"]
        if not isinstance(value, bool):
            errors["sync"] = _("must be true or false")
        elif value and not selectable(folder):
            errors["sync"] = (
                _("This folder cannot be opened on the server (\\Noselect), so it cannot be synced.")
            )
        elif value and not folder.exists_on_server:
            errors["sync"] = _("This folder no longer exists on the server.")
        else:
            out["sync"] = value
    if "role" in data:
        role = data["role"]
        if role is not None and role not in ROLES:
            errors["role"] = "must be one of " + ", ".join(ROLES) + " or null"
        elif role is not None and not selectable(folder):
            errors["role"] = (
                _("This folder cannot be opened on the server (\\Noselect), so it cannot hold a role.")
            )
        elif role is not None and not folder.exists_on_server:
            errors["role"] = _("This folder no longer exists on the server.")
        else:
            out["role"] = role
    if errors:
        raise Invalid(errors)
    return out


def apply_changes(folder: Folder, changes: dict[str, Any]) -> Folder:
    """Apply cleaned changes; giving a role takes it from the folder that had it. Commits."""
    try:
        if "sync" in changes:
            folder.sync = changes["sync"]
        if "role" in changes:
            set_roles(folder.account, {changes["role"]: folder} if changes["role"] else {}, clear=folder)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(_("Another change gave this role to a folder at the same time; try again.")) from None
    return folder


def set_roles(account: Account, roles: dict[str, Folder | None], clear: Folder | None = None) -> None:
    """Give each role to its folder (None: no folder has it), in one flush-ordered transaction.

    ``clear`` is a folder whose own role is dropped first (a PATCH with role null).
    Nothing is committed here.
    """
    rows = Folder.query.filter_by(account_id=account.id).all()
    for row in rows:
        if row.role and (row.role in roles or row is clear):
            target = roles.get(row.role)
            if target is None or target.id != row.id:
                row.role = None
    for folder in roles.values():
        if folder is not None and folder.role and roles.get(folder.role) is not folder:
            folder.role = None
    # Clear first, then set: the partial unique index would refuse two holders at any instant.
    db.session.flush()
    for role, folder in roles.items():
        if folder is not None:
            folder.role = role
    db.session.flush()


def remove_folder(folder: Folder) -> None:
    """Drop a folder the server no longer has, with its messages and their cached bodies. Commits.

    Only for a folder marked gone (the last LIST did not show it, or a sync was told it does not
    exist): one still on the server would come back with the next refresh.  Its role, if any,
    goes with it, so a new Sent or Trash can be picked.
    """
    if folder.exists_on_server:
        raise Conflict(
            _("This folder is still on the server; stop syncing it instead, or refresh the folder list "
            "if it was deleted there.")
        )
    messages = select(Message.id).where(Message.folder_id == folder.id)
    db.session.execute(delete(MessageBody).where(MessageBody.message_pk.in_(messages)))
    db.session.execute(delete(Message).where(Message.folder_id == folder.id))
    db.session.delete(folder)
    db.session.commit()


def check_listable(account: Account) -> None:
    """Refuse a folder refresh that cannot work (409), before a job is queued for nothing."""
    if account.incoming_protocol != "imap":
        raise Conflict(_("This mailbox reads mail over POP3, which has a single inbox and no folders."))
    if not account.active:
        raise Conflict(_("The mailbox is disabled."))
    if account.service_removed:
        raise Conflict(account.last_error or "The mailbox's mail service was removed.")
    if account.server("imap") is None:
        raise Conflict(_("The mailbox has no IMAP server."))
