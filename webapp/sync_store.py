"""The sync engine's store on Mailroom's database: SQLAlchemy Core bulk statements, one commit per batch.

:class:`SqlSyncStore` implements :class:`connectors.sync.SyncStore` for the ``folders`` and
``messages`` tables.  It works on the current ``db.session`` (a worker's application context,
or a benchmark's), and uses Core statements rather than ORM objects because a first sync writes
tens of thousands of rows and the ORM's per-object bookkeeping would dominate.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import BigInteger, bindparam, delete, func, insert, select, update

from connectors.sync import FolderState

from .extensions import db
from .models import Folder, Message

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
            select(func.count(), func.max(_messages.c.uid)).where(_messages.c.folder_id == folder_id)
        ).one()
        return int(count or 0), int(top or 0)

    def known_uids(self, folder_id: int) -> set[int]:
        return set(self.session.scalars(select(_messages.c.uid).where(_messages.c.folder_id == folder_id)))

    def known_flags(self, folder_id: int) -> dict[int, str]:
        rows = self.session.execute(
            select(_messages.c.uid, _messages.c.flags).where(_messages.c.folder_id == folder_id)
        )
        return {uid: flags for uid, flags in rows}

    def insert_messages(self, folder_id: int, rows: list[dict]) -> None:
        if not rows:
            return
        for row in rows:
            row["account_id"] = self.account_id
            row["folder_id"] = folder_id
        self.session.execute(insert(_messages), rows)

    def update_flags(self, folder_id: int, changes: list[tuple[int, str, int | None]]) -> None:
        if not changes:
            return
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
