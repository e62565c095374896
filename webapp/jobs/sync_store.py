"""The sync engine's store on Mailroom's database: SQLAlchemy Core bulk statements, one commit per batch.

:class:`SqlSyncStore` implements :class:`connectors.sync.SyncStore` for the ``folders`` and
``messages`` tables.  It works on the current ``db.session`` (a worker's application context,
or a benchmark's), and uses Core statements rather than ORM objects because a first sync writes
tens of thousands of rows and the ORM's per-object bookkeeping would dominate.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from sqlalchemy import BigInteger, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Dialect

from connectors.sync import FolderState

from .. import message_changes
from ..extensions import db
from ..models import Folder, Message

_STATE_COLUMNS = (
    "uidvalidity",
    "uidnext",
    "highestmodseq",
    "message_count",
    "seeded_uid",
    "last_full_sync_at",
    "last_synced_at",
)
_messages = Message.__table__
_folders = Folder.__table__
#: Rows per DELETE ... IN (...) statement.
_DELETE_CHUNK = 500


@functools.lru_cache(maxsize=32)
def _compiled_insert(dialect: Dialect, keys: tuple[str, ...]) -> tuple[str, list[str], dict, list]:
    """(SQL, parameter order, bind processors by column, Python defaults of absent columns) for
    inserting message rows with ``keys`` plus account_id/folder_id."""
    names = [c.name for c in _messages.columns if c.name in keys or c.name in ("account_id", "folder_id")]
    defaults = [
        (c.name, c.default)
        for c in _messages.columns
        if c.name not in names and c.default is not None and (c.default.is_scalar or c.default.is_callable)
    ]
    names += [name for name, _ in defaults]
    compiled = insert(_messages).inline().compile(dialect=dialect, column_keys=names)
    order = list(compiled.positiontup) if dialect.positional else names
    processors = {}
    for name in names:
        proc = _messages.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if proc is not None:
            processors[name] = proc
    return compiled.string, order, processors, defaults


class SqlSyncStore:
    """Folder state and message rows of one mailbox (``account_id``) in the SQL database."""

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self.session = db.session

    def load_state(self, folder_id: int) -> FolderState:
        row = self.session.execute(
            select(*(_folders.c[c] for c in _STATE_COLUMNS)).where(_folders.c.id == folder_id)
        ).one()
        return FolderState(**dict(row._mapping))

    def save_state(self, folder_id: int, state: FolderState) -> None:
        values = {c: getattr(state, c) for c in _STATE_COLUMNS}
        self.session.execute(update(_folders).where(_folders.c.id == folder_id).values(**values))

    def stored_count_and_max_uid(self, folder_id: int) -> tuple[int, int]:
        count, top = self.session.execute(
            select(func.count(), func.max(_messages.c.uid)).where(
                _messages.c.folder_id == folder_id, _messages.c.uid > 0  # < 0: a move's placeholder
            )
        ).one()
        return int(count or 0), int(top or 0)

    def known_uids(self, folder_id: int) -> set[int]:
        return set(
            self.session.scalars(
                select(_messages.c.uid).where(_messages.c.folder_id == folder_id, _messages.c.uid > 0)
            )
        )

    def known_flags(self, folder_id: int) -> dict[int, str]:
        rows = self.session.execute(
            select(_messages.c.uid, _messages.c.flags).where(_messages.c.folder_id == folder_id, _messages.c.uid > 0)
        )
        return {uid: flags for uid, flags in rows}

    def insert_messages(self, folder_id: int, rows: list[dict]) -> None:
        """One driver ``executemany`` of an INSERT compiled once per dialect and key set.

        ``session.execute(insert(table), rows)`` builds and type-processes every row's parameters in
        Python (a tenth of a first sync); here only columns whose type has a bind processor on this
        dialect (SQLite's DATETIME) are converted, and Python-side column defaults are filled in
        once per batch.  Every row must have the first row's keys (as with Core executemany).
        """
        rows = self._not_moved(folder_id, rows)
        if not rows:
            return
        conn = self.session.connection()
        keys = tuple(rows[0])
        sql, order, processors, defaults = _compiled_insert(conn.dialect, keys)
        fixed = {"account_id": self.account_id, "folder_id": folder_id}
        for name, default in defaults:
            fixed[name] = default.arg if default.is_scalar else default.arg(None)
        getters = []
        for name in order:
            proc = processors.get(name)
            if name in fixed:
                value = fixed[name]
                getters.append((None, proc(value) if proc is not None else value))
            else:
                getters.append((name, proc))
        if all(proc is None for name, proc in getters if name is not None):
            consts = {i: value for i, (name, value) in enumerate(getters) if name is None}
            params = [
                tuple(consts[i] if name is None else row[name] for i, (name, _) in enumerate(getters))
                for row in rows
            ]
        else:
            params = [
                tuple(
                    value if name is None else (value(row[name]) if value is not None else row[name])
                    for name, value in getters
                )
                for row in rows
            ]
        if not conn.dialect.positional:
            params = [dict(zip(order, values, strict=True)) for values in params]
        conn.exec_driver_sql(sql, params)

    def _not_moved(self, folder_id: int, rows: list[dict]) -> list[dict]:
        """Rows less the messages a person is moving out of the folder (their row is in the target
        already) and those moved in that wait for this sync: those rows are adopted, not inserted
        again (webapp.message_changes)."""
        if not rows:
            return rows
        leaving = message_changes.pending_move_uids(folder_id)
        arriving = message_changes.placed_uids(folder_id)
        if not leaving and not arriving:
            return rows
        for row in rows:
            if row["uid"] in arriving:
                change_id, message_pk = arriving[row["uid"]]
                self.session.execute(
                    update(_messages)
                    .where(_messages.c.id == message_pk)
                    .values(uid=row["uid"], flags=row["flags"], seen=row["seen"], flagged=row["flagged"])
                )
                message_changes.forget(change_id)
        return [r for r in rows if r["uid"] not in leaving and r["uid"] not in arriving]

    def update_flags(self, folder_id: int, changes: list[tuple[int, str, int | None]]) -> None:
        if not changes:
            return
        # A person's flag change the job has not written yet stays shown over the server's flags.
        pending = message_changes.pending_flag_actions(folder_id)
        if pending:
            shown = []
            for uid, flags, modseq in changes:
                if uid in pending:
                    message_changes.note_server_flags([cid for cid, _ in pending[uid]], flags)
                    flags = message_changes.overlay(flags, [action for _, action in pending[uid]])
                shown.append((uid, flags, modseq))
            changes = shown
        stmt = (
            update(_messages)
            .where(_messages.c.folder_id == bindparam("b_folder"), _messages.c.uid == bindparam("b_uid"))
            .values(
                flags=bindparam("b_flags"),
                seen=bindparam("b_seen"),
                flagged=bindparam("b_flagged"),
                modseq=func.coalesce(bindparam("b_modseq", type_=BigInteger), _messages.c.modseq),
            )
        )
        params = [
            {
                "b_folder": folder_id,
                "b_uid": uid,
                "b_flags": flags,
                "b_seen": "\\Seen" in flags.split(),
                "b_flagged": "\\Flagged" in flags.split(),
                "b_modseq": modseq,
            }
            for uid, flags, modseq in changes
        ]
        self.session.execute(stmt, params)

    def delete_uids(self, folder_id: int, uids: Iterable[int]) -> None:
        uids = sorted(set(uids))
        for i in range(0, len(uids), _DELETE_CHUNK):
            chunk = uids[i : i + _DELETE_CHUNK]
            self.session.execute(
                delete(_messages).where(_messages.c.folder_id == folder_id, _messages.c.uid.in_(chunk))
            )

    def clear_folder(self, folder_id: int) -> None:
        self.session.execute(delete(_messages).where(_messages.c.folder_id == folder_id))
        self.save_state(folder_id, FolderState())

    def commit(self) -> None:
        self.session.commit()


def folder_states(account_ids: list[int]) -> dict[int, list[tuple[int, str, FolderState]]]:
    """Account id → ``(folder id, server name, FolderState)`` of its folders marked for sync that
    still exist on the server, in id order: what a batch of unchanged checks needs, in one query."""
    rows = db.session.execute(
        select(
            _folders.c.account_id, _folders.c.id, _folders.c.name, *(_folders.c[c] for c in _STATE_COLUMNS)
        )
        .where(
            _folders.c.account_id.in_(account_ids),
            _folders.c.sync.is_(True),
            _folders.c.exists_on_server.is_(True),
        )
        .order_by(_folders.c.id)
    )
    out: dict[int, list[tuple[int, str, FolderState]]] = {}
    for row in rows:
        state = FolderState(**{c: row._mapping[c] for c in _STATE_COLUMNS})
        out.setdefault(row.account_id, []).append((row.id, row.name, state))
    return out


def clear_folder_errors(folder_ids: list[int]) -> None:
    """The folders a check found unchanged have no error any more (not committed)."""
    if folder_ids:
        db.session.execute(
            update(_folders)
            .where(_folders.c.id.in_(folder_ids), _folders.c.last_error.is_not(None))
            .values(last_error=None)
        )
