"""The Mailroom side of the fleet benchmark, in the bench's own process.

A fresh, migrated database per run (an SQLite file in a temporary instance, or the PostgreSQL
database given, whose tables are dropped), the mailboxes created through the product's own
services (``accounts.clean_account``/``create_account``, as the API does) with INBOX marked
for sync, the fleet pass enqueued by the very function cron runs (``sync_due_accounts``) and
the connection tests started through the API route a person's client calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from flask import Flask
from flask_migrate import upgrade
from imapclient import IMAPClient
from rq.job import Job

from connectors.sync import sync_folders
from webapp import accounts, api_tokens, create_app, settings_store
from webapp.extensions import db
from webapp.models import Account, Folder, LogEntry, Message, User
from webapp.queue import get_redis, start_embedded, stop_embedded

from .fleet_servers import ENGINE_USER, PROBE_USER

try:  # the worker side as a package (issue 11)
    from webapp.jobs.sync import sync_due_accounts
    from webapp.jobs.sync_store import SqlSyncStore
except ImportError:  # the layout before it, so the "before" figures can be measured on that code
    from webapp.sync_store import SqlSyncStore

    from webapp.sync_jobs import sync_due_accounts


@dataclass
class Fleet:
    """What one run made: the app, its environment (for the workers) and the mailboxes' ids."""

    app: Flask
    env: dict[str, str]
    first_id: int = 0
    last_id: int = 0
    probe_id: int = 0
    engine_id: int = 0
    token: str = ""
    embedded_redis: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.last_id - self.first_id + 1


def environment(workdir: Path, database_url: str | None, redis_url: str | None) -> dict[str, str]:
    """DATABASE_URL, REDIS_URL, MAILROOM_INSTANCE, MAILROOM_SECRET_KEYS: what every process shares."""
    instance = workdir / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    return {
        "MAILROOM_INSTANCE": str(instance),
        "DATABASE_URL": database_url or f"sqlite:///{instance / 'mailroom.sqlite3'}",
        "REDIS_URL": redis_url or start_embedded(str(instance)),
        "MAILROOM_SECRET_KEYS": Fernet.generate_key().decode(),
    }


def fresh_app(env: dict[str, str], *, scratch_redis: bool) -> Flask:
    """The app on an empty, migrated database; a given Redis database is flushed (a scratch one)."""
    app = create_app({"INSTANCE_PATH": env["MAILROOM_INSTANCE"]})
    with app.app_context():
        with db.engine.begin() as conn:
            db.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        upgrade()
        if scratch_redis:
            get_redis().flushdb()
    return app


def _account_data(login: str, password: str, imap_port: int, smtp_port: int) -> dict:
    return {
        "manual": {
            "imap": {"host": "127.0.0.1", "port": imap_port, "security": "none"},
            "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none"},
        },
        "username": login,
        "password": password,
        "email": f"{login}@example.com",
        "smtp_requires_auth": False,
    }


def _create(login: str, password: str, ports: tuple[int, int]) -> int:
    """A console user and its mailbox through the services the API uses (INBOX: :func:`_inboxes`)."""
    user = User(username=f"owner-{login}", password_hash="-")  # hashing 10,000 passwords is not the point
    db.session.add(user)
    db.session.flush()
    account = accounts.create_account(
        user, accounts.clean_account(user, _account_data(login, password, *ports))
    )
    return account.id


def _inboxes(ids: list[int]) -> None:
    """INBOX marked for sync on each mailbox, in one executemany (one commit, not one per mailbox)."""
    rows = [
        {"account_id": i, "name": "INBOX", "display_name": "Inbox", "role": "inbox", "sync": True}
        for i in ids
    ]
    db.session.execute(db.insert(Folder), rows)
    db.session.commit()


def create_fleet(fleet: Fleet, users: dict[str, str], imap_port: int, smtp_port: int) -> None:
    """The fleet's mailboxes (ids first_id..last_id), then the probe and the engine's own mailbox."""
    with fleet.app.app_context():
        settings_store.update({"allowed_internal_hosts": ["127.0.0.1/32"]})
        ids = [
            _create(login, pw, (imap_port, smtp_port))
            for login, pw in users.items()
            if login not in (PROBE_USER, ENGINE_USER)
        ]
        fleet.first_id, fleet.last_id = ids[0], ids[-1]
        assert fleet.size == len(ids), "fleet ids are not contiguous"
        fleet.probe_id = _create(PROBE_USER, users[PROBE_USER], (imap_port, smtp_port))
        fleet.engine_id = _create(ENGINE_USER, users[ENGINE_USER], (imap_port, smtp_port))
        _inboxes([*ids, fleet.probe_id, fleet.engine_id])
        fleet.token = api_tokens.issue_token(db.session.get(Account, fleet.probe_id).user, "bench")
        db.session.remove()


# -- the engine alone ------------------------------------------------------------------------------


