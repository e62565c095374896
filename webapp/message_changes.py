"""A person's changes to messages — read, unread, flag, unflag, move, Move to Trash — shown at once
and written back to the IMAP server by a job (:mod:`webapp.jobs.message_changes`).  Sending a
reply (or reply all) or a forward is one more such change of the original: ``answered``
(``\\Answered``) or ``forwarded`` (the ``$Forwarded`` keyword), recorded by the send job once the
SMTP server accepted the message (:func:`originals` finds the original).

The one writer of ``message_changes`` and of a message's row while a change is in flight:

* :func:`record` applies the change to the row at once (flags; a move puts the row in the target
  folder under a placeholder UID, ``-id``, since the real one is not known yet) and keeps a
  ``pending`` change naming the message on the server (folder, UID) and its server flags;
* the job answers through :func:`settle_flags` / :func:`settle_move` (the change is done) or
  :func:`fail` (the row is put back as the server has it, the change stays ``failed`` with the
  reason: a notice in the console until dismissed);
* the sync store asks :func:`pending_flag_actions`, :func:`pending_move_uids` and
  :func:`placed_uids` so a sync running meanwhile neither undoes a pending change nor stores a
  moved message twice (see :mod:`webapp.jobs.sync_store`).

A moved row keeps its placeholder until it can carry its new UID safely: when the server gave
it (COPYUID) and the target folder's stored state already reaches it, at once; otherwise the
target's next sync adopts the row (``placed``) instead of inserting the message again.  A move to
a folder Mailroom does not sync removes the row once the server has the message there.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import delete, func, select

from connectors.i18n import N_

from .errors import Conflict, Invalid, NotFound
from .extensions import db
from .folders import selectable
from .models import Account, Folder, FolderRole, Message, MessageChange, User
from .validation import MAX_ID, is_id

#: action -> (IMAP flag, added?)
FLAG_ACTIONS: dict[str, tuple[str, bool]] = {
    "read": ("\\Seen", True),
    "unread": ("\\Seen", False),
    "flag": ("\\Flagged", True),
    "unflag": ("\\Flagged", False),
    # Set by sending a reply or a forward of the message (never asked for through the API).
    "answered": ("\\Answered", True),
    "forwarded": ("$Forwarded", True),
}
MOVE, TRASH = "move", "trash"
#: What a person may ask for (the API's ``action``).
ACTIONS = ("read", "unread", "flag", "unflag", TRASH, MOVE)
#: An outgoing message's origin -> the change its sending makes to the original.
SENT_ACTIONS = {"reply": "answered", "forward": "forwarded"}
#: Messages per request (a page of the list holds at most 200).
MAX_IDS = 500
PENDING, FAILED, PLACED = "pending", "failed", "placed"
_MSGID = re.compile(r"<[^<>\s]+@[^<>\s]+>")
#: A failed change's notice when the message has gone (stored, translated when shown).
NO_LONGER_THERE = N_("The message is no longer in “{folder}” on the server.")


# -- flags as text --------------------------------------------------------------------------


def with_flag(flags: str, flag: str, add: bool) -> str:
    """The stored flags text with ``flag`` added or removed (sorted, as sync stores them)."""
    words = set((flags or "").split())
    if add:
        words.add(flag)
    else:
        words.discard(flag)
    return " ".join(sorted(words))


def _show_flags(message: Message, flags: str) -> None:
    message.flags = flags
    words = flags.split()
    message.seen, message.flagged = "\\Seen" in words, "\\Flagged" in words


def overlay(flags: str, actions: Iterable[str]) -> str:
    """Server flags with pending flag actions applied in order: what the console shows meanwhile."""
    for action in actions:
        flag, add = FLAG_ACTIONS[action]
        flags = with_flag(flags, flag, add)
    return flags


# -- the request ----------------------------------------------------------------------------


def clean_ids(value: Any) -> list[int]:
    if not isinstance(value, list) or not value or len(value) > MAX_IDS:
        raise Invalid({"ids": _("must be a list of 1 to %(n)d message ids", n=MAX_IDS)})
    for index, item in enumerate(value):
        # The item is named (ids.3) with the range, as record_id says it: 2**40 *is* a whole number.
        if not is_id(item):
            raise Invalid({f"ids.{index}": _("must be an id (a whole number from 1 to %(MAX_ID)s)", MAX_ID=MAX_ID)})
    return list(dict.fromkeys(value))


def clean_action(value: Any) -> str:
    if value not in ACTIONS:
        raise Invalid({"action": _("must be one of %(actions)s", actions=", ".join(ACTIONS))})
    return value


def own_messages(user: User, ids: list[int]) -> list[Message]:
    """The user's messages of ``ids``, in that order; any other id (someone else's too) is a 404."""
    owned = select(Account.id).where(Account.user_id == user.id).scalar_subquery()
    rows = {m.id: m for m in Message.query.filter(Message.id.in_(ids), Message.account_id.in_(owned))}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise NotFound(_("No such message: %(id)s.", id=missing[0]))
    return [rows[i] for i in ids]


def targets_for(messages: list[Message], action: str, folder_value: Any) -> dict[int, Folder]:
    """Account id → the folder its messages go to: its Trash, or the folder asked for (``move``)."""
    accounts = {m.account_id for m in messages}
    if action == TRASH:
        return {a: trash_folder(a) for a in accounts}
    if action != MOVE:
        return {}
    if not is_id(folder_value):
        raise Invalid({"folder": _("must be the id of a folder to move to (a whole number from 1 to %(MAX_ID)s)", MAX_ID=MAX_ID)})
    folder = db.session.get(Folder, folder_value)
    if folder is None or folder.account_id not in accounts:
        raise Invalid({"folder": _("must be a folder of the messages' mailbox")})
    if len(accounts) > 1:
        raise Invalid({"folder": _("the messages are in several mailboxes: move them one mailbox at a time")})
    if not folder.exists_on_server or not selectable(folder):
        raise Invalid({"folder": _("this folder cannot hold messages (it is gone or only a container)")})
    return {folder.account_id: folder}


def trash_folder(account_id: int) -> Folder:
    """The folder mapped as Trash in the mailbox; none mapped is a 422 saying where to map one."""
    folder = Folder.query.filter_by(account_id=account_id, role=FolderRole.TRASH.value).first()
    if folder is None or not folder.exists_on_server:
        account = db.session.get(Account, account_id)
        raise Invalid(
            {
                "action": _(
                    "No folder of %(mailbox)s is mapped as Trash: choose one on the mailbox's folder page.",
                    mailbox=account.email,
                )
            }
        )
    return folder


# -- recording a change -----------------------------------------------------------------------


def record(
    user: User,
    messages: list[Message],
    action: str,
    targets: dict[int, Folder],
    *,
    skip_moving: bool = False,
) -> list[MessageChange]:
    """Apply ``action`` to the rows now and keep one pending change per message that needs the server.

    A message that already is as asked is left alone; a POP3 mailbox's flags are the console's
    own (changed here, no job); a message still being moved is a 409 (left alone with
    ``skip_moving``: the send job's ``answered``/``forwarded``).  Not committed.  A few
    queries whatever the selection's size (a page of 200 is one request).
    """
    pks = [m.id for m in messages]
    accounts = {a.id: a for a in Account.query.filter(Account.id.in_({m.account_id for m in messages}))}
    context = _Context(
        earlier=_pending_flag_changes(pks), placed=_placed_of([m.id for m in messages if m.uid <= 0])
    )
    changes = []
    with db.session.no_autoflush:
        for message in messages:
            target = targets.get(message.account_id)
            try:
                change = _record_one(user, accounts[message.account_id], message, action, target, context)
            except Conflict:
                if not skip_moving:
                    raise
                continue
            if change is not None:
                changes.append(change)
    if context.replaced:
        db.session.execute(delete(MessageChange).where(MessageChange.id.in_(context.replaced)))
    db.session.add_all(changes)
    db.session.flush()
    return changes


@dataclass
class _Context:
    """What :func:`record` reads once for the whole selection."""

    earlier: dict[int, list[MessageChange]]
    placed: dict[int, MessageChange]
    replaced: list[int] = field(default_factory=list)


def _record_one(user: User, account: Account, message: Message, action: str, target, context: _Context):
    if action in FLAG_ACTIONS:
        flag, add = FLAG_ACTIONS[action]
        if (flag in message.flags.split()) == add:
            return None
        if account.incoming_protocol == "pop3":
            _show_flags(message, with_flag(message.flags, flag, add))
            return None
    elif target is None or target.id == message.folder_id:
        return None
    elif account.incoming_protocol == "pop3":
        raise Invalid({"action": _("Messages of a POP3 mailbox cannot be moved: the server has no folders.")})
    where = _server_place(message, context.placed.get(message.id))
    if where is None:
        raise Conflict(
            _("The message “%(subject)s” is being moved; try again in a moment.", subject=message.subject)
        )
    earlier = context.earlier.get(message.id)
    change = MessageChange(
        message_pk=message.id,
        user_id=user.id,
        account_id=message.account_id,
        folder_id=where[0],
        uid=where[1],
        action=MOVE if target is not None else action,
        target_folder_id=target.id if target is not None else None,
        # The flags the server has: the row's, less the flag changes still pending.
        server_flags=earlier[0].server_flags if earlier else message.flags,
    )
    if target is not None:
        if message.id in context.placed:  # moved again: the old placement is over
            context.replaced.append(context.placed[message.id].id)
        message.folder_id, message.uid = target.id, -message.id
    else:
        _show_flags(message, with_flag(message.flags, *FLAG_ACTIONS[action]))
    return change


def originals(user_id: int, origin: str, in_reply_to: str | None, references: str | None) -> list[Message]:
    """The user's messages a sent reply or forward was made from (every copy, in any of their mailboxes).

    The outgoing row names its parent by Message-ID (:mod:`webapp.replies`): a reply's
    In-Reply-To, a forward's last References entry.  None found (deleted meanwhile, or the
    original had no Message-ID): an empty list.
    """
    if origin not in SENT_ACTIONS:
        return []
    ids = _MSGID.findall((in_reply_to if origin == "reply" else references) or "")
    if not ids:
        return []
    parent = ids[0] if origin == "reply" else ids[-1]
    owned = select(Account.id).where(Account.user_id == user_id).scalar_subquery()
    return (
        Message.query.filter(Message.message_id == parent, Message.account_id.in_(owned))
        .order_by(Message.id)
        .all()
    )


def server_place(message: Message) -> tuple[int, int] | None:
    """(folder id, UID) of the message on the server; None while a move of it is in flight."""
    return _server_place(message, _placed_of([message.id]).get(message.id) if message.uid <= 0 else None)


def _server_place(message: Message, placed: MessageChange | None) -> tuple[int, int] | None:
    """(folder id, UID) of the message on the server; None while a move of it is in flight."""
    if message.uid > 0:
        return message.folder_id, message.uid
    if placed is not None and placed.new_uid:
        return placed.target_folder_id, placed.new_uid
    return None


def _placed_of(message_pks: list[int]) -> dict[int, MessageChange]:
    if not message_pks:
        return {}
    rows = MessageChange.query.filter(
        MessageChange.message_pk.in_(message_pks), MessageChange.state == PLACED
    )
    return {c.message_pk: c for c in rows}


def _pending_flag_changes(message_pks) -> dict[int, list[MessageChange]]:
    """Message id → its pending flag changes, oldest first (one query)."""
    out: dict[int, list[MessageChange]] = defaultdict(list)
    if not message_pks:
        return out
    rows = (
        MessageChange.query.filter(
            MessageChange.message_pk.in_(list(message_pks)),
            MessageChange.state == PENDING,
            MessageChange.action != MOVE,
        )
        .order_by(MessageChange.id)
        .all()
    )
    for c in rows:
        out[c.message_pk].append(c)
    return out


def groups(changes: list[MessageChange]) -> list[list[MessageChange]]:
    """One group per server folder, action and target: one job, one command with a UID set each."""
    out: dict[tuple, list[MessageChange]] = defaultdict(list)
    for c in changes:
        out[(c.account_id, c.folder_id, c.action, c.target_folder_id)].append(c)
    return list(out.values())


# -- the job's answers ----------------------------------------------------------------------


def note_job(change_ids: list[int], job_id: str) -> None:
    db.session.execute(
        MessageChange.__table__.update().where(MessageChange.id.in_(change_ids)).values(job_id=job_id)
    )


def claim(change_ids: list[int], job_id: str | None, token: str) -> list[int]:
    """Take these pending changes from the lost ``job_id`` (None: no job) for a new one, naming
    ``token`` until it is enqueued; answers the ids taken (not committed).  One conditional UPDATE:
    of two sweepers only one takes a change, and a change settled meanwhile is left alone."""
    owner = MessageChange.job_id.is_(None) if job_id is None else MessageChange.job_id == job_id
    db.session.execute(
        MessageChange.__table__.update()
        .where(MessageChange.id.in_(change_ids), owner, MessageChange.state == PENDING)
        .values(job_id=token)
    )
    taken = select(MessageChange.id).where(MessageChange.id.in_(change_ids), MessageChange.job_id == token)
    return list(db.session.scalars(taken))


def pending(change_ids: list[int]) -> list[MessageChange]:
    return (
        MessageChange.query.filter(MessageChange.id.in_(change_ids), MessageChange.state == PENDING)
        .order_by(MessageChange.id)
        .all()
    )


def settle_flags(
    changes: list[MessageChange], answered: dict[int, str], folder: Folder
) -> list[MessageChange]:
    """The server stored the flags: rows take the server's answer (plus later pending changes).

    A UID the server did not answer for is no longer in the folder there: that change fails.
    Returns the failed ones.
    """
    done = [c for c in changes if c.uid in answered]
    failed = [c for c in changes if c.uid not in answered]
    messages = _messages_of(done)
    for change in done:
        db.session.delete(change)
    db.session.flush()
    later = _pending_flag_changes(messages)
    for change in done:
        message = messages.get(change.message_pk)
        if message is not None and message.folder_id == change.folder_id:
            for c in later.get(message.id, []):
                c.server_flags = answered[change.uid]
            _show_flags(message, overlay(answered[change.uid], [c.action for c in later.get(message.id, [])]))
    fail(failed, NO_LONGER_THERE.format(folder=folder.display_name))
    return failed


def _messages_of(changes: list[MessageChange]) -> dict[int, Message]:
    pks = [c.message_pk for c in changes]
    return {m.id: m for m in Message.query.filter(Message.id.in_(pks))} if pks else {}


def settle_move(
    changes: list[MessageChange], new_uids: dict[int, int], uidvalidity: int | None, target: Folder
):
    """The server moved the messages: each row gets its new UID when safe, else waits to be adopted."""
    messages = _messages_of(changes)
    placed = []
    for change in changes:
        message = messages.get(change.message_pk)
        if message is None:
            db.session.delete(change)
            continue
        if not target.sync or target.uidvalidity is None:
            db.session.delete(message)  # a folder Mailroom does not sync: the row leaves with the message
            continue
        change.state, change.new_uid = PLACED, new_uids.get(change.uid)
        if uidvalidity is not None and uidvalidity != target.uidvalidity:
            change.new_uid = None
        placed.append(change)
    db.session.flush()
    _promote(placed, target, messages)


def _promote(placed: list[MessageChange], target: Folder, messages: dict[int, Message]) -> None:
    """Give placed rows their real UID now when the target's stored state reaches it.

    The sync engine fetches new mail from the highest stored UID up, so a row may only carry
    UIDs that follow what the store has; and a row the sync already stored under the new UID
    makes the placeholder a duplicate, which goes.
    """
    known = [c for c in placed if c.new_uid]
    if not known:
        return
    existing = set(
        db.session.scalars(
            select(Message.uid).where(
                Message.folder_id == target.id, Message.uid.in_([c.new_uid for c in known])
            )
        )
    )
    for change in [c for c in known if c.new_uid in existing]:
        db.session.execute(delete(Message).where(Message.id == change.message_pk))
        known.remove(change)
    top = db.session.scalar(select(func.max(Message.uid)).where(Message.folder_id == target.id)) or 0
    expected = max(top + 1, target.uidnext or 1)
    new = sorted(c.new_uid for c in known)
    if known and target.seeded_uid is None and new == list(range(expected, expected + len(new))):
        for change in known:
            messages[change.message_pk].uid = change.new_uid
            db.session.delete(change)


def fail(changes: list[MessageChange], error: str) -> None:
    """Put the rows back as the server has them and keep the changes as ``failed`` with ``error``."""
    if not changes:
        return
    for change in changes:
        change.state, change.error = FAILED, error[:2000]
    db.session.flush()
    messages = _messages_of(changes)
    later = _pending_flag_changes(messages)
    for change in changes:
        message = messages.get(change.message_pk)
        if message is None:
            continue
        if change.action == MOVE and message.folder_id == change.target_folder_id and message.uid < 0:
            message.folder_id, message.uid = change.folder_id, change.uid
        elif change.action != MOVE and message.folder_id == change.folder_id:
            _show_flags(message, overlay(change.server_flags, [c.action for c in later.get(message.id, [])]))


# -- what the sync store asks -----------------------------------------------------------------


def pending_flag_actions(folder_id: int) -> dict[int, list[tuple[int, str]]]:
    """UID → [(change id, action)] of the folder's pending flag changes, oldest first."""
    rows = db.session.execute(
        select(MessageChange.uid, MessageChange.id, MessageChange.action)
        .where(
            MessageChange.folder_id == folder_id, MessageChange.state == PENDING, MessageChange.action != MOVE
        )
        .order_by(MessageChange.id)
    )
    out: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for uid, change_id, action in rows:
        out[uid].append((change_id, action))
    return out


