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
Threads and the correspondent history are grouped lists, paginated the same
way on (newest date of the group, group key).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from .errors import Invalid, NotFound
from .extensions import db
from .models import Account, Folder, FolderRole, Message, User

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
FLAGGED = "flagged"
#: The unified views, in the order the pages show them.
ROLES = tuple(r.value for r in FolderRole)
VIEWS = (*ROLES, FLAGGED)
#: The oldest possible date, standing in for "no date" where groups are compared.
_NO_DATE = datetime(1, 1, 1)


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
        raise Invalid({"limit": f"must be a whole number from 1 to {MAX_LIMIT}"})
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
        return date, (int(key) if kind == "i" else key)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Invalid({name: "must be a cursor returned by a previous page"}) from None


def clean_query(value: Any) -> str:
    """The search text ``q``: at most 200 characters, surrounding spaces dropped."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 200:
        raise Invalid({"q": "must be text of at most 200 characters"})
    return value.strip()


def clean_view(value: Any, name: str = "role") -> str:
    if value not in VIEWS:
        raise Invalid({name: "must be one of " + ", ".join(VIEWS)})
    return value


def clean_address(value: Any) -> str:
    """An e-mail address for the history, lower-cased as ``participants`` stores it."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid({"address": "This field is required."})
    address = value.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in address) or len(address) > 320:
        raise Invalid({"address": "must be an e-mail address like name@example.com"})
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
        raise NotFound("No such mailbox.")
    return account


def get_message(user: User, message_pk: int, account: Account | None = None) -> Message:
    """One of the user's messages (or of ``account``, already authorised); 404 for anyone else's."""
    message = db.session.get(Message, message_pk)
    allowed = message is not None and (
        message.account_id == account.id if account is not None else _owns(user, message.account_id)
    )
    if not allowed:
        raise NotFound("No such message.")
    return message


def _owns(user: User, account_id: int) -> bool:
    account = db.session.get(Account, account_id)
    return account is not None and account.user_id == user.id


def get_folder(account_ids, folder_id: Any) -> Folder:
    """A folder of one of ``account_ids`` (a list or subquery); a bad or foreign id is a 422/404."""
    try:
        fid = int(folder_id)
    except (TypeError, ValueError):
        raise Invalid({"folder": "must be a folder id"}) from None
    folder = Folder.query.filter(Folder.id == fid, Folder.account_id.in_(account_ids)).first()
    if folder is None:
        raise NotFound("No such folder.")
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


def search_filter(q: str) -> ColumnElement:
    """Sender (name or address) or subject contains every word of ``q``, ignoring case."""
    conditions = []
    for word in q.lower().split():
        pattern = f"%{_like_escape(word)}%"
        conditions.append(
            or_(
                *(
                    _lower(col).like(pattern, escape="\\")
                    for col in (Message.from_name, Message.from_addr, Message.subject)
                )
            )
        )
    return and_(*conditions)


def view_query(user: User, view: str, q: str = ""):
    """The user's messages of a unified view: a role merged over every mailbox, or all flagged ones."""
    query = visible_messages(user)
    if view == FLAGGED:
        query = query.filter(Message.flagged.is_(True))
    else:
        roles = select(Folder.id).where(Folder.role == view, Folder.account_id.in_(own_account_ids(user)))
        query = query.filter(Message.folder_id.in_(roles.scalar_subquery()))
    if q:
        query = query.filter(search_filter(q))
    return query


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


def _grouped(query, key: ColumnElement, limit: int, cursor: str | None, cursor_name: str = "cursor"):
    """Groups of ``query``'s rows by ``key``, newest group first: [(key, newest date, count)], next."""
    base = query.with_entities(
        key.label("k"),
        func.max(func.coalesce(Message.date, _NO_DATE)).label("newest"),
        func.count(Message.id).label("n"),
    ).group_by(key)
    sub = base.subquery()
    stmt = select(sub.c.k, sub.c.newest, sub.c.n)
    if cursor:
        date, last_key = decode_cursor(cursor, kind="s", name=cursor_name)
        date = date or _NO_DATE
        stmt = stmt.where(or_(sub.c.newest < date, and_(sub.c.newest == date, sub.c.k < last_key)))
    rows = db.session.execute(stmt.order_by(sub.c.newest.desc(), sub.c.k.desc()).limit(limit + 1)).all()
    next_cursor = None
    if len(rows) > limit:
        k, newest, _ = rows[limit - 1]
        next_cursor = encode_cursor(newest, str(k))
    return [(r.k, None if r.newest == _NO_DATE else r.newest, r.n) for r in rows[:limit]], next_cursor


def _thread_key_expr() -> ColumnElement:
    # A message without any Message-ID is a thread of its own.
    return func.coalesce(Message.thread_key, literal("#") + cast(Message.id, String))


def threads(
    user: User, view: str, q: str = "", limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page:
    """Threads of a unified view, newest first: {thread_key, count, newest, subject, senders, latest}."""
    query = view_query(user, view, q)
    groups, next_cursor = _grouped(query, _thread_key_expr(), limit, cursor)
    keys = [k for k, _, _ in groups]
    members: dict[str, list[Message]] = {k: [] for k in keys}
    if keys:
        for m in query.filter(_thread_key_expr().in_(keys)).order_by(
            Message.date.desc().nulls_last(), Message.id.desc()
        ):
            members[m.thread_key or f"#{m.id}"].append(m)
    items = []
    for key, newest, count in groups:
        msgs = members[key]
        senders: list[str] = []
        for m in msgs:
            name = m.from_name or m.from_addr
            if name and name not in senders:
                senders.append(name)
        oldest = msgs[-1] if msgs else None
        items.append(
            {
                "thread_key": key,
                "count": count,
                "newest": newest,
                "subject": oldest.subject if oldest else "",
                "senders": senders,
                "latest": msgs[0] if msgs else None,
                "unread": sum(1 for m in msgs if not m.seen),
            }
        )
    return Page(items, next_cursor)


def thread_messages(user: User, thread_key: str) -> list[Message]:
    """Every message of one of the user's threads, oldest first; 404 if the user has none."""
    if thread_key.startswith("#") and thread_key[1:].isdigit():
        query = visible_messages(user).filter(Message.id == int(thread_key[1:]), Message.thread_key.is_(None))
    else:
        query = visible_messages(user).filter(Message.thread_key == thread_key)
    rows = query.order_by(Message.date.asc().nulls_first(), Message.id.asc()).all()
    if not rows:
        raise NotFound("No such thread.")
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
    query = visible_messages(user).filter(
        Message.participants.like(f"% {_like_escape(address)} %", escape="\\")
    )
    key = func.coalesce(Message.message_id, literal("#") + cast(Message.id, String))
    groups, next_cursor = _grouped(query, key, limit, cursor)
    keys = [k for k, _, _ in groups]
    copies: dict[str, list[Message]] = {k: [] for k in keys}
    if keys:
        for m in query.filter(key.in_(keys)).order_by(Message.id):
            copies[m.message_id or f"#{m.id}"].append(m)
    folders = _folders_of([m.folder_id for ms in copies.values() for m in ms])
    items = []
    for k, _, _ in groups:
        ms = copies[k]
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
        items.append(HistoryEntry(ms[0], ms, places))
    return Page(items, next_cursor)


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
        "uid": message.uid,
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