def engine_times(fleet: Fleet, host: str, port: int, password: str, repeat: int = 5) -> dict:
    """connectors.sync on the engine's mailbox, in-process with the real store: first sync, then unchanged.

    Login excluded (as bench/sync.py); the mailbox is then disabled so cron leaves it alone.
    """
    with fleet.app.app_context():
        account_id = fleet.engine_id
        folder_id = Folder.query.filter_by(account_id=account_id, name="INBOX").one().id
        pairs = [(folder_id, "INBOX")]
        first = _timed_sync(host, port, password, account_id, pairs)
        again = sorted(_timed_sync(host, port, password, account_id, pairs) for _ in range(repeat))
        stored = Message.query.filter_by(folder_id=folder_id).count()
        db.session.get(Account, account_id).active = False
        db.session.commit()
        db.session.remove()
    return {"first_ms": first * 1000, "unchanged_ms": again[len(again) // 2] * 1000, "stored": stored}


def _timed_sync(host: str, port: int, password: str, account_id: int, pairs: list) -> float:
    client = IMAPClient(host, port=port, ssl=False, timeout=60)
    client.login(ENGINE_USER, password)
    try:
        start = time.perf_counter()
        sync_folders(client, SqlSyncStore(account_id), pairs, account_id=None)
        elapsed = time.perf_counter() - start
        db.session.remove()
        return elapsed
    finally:
        client.logout()


# -- a pass over the fleet ----------------------------------------------------------------------


def make_due(fleet: Fleet) -> None:
    """Back-date every synced mailbox (and its due time) by a day, so cron's query finds the whole
    fleet due again."""
    with fleet.app.app_context():
        earlier = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)
        db.session.execute(
            db.update(Account)
            .where(Account.last_synced_at.is_not(None))
            .values(last_synced_at=earlier, next_sync_at=earlier)
        )
        db.session.commit()
        db.session.remove()


def reset(fleet: Fleet) -> None:
    """The fleet as never synced, for the next worker count: its messages, folder states, sync
    times and errors, due times and log rows gone, Redis flushed (queues, locks, registries)."""
    with fleet.app.app_context():
        in_fleet = Account.id.between(fleet.first_id, fleet.last_id)
        folders = db.select(Folder.id).where(Folder.account_id.between(fleet.first_id, fleet.last_id))
        db.session.execute(db.delete(Message).where(Message.folder_id.in_(folders)))
        db.session.execute(
            db.delete(LogEntry).where(LogEntry.account_id.between(fleet.first_id, fleet.last_id))
        )
        db.session.execute(
            db.update(Folder)
            .where(Folder.id.in_(folders))
            .values(
                uidvalidity=None,
                uidnext=None,
                highestmodseq=None,
                message_count=None,
                seeded_uid=None,
                last_full_sync_at=None,
                last_synced_at=None,
                last_error=None,
            )
        )
        db.session.execute(
            db.update(Account)
            .where(in_fleet)
            .values(last_synced_at=None, next_sync_at=None, last_sync_error=None, state="connected")
        )
        db.session.commit()
        get_redis().flushdb()
        db.session.remove()


def enqueue_pass(fleet: Fleet) -> dict:
    """What cron runs every minute: one call of ``sync_due_accounts`` (timed)."""
    with fleet.app.app_context():
        start = time.perf_counter()
        result = sync_due_accounts()
        seconds = time.perf_counter() - start
        db.session.remove()
    return {"enqueued": len(result["enqueued"]), "busy": len(result["already_running"]), "seconds": seconds}


def start_connection_test(fleet: Fleet) -> tuple[float, str]:
    """POST /api/v1/accounts/<probe>/test as a client would; returns (when asked, job id)."""
    asked = time.time()
    with fleet.app.test_client() as client:
        reply = client.post(
            f"/api/v1/accounts/{fleet.probe_id}/test", headers={"Authorization": f"Bearer {fleet.token}"}
        )
    if reply.status_code != 202:
        raise RuntimeError(f"the connection test was not started: {reply.status_code} {reply.get_data(True)}")
    return asked, reply.get_json()["job_id"]


def progress(fleet: Fleet, since: datetime) -> dict:
    """How many fleet mailboxes have a ``last_synced_at`` after ``since`` (naive UTC), the latest, errors."""
    with fleet.app.app_context():
        in_fleet = Account.id.between(fleet.first_id, fleet.last_id)
        done, latest, failed = db.session.execute(
            db.select(
                db.func.count(Account.id),
                db.func.max(Account.last_synced_at),
                db.func.count(Account.last_sync_error),
            ).where(in_fleet, Account.last_synced_at >= since)
        ).one()
        db.session.remove()
    return {"done": done, "latest": latest, "failed": failed}


def errors(fleet: Fleet, since: datetime, most: int = 5) -> list[tuple[str, int]]:
    """The commonest sync errors of the fleet's mailboxes since ``since``: (error, mailboxes)."""
    with fleet.app.app_context():
        rows = db.session.execute(
            db.select(Account.last_sync_error, db.func.count(Account.id))
            .where(
                Account.id.between(fleet.first_id, fleet.last_id),
                Account.last_synced_at >= since,
                Account.last_sync_error.is_not(None),
            )
            .group_by(Account.last_sync_error)
            .order_by(db.func.count(Account.id).desc())
            .limit(most)
        ).all()
        db.session.remove()
    return [(error[:300], n) for error, n in rows]


def stored_messages(fleet: Fleet) -> int:
    with fleet.app.app_context():
        folders = db.select(Folder.id).where(Folder.account_id.between(fleet.first_id, fleet.last_id))
        n = db.session.execute(
            db.select(db.func.count(Message.id)).where(Message.folder_id.in_(folders))
        ).scalar()
        db.session.remove()
        return n


def job_done_at(fleet: Fleet, job_id: str) -> float | None:
    """Epoch seconds the job ended (RQ's ``ended_at``), or None while it is not finished or failed."""
    with fleet.app.app_context():
        job = Job.fetch(job_id, connection=get_redis())
        status = getattr(job.get_status(refresh=True), "value", None)
        if status not in ("finished", "failed") or job.ended_at is None:
            return None
        ended = job.ended_at
    return (ended if ended.tzinfo else ended.replace(tzinfo=UTC)).timestamp()


def close(fleet: Fleet) -> None:
    with fleet.app.app_context():
        db.session.remove()
        db.engine.dispose()
    if fleet.embedded_redis:
        stop_embedded(fleet.env["MAILROOM_INSTANCE"])
