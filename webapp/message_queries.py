"""Reading what sync stored: one folder, the unified role views, Flagged, search, threads, history.

Visibility is decided here once, for the pages and the API alike: a person sees
the messages of their own mailboxes only (an administrator too).  The only
wider door is :func:`account_scope`, used by the API's ``accounts/<id>``
endpoints, where an administrator may read any mailbox (as the rest of the
accounts API allows).

Lists are newest first (date, then id, both descending; a message without a
date sorts after all dated ones) with keyset pagination: the cursor is an
opaque string encoding the last row's (date, id), so a page never repeats or
skips rows while new mail arrives, and it costs the same on page 1 and 1000.
Threads and the correspondent history are grouped lists: each group is
represented by its newest message, so they page the same way.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from .errors import Invalid, NotFound
from .extensions import db
from .folders import ordered as ordered_folders
from .folders import selectable
from .models import Account, Folder, FolderRole, Message, User
from .validation import is_id, record_id

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
FLAGGED = "flagged"
#: The unified views, in the order the pages show them.
ROLES = tuple(r.value for r in FolderRole)
VIEWS = (*ROLES, FLAGGED)


# -- parameters ---------------------------------------------------------------------------


def parse_limit(value: Any, default: int = DEFAULT_LIMIT) -> int:
    """``limit`` from a query string: 1 to 200, default 50; anything else is a 422 naming it."""
    if value in (None, ""):
        return default
    try:
        limit = int(value)
    except (TypeError, ValueError):
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid({"limit": _("must be a whole number from 1 to %(MAX_LIMIT)s", MAX_LIMIT=MAX_LIMIT)})
    return limit


def encode_cursor(date: datetime | None, key: int | str) -> str:
    """An opaque cursor for the row or group (date, key)."""
    stamp = date.isoformat() if date is not None else ""
    kind = "i" if isinstance(key, int) else "s"
    raw = f"{stamp}|{kind}|{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str, kind: str = "i", name: str = "cursor") -> tuple[datetime | None, int | str]:
    """The (date, key) a cursor encodes; a cursor not made by :func:`encode_cursor` is a 422."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        stamp, got_kind, key = raw.split("|", 2)
        if got_kind != kind:
            raise ValueError(kind)
        date = datetime.fromisoformat(stamp) if stamp else None
        return date, (record_id(key) if kind == "i" else key)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Invalid({name: _("must be a cursor returned by a previous page")}) from None


def clean_query(value: Any) -> str:
    """The search text ``q``: at most 200 characters, surrounding spaces dropped."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 200:
        raise Invalid({"q": _("must be text of at most 200 characters")})
    return value.strip()


def clean_view(value: Any, name: str = "role") -> str:
    if value not in VIEWS:
        raise Invalid({name: "must be one of " + ", ".join(VIEWS)})
    return value


def clean_address(value: Any) -> str:
    """An e-mail address for the history, lower-cased as ``participants`` stores it."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid({"address": _("This field is required.")})
    address = value.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in address) or len(address) > 320:
        raise Invalid({"address": _("must be an e-mail address like name@example.com")})
    return address


# -- visibility ---------------------------------------------------------------------------


def own_account_ids(user: User):
    """The ids of the user's own mailboxes, as a subquery (every view starts here)."""
    return select(Account.id).where(Account.user_id == user.id).scalar_subquery()


def visible_messages(user: User):
    return Message.query.filter(Message.account_id.in_(own_account_ids(user)))


def account_scope(viewer: User, account_id: int) -> Account:
    """A mailbox for the API's ``accounts/<id>`` endpoints: one's own, or any for an administrator."""
    account = db.session.get(Account, account_id)
    if account is None or (account.user_id != viewer.id and not viewer.is_admin):
        raise NotFound(_("No such mailbox."))
    return account


def get_message(user: User, message_pk: int, account: Account | None = None) -> Message:
    """One of the user's messages (or of ``account``, already authorised); 404 for anyone else's."""
    message = db.session.get(Message, message_pk)
    allowed = message is not None and (
        message.account_id == account.id if account is not None else _owns(user, message.account_id)
    )
    if not allowed:
        raise NotFound(_("No such message."))
    return message


def _owns(user: User, account_id: int) -> bool:
    account = db.session.get(Account, account_id)
    return account is not None and account.user_id == user.id


