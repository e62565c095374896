"""Referential integrity on both databases: cascades run, ids are never reused (issue 10, point 1).

On SQLite, foreign keys used to be off: a deleted mailbox left its folders, messages, bodies,
filters, aliases and out-of-office text behind, SQLite gave its id to the next mailbox, and the
next mailbox's owner saw and used all of it.  These tests go through the API and pages for
that story, then check every cascade the schema declares with plain SQL, derived from the
models' metadata so a new table is covered without editing this file.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from rq import Queue
from sqlalchemy import Integer, Table, func, insert, select, text

from tests.conftest import login
from tests.support.job_worker import WorkerProcess
from tests.support.message_factory import make_folder, make_message
from webapp.extensions import db
from webapp.models import Account, AutoReply, MessageBody, Notification, User, utcnow
from webapp.queue import get_redis

MANUAL = {
    "imap": {"host": "mail.example.test", "port": 993, "security": "tls"},
    "smtp": {"host": "mail.example.test", "port": 465, "security": "tls"},
}
SECRET_SUBJECT = "Alice's confidential offer"
AWAY_TEXT = "Alice is away until Monday"


def _connect(api, user: str, address: str) -> int:
    response = api[user].post(
        "/api/v1/accounts", json={"manual": MANUAL, "username": address, "password": "wrong password"}
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _fill_alices_mailbox(api, account_id: int) -> int:
    """Everything a used mailbox holds, through the API where there is one; returns a message id."""
    account = db.session.get(Account, account_id)
    inbox = make_folder(account)
    message = make_message(inbox, subject=SECRET_SUBJECT, from_addr="partner@example.org")
    db.session.add(MessageBody(message_pk=message.id, raw=b"Subject: offer\r\n\r\nThe price is 42.\r\n"))
    db.session.add(AutoReply(account_id=account_id, sender="partner@example.org"))
    db.session.add(
        Notification(user_id=account.user_id, account_id=account_id, kind="service_removed", message="x")
    )
    db.session.commit()
    base = f"/api/v1/accounts/{account_id}"
    rule = {
        "name": "partner",
        "conditions": [{"field": "from", "op": "contains", "value": "partner@"}],
        "actions": [{"type": "mark_read"}],
    }
    assert api["alice"].post(f"{base}/filters", json=rule).status_code == 201
    assert api["alice"].post(f"{base}/aliases", json={"address": "offers@alice.example"}).status_code == 201
    away = {"enabled": True, "subject": "Away", "body": AWAY_TEXT}
    assert api["alice"].put(f"{base}/out-of-office", json=away).status_code == 200
    opened = api["alice"].get(f"/api/v1/messages/{message.id}")
    assert opened.status_code == 200 and "42" in str(opened.get_json()), opened.get_json()
    return message.id


def test_a_deleted_mailbox_leaves_nothing_to_the_next_one(api, client, users):
    _connect(api, "admin", "admin@example.test")
    alices = _connect(api, "alice", "alice@example.test")  # the highest id
    message_id = _fill_alices_mailbox(api, alices)
    assert api["alice"].delete(f"/api/v1/accounts/{alices}").status_code == 204

    bobs = _connect(api, "bob", "bob@example.test")
    base = f"/api/v1/accounts/{bobs}"
    assert api["bob"].get(f"{base}/messages").get_json()["messages"] == []
    assert api["bob"].get("/api/v1/messages?role=inbox").get_json()["messages"] == []
    assert api["bob"].get(f"/api/v1/messages/{message_id}").status_code == 404
    assert api["bob"].get(f"{base}/folders").get_json() in ([], {"folders": []})
    assert api["bob"].get(f"{base}/filters").get_json() in ([], {"filters": []})
    assert api["bob"].get(f"{base}/aliases").get_json() in ([], {"aliases": []})
    assert AWAY_TEXT not in str(api["bob"].get(f"{base}/out-of-office").get_json())
    sent = api["bob"].post(
        "/api/v1/messages/send",
        json={"from": "offers@alice.example", "to": ["x@example.org"], "subject": "s", "text": "t"},
    )
    assert sent.status_code == 403, sent.get_json()
    login(client, "bob", users["bob"]["password"])
    assert SECRET_SUBJECT not in client.get("/messages/").get_data(as_text=True)
    assert client.get(f"/messages/{message_id}").status_code == 404
    assert bobs > alices, "a deleted mailbox's id was given to a new one"
    for table in _tables_with_column("account_id"):
        left = db.session.execute(select(func.count()).where(table.c.account_id == alices)).scalar()
        assert left == 0, f"{table.name} kept {left} row(s) of the deleted mailbox"


def _tables_with_column(name: str) -> list[Table]:
    return [t for t in db.metadata.sorted_tables if name in t.c]


# --- Every declared cascade, for every parent, with plain SQL -------------------------------------

_FOREIGN_KEYS = [fk for table in db.metadata.sorted_tables for fk in table.foreign_keys]
PARENTS = sorted({fk.column.table.name for fk in _FOREIGN_KEYS})


def _value(column, n: int):
    """A value the column accepts, unique per ``n`` (unique constraints hold)."""
    kind = column.type.python_type
    if kind is str:
        return f"{column.table.name}-{column.name}-{n}"[: getattr(column.type, "length", None) or 200]
    if kind is bool:
        return False  # partial unique indexes (one main mailbox) hold on True only
    if kind is int:
        return n
    if kind is datetime:
        return utcnow()
    if kind is date:
        return utcnow().date()
    if kind is bytes:
        return b"x"
    raise AssertionError(f"no test value for {column.table.name}.{column.name} ({column.type})")


def _insert_one_of_each() -> dict[str, dict]:
    """One row in every table, each foreign key pointing at the row of its parent table."""
    rows: dict[str, dict] = {}
    for n, table in enumerate(db.metadata.sorted_tables, start=1):
        row = {}
        for column in table.columns:
            fks = list(column.foreign_keys)
            if fks:
                row[column.name] = rows[fks[0].column.table.name][fks[0].column.name]
            elif column.primary_key and _own_integer_id(table):
                continue  # the database gives it
            elif not column.nullable and column.default is None and column.server_default is None:
                row[column.name] = _value(column, n)
        made = db.session.execute(insert(table).values(**row)).inserted_primary_key
        rows[table.name] = {**row, **made._asdict()}
    db.session.commit()
    return rows


def _cascade_closure(parent: str) -> set[str]:
    """Tables whose row goes when ``parent``'s row is deleted, following ON DELETE CASCADE."""
    gone, changed = {parent}, True
    while changed:
        changed = False
        for fk in _FOREIGN_KEYS:
            if fk.ondelete == "CASCADE" and fk.column.table.name in gone and fk.parent.table.name not in gone:
                gone.add(fk.parent.table.name)
                changed = True
    return gone


