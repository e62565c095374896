"""Carry filter actions out over IMAP on an open connection, and keep the store in step.

* mark read / flag: ``UID STORE +FLAGS.SILENT``; the stored rows get the flag at once;
* move (:func:`connectors.writeback.move`): ``UID MOVE`` when the server offers MOVE; otherwise ``UID COPY`` + ``\\Deleted`` +
  ``UID EXPUNGE`` when it offers UIDPLUS; otherwise ``UID COPY`` + ``\\Deleted`` only, with a
  warning (a plain EXPUNGE would also remove mail other clients marked deleted).

The store follows the server: a moved message's row moves to the target folder with the UID
the server gave it (COPYUID) when that is safe for the sync engine, i.e. the target is synced,
its state is complete, and the new UIDs are exactly the next ones after what the store has
(the engine fetches new mail from the highest stored UID, so a row stored above an unsynced
message would hide that message).  Otherwise the source row is deleted and the next sync of the
target folder fetches the message.  Every action is logged (source "Incoming mail").
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select, update

from connectors import writeback
from connectors.errors import MailError
from connectors.i18n import N_

from .. import email_log
from ..extensions import db
from ..filters import Candidate, Decision, decide
from ..models import Account, Filter, Folder, LogLevel, LogSource, Message

#: A filter's log line and what it did (stored in English, translated when shown: webapp.i18n;
#: the actions are joined with "; " and each is translated on its own).
WORDS = {
    "line": N_('Filter {names} on "{subject}" from {sender} in {folder}: {actions}.'),
    "no_change": N_("no change needed"),
    "marked_read": N_("marked as read"),
    "flagged": N_("flagged"),
    "moved": N_("moved to {folder}"),
    "not_moved": N_("not moved to {folder}: the server refused ({reason})"),
    "target_gone": N_("not moved: the target folder is gone"),
    "copied": N_("copied to {target}, left marked deleted in {source}"),
    "no_move": N_(
        "The server of {email} offers neither MOVE nor UIDPLUS: filtered messages were copied to {target} "
        "and marked deleted in {source}, but not expunged (a plain EXPUNGE would also remove other mail "
        "marked deleted)."
    ),
}


def apply_rules(
    account: Account,
    imap: Any,
    folder: Folder,
    candidates: list[Candidate],
    rules: list[Filter],
    *,
    use_move: bool = True,
    use_uidplus: bool = True,
) -> dict[str, int]:
    """Run ``rules`` on the ``candidates`` of ``folder`` (selected read-write here); commits.

    ``use_move``/``use_uidplus`` False act as if the server lacked them (tests cover every path
    against one Dovecot).  Returns counts: matched, marked_read, flagged, moved.
    """
    decisions: dict[int, tuple[Candidate, Decision]] = {}
    for cand in candidates:
        decision = decide(rules, cand)
        if decision.rules:
            decisions[cand.uid] = (cand, decision)
    counts = {"matched": len(decisions), "marked_read": 0, "flagged": 0, "moved": 0}
    if not decisions:
        return counts
    # What the log says of each message, read now: a moved row may be gone once committed.
    about = {
        uid: (c.message.subject or "", c.message.from_addr or "?", c.message.message_id)
        for uid, (c, _) in decisions.items()
    }
    rule_names = {r.id: r.name or f"rule {r.position + 1}" for r in rules}
    imap.folder_encode = False  # stored names are the server's modified UTF-7
    folder_id, folder_name = folder.id, folder.display_name
    imap.select_folder(folder.name, readonly=False)
    _apply_flags(imap, folder.id, decisions, counts)
    outcome = _apply_moves(imap, account, folder, decisions, counts, use_move, use_uidplus)
    db.session.commit()
    for uid, (_, d) in decisions.items():
        _log_decision(account, d, outcome.get(uid), about[uid], rule_names, (folder_id, folder_name, uid))
    db.session.commit()
    return counts


def _apply_flags(imap: Any, folder_id: int, decisions: dict, counts: dict[str, int]) -> None:
    """Mark read and flag, on the server and in the store, only where the flag is missing."""
    to_read = [uid for uid, (c, d) in decisions.items() if d.mark_read and not c.message.seen]
    to_flag = [uid for uid, (c, d) in decisions.items() if d.flag and not c.message.flagged]
    _store(imap, to_read, b"\\Seen")
    _store(imap, to_flag, b"\\Flagged")
    _flags_in_store(folder_id, to_read, "\\Seen")
    _flags_in_store(folder_id, to_flag, "\\Flagged")
    counts["marked_read"], counts["flagged"] = len(to_read), len(to_flag)


def _apply_moves(
    imap: Any,
    account: Account,
    folder: Folder,
    decisions: dict,
    counts: dict[str, int],
    use_move: bool,
    use_uidplus: bool,
) -> dict[int, str]:
    """Move to each target folder in turn; returns what happened to each moved UID, in words."""
    targets: dict[int, list[int]] = defaultdict(list)
    for uid, (_, d) in decisions.items():
        if d.move_to is not None and d.move_to != folder.id:
            targets[d.move_to].append(uid)
    outcome: dict[int, str] = {}
    for target_id, uids in targets.items():
        target = db.session.get(Folder, target_id)
        if target is None or target.account_id != account.id or not target.exists_on_server:
            for uid in uids:
                outcome[uid] = WORDS["target_gone"]
            continue
        moved = _move(imap, account, folder, target, sorted(uids), use_move, use_uidplus)
        for uid in uids:
            outcome[uid] = moved
        if not moved.startswith("not"):
            counts["moved"] += len(uids)
    return outcome


def _log_decision(
    account: Account, d: Decision, moved: str | None, about: tuple, rule_names: dict, where: tuple
) -> None:
    """One log line per message: which filters matched and what was done (a warning if not all)."""
    folder_id, folder_name, uid = where
    done = []
    if d.mark_read:
        done.append(WORDS["marked_read"])
    if d.flag:
        done.append(WORDS["flagged"])
    if d.move_to is not None and moved is not None:
        done.append(moved)
    subject, sender, message_id = about
    names = ", ".join(f'"{rule_names[r_id]}"' for r_id in d.rule_ids)
    level = LogLevel.WARNING if any(x.startswith("not") or "left" in x for x in done) else LogLevel.INFO
    email_log.record(
        LogSource.INCOMING,
        level,
        WORDS["line"].format(
            names=names,
            subject=subject[:120],
            sender=sender,
            folder=folder_name,
            actions="; ".join(done) or WORDS["no_change"],
        ),
        account=account,
        details={"filters": d.rule_ids, "folder_id": folder_id, "uid": uid, "message_id": message_id},
        created_by="system",
    )


def _store(imap: Any, uids: list[int], flag: bytes) -> None:
    raw = imap._imap
    for chunk in writeback.uid_chunks(uids):
        typ, data = raw.uid("STORE", chunk, "+FLAGS.SILENT", f"({flag.decode()})")
        if typ != "OK":
            raise RuntimeError(f"UID STORE refused: {data!r}")


def _flags_in_store(folder_id: int, uids: list[int], flag: str) -> None:
    if not uids:
        return
    rows = db.session.scalars(select(Message).where(Message.folder_id == folder_id, Message.uid.in_(uids)))
    for row in rows:
        flags = set((row.flags or "").split())
        flags.add(flag)
        row.flags = " ".join(sorted(flags))
        row.seen = "\\Seen" in flags
        row.flagged = "\\Flagged" in flags


def _move(imap, account, source: Folder, target: Folder, uids: list[int], use_move, use_uidplus) -> str:
    """Move ``uids`` on the server (:func:`connectors.writeback.move`) and in the store; answers
    what happened, for the log."""
    try:
        moved = writeback.move(
            imap,
            source.name,
            uids,
            target.name,
            folder_label=source.display_name,
            target_label=target.display_name,
            use_move=use_move,
            use_uidplus=use_uidplus,
        )
    except MailError as exc:
        return WORDS["not_moved"].format(folder=target.display_name, reason=exc.raw or exc.message)
    if not moved.expunged:
        email_log.record(
            LogSource.INCOMING,
            LogLevel.WARNING,
            WORDS["no_move"].format(email=account.email, target=target.display_name, source=source.display_name),
            account=account,
            created_by="system",
        )
        _flags_in_store(source.id, uids, "\\Deleted")
        return WORDS["copied"].format(target=target.display_name, source=source.display_name)
    _rows_follow(source, target, uids, moved.new_uids, moved.uidvalidity)
    return WORDS["moved"].format(folder=target.display_name)


def _rows_follow(source: Folder, target: Folder, uids: list[int], mapping: dict[int, int], validity) -> None:
    """Move the rows to ``target`` under their new UIDs when safe; else drop them (the next sync adds them)."""
    new = sorted(mapping[u] for u in uids if u in mapping)
    safe = (
        target.sync
        and target.uidvalidity is not None
        and target.seeded_uid is None
        and validity == target.uidvalidity
        and len(new) == len(uids)
    )
    if safe:
        top = db.session.scalar(select(func.max(Message.uid)).where(Message.folder_id == target.id)) or 0
        expected = max(top + 1, target.uidnext or 1)
        safe = new == list(range(expected, expected + len(new))) and new[0] == expected
    if safe:
        for uid in uids:
            db.session.execute(
                update(Message)
                .where(Message.folder_id == source.id, Message.uid == uid)
                .values(folder_id=target.id, uid=mapping[uid])
            )
    else:
        db.session.execute(
            Message.__table__.delete().where(Message.folder_id == source.id, Message.uid.in_(uids))
        )
