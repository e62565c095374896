"""Every SQLite connection any Mailroom process opens: foreign keys enforced, the file private,
WAL journal, a patient busy timeout.

SQLite ignores ``FOREIGN KEY`` clauses (and so ``ON DELETE CASCADE``/``SET NULL``) unless
``PRAGMA foreign_keys=ON`` is set on each connection; without it a deleted mailbox left its
folders, messages, filters and aliases behind for the next mailbox to inherit.  The listeners
are registered on SQLAlchemy's ``Engine`` and SQLite dialect classes, not on one engine, so
every engine made in the process (web, ``mailroom worker``, cron, the CLI, Alembic, bench)
gets them without having to remember.  Importing :mod:`webapp.extensions` registers them.

The database file holds mail and encrypted secrets: a new one is created 0600 before SQLite
would create it world-readable under the usual umask, and one left 0644 by an earlier
release is narrowed to 0600 on the next connection.  (SQLite gives its ``-wal`` and ``-shm``
files the database file's permissions.)

``mailroom up`` runs the web, a worker, cron and ``mailroom idle`` as four processes on one
file.  In SQLite's default rollback-journal mode a read in progress in one process (a page
reading a big folder) keeps every other process from committing, and each waiting writer gave up
after Python's default 5 s with "database is locked".  In WAL mode readers and the one writer
do not block each other; writers still take turns, so each connection also waits up to
:data:`BUSY_TIMEOUT_MS` for its turn (a loaded machine made 5 s too short even in WAL mode).
WAL is a property of the file: it is switched on once per database file and process, and stays.
"""

from __future__ import annotations

import os
import sqlite3
import stat

from sqlalchemy import event
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.engine import Engine

#: Permission bits of the database file: owner read/write only.
FILE_MODE = 0o600
#: How long a connection waits for another connection's write lock before "database is locked".
BUSY_TIMEOUT_MS = 30_000
#: Database files already switched to WAL by this process.
_wal_files: set[str] = set()


def database_file(cargs: tuple, cparams: dict) -> str | None:
    """The path of the file an SQLite connect will open, or None (memory, ``file:`` URIs)."""
    name = cargs[0] if cargs else cparams.get("database")
    if not isinstance(name, str) or name in ("", ":memory:") or cparams.get("uri"):
        return None
    return name


def make_private(path: str) -> None:
    """Create ``path`` empty with mode 0600 if missing, or narrow it to 0600 if others may read it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        try:
            if stat.S_IMODE(os.stat(path).st_mode) & 0o077:
                os.chmod(path, FILE_MODE)
        except OSError:
            pass  # not ours to change (another owner): SQLite will say what is wrong, if anything
    except OSError:
        pass  # a missing folder or no permission: let SQLite report it in its own words
    else:
        os.close(fd)


@event.listens_for(SQLiteDialect, "do_connect")
def _private_file(dialect, conn_rec, cargs, cparams) -> None:
    """Before SQLite opens (and maybe creates) the file, make sure only its owner can read it."""
    path = database_file(cargs, cparams)
    if path is not None:
        make_private(path)


@event.listens_for(Engine, "connect")
def _enforce_foreign_keys(dbapi_connection, connection_record) -> None:
    """``PRAGMA foreign_keys=ON`` on each new SQLite connection (a no-op inside a transaction,
    hence here, before the connection is first used), a busy timeout, and WAL on its file."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        (current,) = cursor.execute("PRAGMA busy_timeout").fetchone()
        if current < BUSY_TIMEOUT_MS:  # a longer one asked for in the URL (?timeout=) is kept
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        use_wal(cursor)
        cursor.close()


def use_wal(cursor: sqlite3.Cursor) -> str | None:
    """Switch the connection's database file to WAL, once per file and process; returns the file.

    Nothing for an in-memory or temporary database (no file to share).  If another connection
    holds the file so that the mode cannot change now, SQLite keeps the old mode and the next new
    connection tries again.
    """
    path = next((row[2] for row in cursor.execute("PRAGMA database_list") if row[1] == "main"), "")
    if not path or path in _wal_files:
        return None
    (mode,) = cursor.execute("PRAGMA journal_mode=WAL").fetchone()
    if mode == "wal":
        _wal_files.add(path)
    return path