def get_folder(account_ids, folder_id: Any) -> Folder:
    """A folder of one of ``account_ids`` (a list or subquery); a bad or foreign id is a 422/404."""
    try:
        fid = record_id(folder_id)
    except ValueError as exc:
        raise Invalid({"folder": str(exc)}) from None
    folder = Folder.query.filter(Folder.id == fid, Folder.account_id.in_(account_ids)).first()
    if folder is None:
        raise NotFound(_("No such folder."))
    return folder


# -- filters ------------------------------------------------------------------------------


def _lower(column) -> ColumnElement:
    """Unicode lower-case on both databases (SQLite's own lower() folds ASCII only)."""
    if db.session.get_bind().dialect.name == "sqlite":
        driver = db.session.connection().connection.driver_connection
        driver.create_function("mailroom_lower", 1, _py_lower, deterministic=True)
        return func.mailroom_lower(column)
    return func.lower(column)


def _py_lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_filter(q: str, entity=Message) -> ColumnElement:
    """Sender (name or address) or subject contains every word of ``q``, ignoring case."""
    conditions = []
    for word in q.lower().split():
        pattern = f"%{_like_escape(word)}%"
        conditions.append(
            or_(
                *(
                    _lower(col).like(pattern, escape="\\")
                    for col in (entity.from_name, entity.from_addr, entity.subject)
                )
            )
        )
    return and_(*conditions)


def _view_conditions(user: User, view: str, q: str = "", entity=Message) -> list[ColumnElement]:
    conditions = [entity.account_id.in_(own_account_ids(user))]
    if view == FLAGGED:
        conditions.append(entity.flagged.is_(True))
    else:
        roles = select(Folder.id).where(Folder.role == view, Folder.account_id.in_(own_account_ids(user)))
        conditions.append(entity.folder_id.in_(roles.scalar_subquery()))
    if q:
        conditions.append(search_filter(q, entity))
    return conditions


def view_query(user: User, view: str, q: str = ""):
    """The user's messages of a unified view: a role merged over every mailbox, or all flagged ones."""
    return Message.query.filter(*_view_conditions(user, view, q))


def account_query(account: Account, q: str = ""):
    """Every stored message of one mailbox (the caller has checked who may read it)."""
    query = Message.query.filter(Message.account_id == account.id)
    if q:
        query = query.filter(search_filter(q))
    return query


def folder_query(folder: Folder, q: str = ""):
    query = Message.query.filter(Message.folder_id == folder.id)
    if q:
        query = query.filter(search_filter(q))
    return query


# -- keyset pages of messages -------------------------------------------------------------


@dataclass
class Page:
    """A page of rows, newest first, with the cursors of the older and newer pages (None at the ends)."""

    items: list = field(default_factory=list)
    next_cursor: str | None = None
    prev_cursor: str | None = None


def _older(date: datetime | None, pk: int) -> ColumnElement:
    if date is None:
        return and_(Message.date.is_(None), Message.id < pk)
    return or_(Message.date < date, and_(Message.date == date, Message.id < pk), Message.date.is_(None))


def _newer(date: datetime | None, pk: int) -> ColumnElement:
    if date is None:
        return or_(Message.date.is_not(None), Message.id > pk)
    return or_(Message.date > date, and_(Message.date == date, Message.id > pk))


def paginate(query, limit: int, cursor: str | None = None, after: str | None = None) -> Page:
    """Newest first; ``cursor`` gives the page older than it, ``after`` the page newer than it."""
    if after:
        date, pk = decode_cursor(after, name="after")
        rows = (
            query.filter(_newer(date, pk))
            .order_by(Message.date.asc().nulls_first(), Message.id.asc())
            .limit(limit + 1)
            .all()
        )
        more_newer = len(rows) > limit
        rows = list(reversed(rows[:limit]))
        page = Page(rows)
        if rows:
            page.next_cursor = encode_cursor(rows[-1].date, rows[-1].id)
            if more_newer:
                page.prev_cursor = encode_cursor(rows[0].date, rows[0].id)
        return page
    if cursor:
        date, pk = decode_cursor(cursor)
        query = query.filter(_older(date, pk))
    rows = query.order_by(Message.date.desc().nulls_last(), Message.id.desc()).limit(limit + 1).all()
    page = Page(rows[:limit])
    if len(rows) > limit:
        page.next_cursor = encode_cursor(rows[limit - 1].date, rows[limit - 1].id)
    if cursor and page.items:
        page.prev_cursor = encode_cursor(page.items[0].date, page.items[0].id)
    return page


# -- grouped pages: threads and the correspondent history ---------------------------------


