"""What runs on new mail after a sync (out-of-office replies, then filters), and "Run now" on a folder.

``after_sync(account, client, new)`` is called by the sync job inside its open IMAP connection;
``new`` maps folder id → UIDs the engine stored in this run that are really new mail (a first
pass or a UIDVALIDITY reseed is excluded, so connecting a mailbox never replies to or filters
years of old mail).  Only the mailbox's inbox (the INBOX-role folder) is acted on, as a
server-side filter on delivery would: mail the user files or sends into other folders is theirs.

The headers rules and replies need but the store does not keep (``List-Id``, ``Auto-Submitted``,
a filter's header, …) are fetched once, ``BODY.PEEK[HEADER.FIELDS (...)]`` in UID batches.
"""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from flask import current_app
from rq.job import Job
from sqlalchemy import select

from connectors.errors import MailError
from connectors.i18n import N_

from .. import filters
from ..errors import MailboxUnavailable
from ..extensions import db
from ..filters import Candidate
from ..folders import check_listable
from ..models import Account, Folder, FolderRole, Message, OutOfOffice, User
from ..queue import enqueue_for
from . import out_of_office
from .filter_actions import apply_rules
from .session import open_client

#: UIDs per header FETCH.
FETCH_BATCH = 500


def inbox_of(account: Account) -> Folder | None:
    folder = Folder.query.filter_by(account_id=account.id, role=FolderRole.INBOX.value).first()
    if folder is None:
        folder = Folder.query.filter_by(account_id=account.id, name="INBOX").first()
    return folder


def fetch_headers(imap: Any, uids: list[int], names: set[str]) -> dict[int, dict[str, list[str]]]:
    """``{uid: {lower-case name: [values]}}`` for the selected folder; one FETCH per batch of UIDs."""
    out: dict[int, dict[str, list[str]]] = {}
    if not uids or not names:
        return out
    item = f"BODY.PEEK[HEADER.FIELDS ({' '.join(sorted(n.upper() for n in names))})]"
    parser = BytesHeaderParser(policy=compat32)
    uids = sorted(set(uids))
    for i in range(0, len(uids), FETCH_BATCH):
        batch = uids[i : i + FETCH_BATCH]
        fetched = imap.fetch(batch, [item])
        for uid, data in fetched.items():
            raw = next((v for k, v in data.items() if k.startswith(b"BODY[HEADER")), b"") or b""
            parsed = parser.parsebytes(raw)
            headers: dict[str, list[str]] = {}
            for key, value in parsed.items():
                headers.setdefault(key.lower(), []).append(" ".join(str(value).split()))
            out[uid] = headers
    return out


def after_sync(account: Account, client: Any, new: dict[int, list[int]]) -> dict[str, Any]:
    """Out-of-office replies, then filters, on the new mail of the mailbox's inbox."""
    inbox = inbox_of(account)
    uids = sorted(new.get(inbox.id, [])) if inbox is not None else []
    if not uids:
        return {}
    rules = filters.ordered(account, enabled_only=True)
    ooo = db.session.get(OutOfOffice, account.id)
    want_ooo = ooo is not None and ooo.enabled
    if not rules and not want_ooo:
        return {}
    imap = client.imap
    imap.folder_encode = False
    names = filters.header_names(rules) | (set(out_of_office.HEADERS) if want_ooo else set())
    imap.select_folder(inbox.name, readonly=True)
    headers = fetch_headers(imap, uids, names)
    rows = _rows(inbox.id, uids)
    summary: dict[str, Any] = {"folder_id": inbox.id, "new": len(uids)}
    if want_ooo:
        summary["out_of_office"] = out_of_office.reply_to_new(
            account, [(rows[u], headers.get(u, {})) for u in uids if u in rows]
        )
        rows = _rows(inbox.id, uids)  # the replies committed: reload what they expired
    if rules:
        candidates = [
            Candidate(uid=u, message=rows[u], headers=headers.get(u, {})) for u in uids if u in rows
        ]
        summary["filters"] = apply_rules(account, imap, inbox, candidates, rules, **_capability_options())
    return summary


def _rows(folder_id: int, uids: list[int]) -> dict[int, Message]:
    out: dict[int, Message] = {}
    for i in range(0, len(uids), 900):
        chunk = uids[i : i + 900]
        for row in db.session.scalars(
            select(Message).where(Message.folder_id == folder_id, Message.uid.in_(chunk))
        ):
            out[row.uid] = row
    return out


def _capability_options() -> dict[str, bool]:
    """``FILTERS_USE_MOVE`` / ``FILTERS_USE_UIDPLUS`` False: act as if the server lacked them (tests)."""
    config = current_app.config
    return {
        "use_move": bool(config.get("FILTERS_USE_MOVE", True)),
        "use_uidplus": bool(config.get("FILTERS_USE_UIDPLUS", True)),
    }


# "Run now" -------------------------------------------------------------------------------------


def start(account: Account, folder: Folder, owner: User) -> Job:
    """Enqueue "Run now": the mailbox's enabled filters on every stored message of ``folder``
    (409 when its folders cannot be reached: POP3, disabled, service removed)."""
    check_listable(account)
    return enqueue_for(
        run_filters, account.id, folder.id, owner_id=owner.id, kind="run_filters", account_id=account.id
    )


def run_filters(account_id: int, folder_id: int) -> dict[str, Any]:
    """RQ job: apply the mailbox's enabled rules to every stored message of one folder (ids only)."""
    account = db.session.get(Account, account_id)
    folder = db.session.get(Folder, folder_id)
    if account is None or folder is None or folder.account_id != account_id:
        return {"ok": False, "error": N_("The mailbox or folder no longer exists.")}
    rules = filters.ordered(account, enabled_only=True)
    if not rules:
        return {"ok": True, "matched": 0, "message": "No enabled filter."}
    uids = sorted(db.session.scalars(select(Message.uid).where(Message.folder_id == folder.id)))
    if not uids:
        return {"ok": True, "matched": 0, "message": "The folder has no stored messages; sync it first."}
    try:
        with open_client(account, "imap") as client:
            imap = client.imap
            imap.folder_encode = False
            imap.select_folder(folder.name, readonly=True)
            headers = fetch_headers(imap, uids, filters.header_names(rules))
            rows = _rows(folder.id, uids)
            candidates = [
                Candidate(uid=u, message=rows[u], headers=headers.get(u, {})) for u in uids if u in rows
            ]
            counts = apply_rules(account, imap, folder, candidates, rules, **_capability_options())
    except MailboxUnavailable as exc:
        return {"ok": False, "error": str(exc)}
    except MailError as exc:
        db.session.rollback()
        return {"ok": False, "error": exc.message, "class": exc.error_class.value}
    message = (
        f"{counts['matched']} of {len(uids)} messages matched: {counts['moved']} moved, "
        f"{counts['marked_read']} marked read, {counts['flagged']} flagged."
    )
    return {"ok": True, "checked": len(uids), "message": message, **counts}