@pytest.mark.parametrize("parent", PARENTS)
def test_deleting_a_parent_with_plain_sql_leaves_no_child(app, parent):
    rows = _insert_one_of_each()
    db.session.execute(text(f"DELETE FROM {parent}"))
    db.session.commit()
    gone = _cascade_closure(parent)
    for table in db.metadata.sorted_tables:
        left = db.session.execute(select(table)).mappings().all()
        if table.name in gone:
            assert left == [], f"deleting {parent} left a row of {table.name}"
            continue
        assert len(left) == 1, f"deleting {parent} removed {table.name}, which has no cascade from it"
        for fk in table.foreign_keys:
            if fk.column.table.name in gone:
                assert fk.ondelete == "SET NULL"
                assert left[0][fk.parent.name] is None, f"{table.name}.{fk.parent.name} still points at it"
            else:
                assert left[0][fk.parent.name] == rows[table.name][fk.parent.name]


def test_every_foreign_key_says_what_happens_on_delete():
    for fk in _FOREIGN_KEYS:
        where = f"{fk.parent.table.name}.{fk.parent.name}"
        assert fk.ondelete in ("CASCADE", "SET NULL"), f"{where} has no ondelete"
        if fk.ondelete == "SET NULL":
            assert fk.parent.nullable, f"{where} is SET NULL on a NOT NULL column"


def _own_integer_id(table: Table) -> bool:
    pk = list(table.primary_key.columns)
    return len(pk) == 1 and isinstance(pk[0].type, Integer) and not pk[0].foreign_keys


def test_every_table_with_an_integer_id_never_reuses_one(app):
    tables = [t for t in db.metadata.sorted_tables if _own_integer_id(t)]
    assert len(tables) >= 10
    for table in tables:
        assert table.dialect_options["sqlite"]["autoincrement"], f"{table.name}: add AUTOINCREMENT"
    if db.engine.dialect.name == "sqlite":
        # The migrations built them so too (a batch rebuild without table_kwargs drops it).
        for table in tables:
            sql = db.session.execute(
                text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :n"), {"n": table.name}
            ).scalar()
            assert "AUTOINCREMENT" in sql, f"the migrations left {table.name} without AUTOINCREMENT"


def test_the_highest_id_is_not_given_again(app, users):
    top = max(u["id"] for u in users.values())
    db.session.execute(text("DELETE FROM users WHERE id = :id"), {"id": top})
    db.session.commit()
    again = User(username="carol", password_hash="x")
    db.session.add(again)
    db.session.commit()
    assert again.id > top


# --- Foreign keys are on for every connection -------------------------------------------------------


def foreign_keys_pragma() -> int:
    """An RQ job: what the worker's own database connection says about foreign keys."""
    return db.session.execute(text("PRAGMA foreign_keys")).scalar()


def _sqlite_only(app) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PRAGMA foreign_keys is SQLite's; PostgreSQL always enforces foreign keys")


def test_foreign_keys_are_on_for_the_app_engine(app):
    _sqlite_only(app)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_foreign_keys_are_on_in_a_worker(app, tmp_path):
    _sqlite_only(app)
    queue = Queue(app.config["QUEUE_NAME"], connection=get_redis())
    job = queue.enqueue(foreign_keys_pragma)
    worker = WorkerProcess(app, tmp_path)
    worker.run()
    job.refresh()
    assert job.get_status() == "finished", worker.output()
    assert job.return_value() == 1