def note_server_flags(change_ids: list[int], flags: str) -> None:
    """A sync read the server's flags of a message with pending changes: a failure restores these."""
    db.session.execute(
        MessageChange.__table__.update().where(MessageChange.id.in_(change_ids)).values(server_flags=flags)
    )


def pending_move_uids(folder_id: int) -> set[int]:
    """UIDs of the folder whose rows are already in another folder (a move in flight)."""
    rows = db.session.scalars(
        select(MessageChange.uid).where(
            MessageChange.folder_id == folder_id, MessageChange.state == PENDING, MessageChange.action == MOVE
        )
    )
    return set(rows)


def forget(change_id: int) -> None:
    """A placed row was adopted by the target's sync: its change is over."""
    db.session.execute(delete(MessageChange).where(MessageChange.id == change_id))


def placed_uids(folder_id: int) -> dict[int, tuple[int, int]]:
    """New UID → (change id, message id) of rows moved into the folder that wait for its sync."""
    rows = db.session.execute(
        select(MessageChange.new_uid, MessageChange.id, MessageChange.message_pk).where(
            MessageChange.target_folder_id == folder_id,
            MessageChange.state == PLACED,
            MessageChange.new_uid.is_not(None),
        )
    )
    return {uid: (cid, pk) for uid, cid, pk in rows}


