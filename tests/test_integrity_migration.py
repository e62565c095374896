"""Upgrading a database made by the previous release (revision 1531e02a9ccc) to head.

Before this release SQLite never enforced foreign keys, so an existing instance may hold rows
whose parent was deleted.  The upgrade (run by the real ``mailroom db upgrade``) must keep
every sound row exactly as it was, delete the orphans of ON DELETE CASCADE and unlink those of
SET NULL, including orphans of orphans, and leave ids that are never reused.  The data is
derived from the schema of that revision, so every table and foreign key of it is covered.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import count

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from tests.conftest import SECRET_KEY, _config
from webapp import create_app
from webapp.extensions import db
from webapp.models import User, utcnow

PREVIOUS_RELEASE = "1531e02a9ccc"
MISSING = 990_000  # ids from here on exist in no table
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = "mr_previous_release"


@dataclass
class Row:
    table: str
    values: dict
    #: Foreign key column -> a missing id (int), or the Row it points at (made concrete on insert).
    fks: dict = field(default_factory=dict)
    key: dict = field(default_factory=dict)
    orphan: bool = False  # made to point nowhere, directly or through its parent


@pytest.fixture
def previous_release(migrated, tmp_path, database_url, redis_url):
    """An app on a separate database (a file, or a schema on PostgreSQL) at the previous release."""
    if database_url.startswith("sqlite"):
        url = "sqlite:///" + str(tmp_path / "mailroom.sqlite3")
    else:
        _run(database_url, f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE", f"CREATE SCHEMA {SCHEMA}")
        url = database_url + ("&" if "?" in database_url else "?") + f"options=-csearch_path%3D{SCHEMA}"
    app = create_app(_config(str(tmp_path), url, redis_url))
    with app.app_context():
        upgrade(revision=PREVIOUS_RELEASE)
    yield app
    with app.app_context():
        db.engine.dispose()
    if not database_url.startswith("sqlite"):
        _run(database_url, f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def _run(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def _value(column: sa.Column, n: int):
    kind = column.type.python_type
    if kind is str:
        text, width = f"{column.name}-{n}", getattr(column.type, "length", None)
        return text if not width or len(text) <= width else str(n)[:width]
    if kind is bool:
        return False
    if kind is int:
        return n
    if kind is datetime:
        return utcnow()
    if kind is date:
        return utcnow().date()
    if kind is bytes:
        return b"x"
    raise AssertionError(f"no test value for {column.table.name}.{column.name}")


def _plan(metadata: sa.MetaData) -> list[Row]:
    """Rows to insert: per table one sound row, one per foreign key pointing at a missing id,
    and one per orphan row of the parent table (orphans of orphans)."""
    numbers, rows = count(1), []
    for table in metadata.sorted_tables:
        fks = list(table.foreign_keys)
        sound = {fk.parent.name: _sound(rows, fk.column.table.name) for fk in fks}
        variants = [{}]
        for fk in fks:
            variants.append({fk.parent.name: MISSING + next(numbers)})
            parents = [r for r in rows if r.table == fk.column.table.name and r.orphan]
            variants += [{fk.parent.name: parent} for parent in parents]
        for variant in variants:
            values = {
                column.name: _value(column, next(numbers))
                for column in table.columns
                if not (column.foreign_keys or column.nullable or column.server_default is not None)
                and not (column.primary_key and isinstance(column.type, sa.Integer))
            }
            rows.append(Row(table.name, values, {**sound, **variant}, orphan=bool(variant)))
    return rows


def _sound(rows: list[Row], table: str) -> Row:
    return next(r for r in rows if r.table == table and not r.orphan)


def _referenced(metadata: sa.MetaData, row: Row, column: str):
    target = row.fks[column]
    if isinstance(target, int):
        return target
    fk = next(iter(metadata.tables[row.table].c[column].foreign_keys))
    return target.key[fk.column.name]


def _insert_without_foreign_keys(app, metadata: sa.MetaData, rows: list[Row]) -> None:
    with app.app_context(), db.engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        else:
            try:
                conn.exec_driver_sql("SET session_replication_role = replica")  # FK triggers off
            except sa.exc.DBAPIError:
                pytest.skip("orphans on PostgreSQL need a superuser to switch foreign key triggers off")
        for row in rows:
            table = metadata.tables[row.table]
            values = {**row.values, **{c: _referenced(metadata, row, c) for c in row.fks}}
            result = conn.execute(table.insert().values(**values))
            row.values = values
            row.key = {c.name: values.get(c.name) for c in table.primary_key.columns}
            if result.inserted_primary_key is not None:
                row.key.update(
                    {k: v for k, v in result.inserted_primary_key._asdict().items() if v is not None}
                )
        conn.commit()
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()


def _expected(metadata: sa.MetaData, rows: list[Row]) -> tuple[set[int], dict[int, set[str]]]:
    """What the database would have done with foreign keys on: deleted row indexes, nulled columns."""
    deleted: set[int] = set()
    nulled: dict[int, set[str]] = {}
    changed = True
    while changed:
        changed = False
        for i, row in enumerate(rows):
            if i in deleted:
                continue
            for fk in metadata.tables[row.table].foreign_keys:
                value = row.values.get(fk.parent.name)
                if value is None or fk.parent.name in nulled.get(i, set()):
                    continue
                alive = any(
                    j not in deleted
                    and r.table == fk.column.table.name
                    and r.key.get(fk.column.name) == value
                    for j, r in enumerate(rows)
                )
                if alive:
                    continue
                changed = True
                if fk.ondelete == "CASCADE":
                    deleted.add(i)
                    break
                nulled.setdefault(i, set()).add(fk.parent.name)
    return deleted, nulled


def _mailroom(args: list[str], app, tmp_path) -> str:
    """Run the real ``mailroom`` command on the app's database."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    env = {**os.environ, "MAILROOM_INSTANCE": str(tmp_path), "MAILROOM_SECRET_KEYS": SECRET_KEY}
    env["REDIS_URL"] = app.config["REDIS_URL"]
    if url.startswith("sqlite"):
        env.pop("DATABASE_URL", None)  # the instance's default file: tmp_path/mailroom.sqlite3
    else:
        env["DATABASE_URL"] = url.replace("postgresql+psycopg://", "postgresql://", 1)
    done = subprocess.run(
        [sys.executable, "-m", "webapp.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_upgrade_keeps_sound_rows_and_removes_orphans(previous_release, tmp_path):
    app = previous_release
    with app.app_context(), db.engine.connect() as conn:
        metadata = sa.MetaData()
        metadata.reflect(conn)
    metadata.remove(metadata.tables["alembic_version"])
    rows = _plan(metadata)
    _insert_without_foreign_keys(app, metadata, rows)
    deleted, nulled = _expected(metadata, rows)
    assert len(deleted) >= 20 and len(nulled) >= 4, "the fixture should hold orphans of every kind"

    output = _mailroom(["db", "upgrade"], app, tmp_path)

    with app.app_context(), db.engine.connect() as conn:
        for i, row in enumerate(rows):
            table = metadata.tables[row.table]
            where = sa.and_(*(table.c[k] == v for k, v in row.key.items()))
            found = conn.execute(sa.select(table).where(where)).mappings().all()
            if i in deleted:
                assert found == [], f"orphan {row.table} {row.key} survived the upgrade"
                continue
            assert len(found) == 1, f"{row.table} {row.key} was lost by the upgrade"
            want = {k: (None if k in nulled.get(i, ()) else v) for k, v in row.values.items()}
            assert {k: found[0][k] for k in want} == want, f"{row.table} {row.key} changed"
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    removed = len(deleted) + sum(len(c) for c in nulled.values())
    print(
        f"orphans removed by the upgrade: {len(deleted)} rows deleted, {removed - len(deleted)} links nulled"
    )
    assert "Running upgrade" in output


def test_after_the_upgrade_a_deleted_id_is_not_given_again(previous_release, tmp_path):
    app = previous_release
    with app.app_context():
        # The previous release's users table lacks today's columns: plain SQL, not the model.
        for i in range(3):
            db.session.execute(
                sa.text("INSERT INTO users (username, password_hash, role, created_at) VALUES (:n, 'x', 'user', :t)"),
                {"n": f"user{i}", "t": "2026-01-01 00:00:00"},
            )
        db.session.commit()
        top = db.session.execute(sa.text("SELECT max(id) FROM users")).scalar_one()
        db.session.execute(sa.text("DELETE FROM users WHERE id = :id"), {"id": top})
        db.session.commit()
        db.session.remove()
    _mailroom(["db", "upgrade"], app, tmp_path)
    with app.app_context():
        db.session.execute(sa.text("DELETE FROM users WHERE id = :id"), {"id": top - 1})
        db.session.commit()
        again = User(username="after", password_hash="x")
        db.session.add(again)
        db.session.commit()
        # SQLite hands out max(id)+1 again without AUTOINCREMENT; with it, never an id it gave.
        assert again.id > top - 1
        db.session.remove()
