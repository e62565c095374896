"""Every SQLite connection any Mailroom process opens: foreign keys enforced, the file private.

SQLite ignores ``FOREIGN KEY`` clauses (and so ``ON DELETE CASCADE``/``SET NULL``) unless
``PRAGMA foreign_keys=ON`` is set on each connection; without it a deleted mailbox left its
folders, messages, filters and aliases behind for the next mailbox to inherit.  The listeners
are registered on SQLAlchemy's ``Engine`` and SQLite dialect classes, not on one engine, so
every engine made in the process (web, ``mailroom worker``, cron, the CLI, Alembic, bench)
gets them without having to remember.  Importing :mod:`webapp.extensions` registers them.

The database file holds mail and encrypted secrets: a new one is created 0600 before SQLite
would create it world-readable under the usual umask, and one left 0644 by an earlier
release is narrowed to 0600 on the next connection.
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
    hence here, before the connection is first used)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