# -- what the pages show ----------------------------------------------------------------------


def rows_of(message_ids: list[int]) -> list[Message]:
    """The messages of ``message_ids`` in that order, loaded in one query (a moved-away row is absent)."""
    rows = {m.id: m for m in Message.query.filter(Message.id.in_(message_ids))} if message_ids else {}
    return [rows[i] for i in message_ids if i in rows]


def pending_ids(message_ids: list[int]) -> set[int]:
    """Which of these messages have a change the server has not confirmed yet."""
    if not message_ids:
        return set()
    return set(
        db.session.scalars(
            select(MessageChange.message_pk).where(
                MessageChange.message_pk.in_(message_ids), MessageChange.state == PENDING
            )
        )
    )


def notices(user: User, limit: int = 10) -> list[MessageChange]:
    """The user's failed changes, newest first: each says what was put back and why."""
    return (
        MessageChange.query.filter_by(user_id=user.id, state=FAILED)
        .order_by(MessageChange.id.desc())
        .limit(limit)
        .all()
    )


def dismiss(user: User, change_id: int | None = None) -> int:
    """Forget one failed change of the user's (or all of them); answers how many went."""
    query = delete(MessageChange).where(MessageChange.user_id == user.id, MessageChange.state == FAILED)
    if change_id is not None:
        query = query.where(MessageChange.id == change_id)
    count = db.session.execute(query).rowcount
    db.session.commit()
    return count


def describe(change: MessageChange) -> str:
    """What the change was, for a notice: “Flag “Subject””."""
    message = db.session.get(Message, change.message_pk)
    subject = (message.subject if message is not None else "") or _("(no subject)")
    if change.action == MOVE:
        target = db.session.get(Folder, change.target_folder_id)
        return _(
            "Moving “%(subject)s” to %(folder)s",
            subject=subject,
            folder=target.display_name if target else "?",
        )
    words = {
        "read": _("Marking “%(subject)s” read", subject=subject),
        "unread": _("Marking “%(subject)s” unread", subject=subject),
        "flag": _("Flagging “%(subject)s”", subject=subject),
        "unflag": _("Unflagging “%(subject)s”", subject=subject),
        "answered": _("Marking “%(subject)s” answered", subject=subject),
        "forwarded": _("Marking “%(subject)s” forwarded", subject=subject),
    }
    return words[change.action]


def change_as_dict(change: MessageChange) -> dict:
    return {
        "id": change.id,
        "message_id": change.message_pk,
        "action": change.action,
        "state": change.state,
        "error": change.error,
        "what": describe(change),
    }