def _newest_of_each(query, conditions, key: str, limit: int, cursor: str | None) -> Page:
    """A page of the rows of ``query`` that are the newest of their ``key`` group.

    A group is represented by its newest row, so groups page like rows: newest
    group first, the same keyset cursor.  The rows are walked newest first in
    chunks (each an index-ordered keyset page) and a row is kept when its group
    was not met before, on this page or, asked once per chunk, before the
    cursor; so the first page costs a few chunks, not a pass over the whole
    view.  A row whose ``key`` is NULL is a group of its own.
    """
    column = getattr(Message, key)
    chunk_size = max(4 * limit, 200)
    start = decode_cursor(cursor) if cursor else None
    seen: set[str] = set()
    kept: list[Message] = []
    chunk_cursor = cursor
    while len(kept) <= limit:
        chunk = paginate(query, chunk_size, chunk_cursor)
        fresh = {getattr(m, key) for m in chunk.items if getattr(m, key)} - seen
        if start is not None and fresh:
            at_or_before = or_(_newer(*start), Message.id == start[1])  # the cursor's own row was shown
            before = Message.query.filter(*conditions(Message), column.in_(fresh), at_or_before)
            seen |= {value for (value,) in before.with_entities(column).distinct()}
        for m in chunk.items:
            value = getattr(m, key)
            if value is None or value not in seen:
                if value is not None:
                    seen.add(value)
                kept.append(m)
                if len(kept) > limit:
                    break
        if chunk.next_cursor is None:
            break
        chunk_cursor = chunk.next_cursor
    page = Page(kept[:limit])
    if len(kept) > limit:
        last = kept[limit - 1]
        page.next_cursor = encode_cursor(last.date, last.id)
    return page


def _members(conditions, key: str, values: list[str]) -> dict[str, list[Message]]:
    """Every matching row of the groups ``values``, newest first."""
    out: dict[str, list[Message]] = {v: [] for v in values}
    if values:
        rows = (
            Message.query.filter(*conditions(Message), getattr(Message, key).in_(values))
            .order_by(Message.date.desc().nulls_last(), Message.id.desc())
            .all()
        )
        for m in rows:
            out[getattr(m, key)].append(m)
    return out


def threads(
    user: User, view: str, q: str = "", limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page:
    """Threads of a unified view, newest first: {thread_key, count, newest, subject, senders, latest}.

    A message without any Message-ID is a thread of its own, keyed ``#<id>``.
    """

    def conditions(entity):
        return _view_conditions(user, view, q, entity)

    page = _newest_of_each(view_query(user, view, q), conditions, "thread_key", limit, cursor)
    members = _members(conditions, "thread_key", [m.thread_key for m in page.items if m.thread_key])
    items = []
    for latest in page.items:
        msgs = members[latest.thread_key] if latest.thread_key else [latest]
        senders: list[str] = []
        for m in msgs:
            name = m.from_name or m.from_addr
            if name and name not in senders:
                senders.append(name)
        items.append(
            {
                "thread_key": latest.thread_key or f"#{latest.id}",
                "count": len(msgs),
                "newest": latest.date,
                "subject": msgs[-1].subject,
                "senders": senders,
                "latest": latest,
                "unread": sum(1 for m in msgs if not m.seen),
            }
        )
    return Page(items, page.next_cursor)


def thread_messages(user: User, thread_key: str) -> list[Message]:
    """Every message of one of the user's threads, oldest first; 404 if the user has none."""
    if thread_key.startswith("#") and thread_key[1:].isascii() and thread_key[1:].isdigit():
        if not is_id(int(thread_key[1:])):
            raise NotFound(_("No such thread."))
        query = visible_messages(user).filter(Message.id == int(thread_key[1:]), Message.thread_key.is_(None))
    else:
        query = visible_messages(user).filter(Message.thread_key == thread_key)
    rows = query.order_by(Message.date.asc().nulls_first(), Message.id.asc()).all()
    if not rows:
        raise NotFound(_("No such thread."))
    return rows


@dataclass
class HistoryEntry:
    """A message exchanged with the correspondent, once per Message-ID, with every copy's place."""

    message: Message
    copies: list[Message]
    places: list[dict]


def history(user: User, address: str, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Page:
    """Every message from, to or cc ``address`` across the user's mailboxes, newest first.

    The same Message-ID synced through two mailboxes (or two folders) is one
    entry listing the mailboxes and folders it came through; a message without
    a Message-ID is its own entry.
    """
    address = clean_address(address)
    pattern = f"% {_like_escape(address)} %"

    def conditions(entity):
        return [entity.account_id.in_(own_account_ids(user)), entity.participants.like(pattern, escape="\\")]

    page = _newest_of_each(
        Message.query.filter(*conditions(Message)), conditions, "message_id", limit, cursor
    )
    same = _members(conditions, "message_id", [m.message_id for m in page.items if m.message_id])
    copies = {
        m.id: sorted(same[m.message_id], key=lambda c: c.id) if m.message_id else [m] for m in page.items
    }
    folders = _folders_of([m.folder_id for ms in copies.values() for m in ms])
    items = []
    for newest in page.items:
        ms = copies[newest.id]
        places = []
        for m in ms:
            folder = folders.get(m.folder_id)
            account = folder.account if folder else None
            places.append(
                {
                    "message_id": m.id,
                    "account_id": m.account_id,
                    "account": account.email if account else None,
                    "folder_id": m.folder_id,
                    "folder": folder.display_name if folder else None,
                }
            )
        items.append(HistoryEntry(newest, ms, places))
    return Page(items, page.next_cursor)


def _folders_of(ids: list[int]) -> dict[int, Folder]:
    if not ids:
        return {}
    return {f.id: f for f in Folder.query.filter(Folder.id.in_(set(ids)))}


# -- the folder column of the pages -------------------------------------------------------


def sidebar(user: User) -> list[dict]:
    """Each of the user's mailboxes with its synced folders (or folders holding messages) and counts."""
    accounts = Account.query.filter_by(user_id=user.id).order_by(Account.is_main.desc(), Account.id).all()
    counts = dict(
        db.session.execute(
            select(Message.folder_id, func.count(Message.id))
            .where(Message.account_id.in_(own_account_ids(user)))
            .group_by(Message.folder_id)
        ).all()
    )
    out = []
    for account in accounts:
        folders = [
            f
            for f in sorted(account.folders, key=lambda f: (f.role != FolderRole.INBOX.value, f.display_name))
            if f.sync or counts.get(f.id)
        ]
        out.append(
            {"account": account, "folders": [{"folder": f, "count": counts.get(f.id, 0)} for f in folders]}
        )
    return out


def move_targets(user: User, folder: Folder | None = None) -> list[dict]:
    """The folders messages may be moved to, per mailbox: ``folder``'s mailbox only when one is open.

    IMAP mailboxes only (POP3 has no folders on the server); folders gone from the server or that
    cannot hold messages are left out.
    """
    query = Account.query.filter_by(user_id=user.id, incoming_protocol="imap")
    if folder is not None:
        query = query.filter(Account.id == folder.account_id)
    out = []
    for account in query.order_by(Account.is_main.desc(), Account.id):
        folders = [
            f
            for f in ordered_folders(account)
            if f.exists_on_server and selectable(f) and (folder is None or f.id != folder.id)
        ]
        if folders:
            out.append({"account": account, "folders": folders})
    return out


# -- JSON ---------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def message_as_dict(message: Message, folder: Folder | None = None) -> dict:
    """A message's stored fields for the API (no body: see webapp.message_bodies)."""
    folder = folder or db.session.get(Folder, message.folder_id)
    return {
        "id": message.id,
        "account_id": message.account_id,
        "folder_id": message.folder_id,
        "folder": folder.display_name if folder else None,
        "folder_role": folder.role if folder else None,
        "uid": message.uid if message.uid > 0 else None,  # a move's placeholder until the sync
        "message_id": message.message_id,
        "in_reply_to": message.in_reply_to,
        "thread_key": message.thread_key,
        "subject": message.subject,
        "from": {"name": message.from_name, "address": message.from_addr},
        "to": message.to_addrs,
        "cc": message.cc_addrs,
        "date": _iso(message.date),
        "size": message.size,
        "flags": message.flags.split() if message.flags else [],
        "seen": message.seen,
        "flagged": message.flagged,
        "preview": message.preview,
    }


def messages_as_dicts(messages: list[Message]) -> list[dict]:
    folders = _folders_of([m.folder_id for m in messages])
    return [message_as_dict(m, folders.get(m.folder_id)) for m in messages]


def thread_as_dict(item: dict) -> dict:
    return {
        "thread_key": item["thread_key"],
        "count": item["count"],
        "unread": item["unread"],
        "newest": _iso(item["newest"]),
        "subject": item["subject"],
        "senders": item["senders"],
        "latest": message_as_dict(item["latest"]) if item["latest"] is not None else None,
    }


def history_entry_as_dict(entry: HistoryEntry) -> dict:
    body = message_as_dict(entry.message)
    body["copies"] = entry.places
    return body
