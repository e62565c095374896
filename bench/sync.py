"""Sync benchmark: Mailroom's first sync of an N-message folder against the raw limit and imap-tools.

``python -m bench.sync [--messages N] [--repeat K] [--database-url URL] [--profile]`` (``make bench``)

Starts a private Dovecot (plaintext IMAP on loopback, tests/servers/dovecot.py) whose user's
Maildir is a generated folder of N varied messages (bench/maildir_gen.py, cached under
``/tmp/mailroom-bench-N``), warms it with one untimed pass, then measures in the same run:

1. Mailroom's first sync of the folder into a fresh database (SQLite; also PostgreSQL with
   ``--database-url``, whose tables are dropped: give it a scratch database), through the real
   engine (connectors.sync) and store (webapp.jobs.sync_store);
2. the raw limit: plain imapclient ``UID FETCH`` of the same items in batches, no parsing, no database;
3. the usual Python way: imap-tools ``MailBox.fetch(headers_only=True, mark_seen=False)``;
4. a second Mailroom sync with nothing changed: milliseconds and FETCH commands sent.

Times exclude connecting and logging in.  Each figure is the best of ``--repeat`` runs.
Prints a table and the ratios against the targets; writes JSON into bench/results/.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import maildir_gen

USER, PASSWORD = "bench", "bench-password-1"
RESULTS = Path(__file__).resolve().parent / "results"
#: Targets of issue 4.
TARGET_RAW, TARGET_IMAP_TOOLS, TARGET_RESYNC_MS = 0.6, 2.0, 50.0
RAW_BATCH = 1000


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# -- the server ---------------------------------------------------------------------------------


def start_dovecot(maildir: Path):
    """A Dovecot whose user ``bench`` has the generated Maildir as its home's Maildir (a symlink)."""
    from tests.servers.dovecot import Dovecot

    server = Dovecot(users={USER: PASSWORD}, ssl=False).start()
    (server.home(USER) / "Maildir").symlink_to(maildir)
    return server


def imap_connect(server):
    from imapclient import IMAPClient

    client = IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=120)
    client.login(USER, PASSWORD)
    return client


# -- 2. the raw limit -----------------------------------------------------------------------------


def fetch_items() -> list[bytes]:
    """The items the engine fetches for a new message (connectors.sync), for a like-for-like raw pass."""
    from connectors.envelope import HEADER_FIELDS
    from connectors.sync import PREVIEW_BYTES

    return [
        b"UID",
        b"FLAGS",
        b"RFC822.SIZE",
        b"INTERNALDATE",
        b"MODSEQ",
        f"BODY.PEEK[HEADER.FIELDS ({' '.join(HEADER_FIELDS)})]".encode(),
        f"BODY.PEEK[TEXT]<0.{PREVIEW_BYTES}>".encode(),
    ]


def raw_fetch(server) -> dict:
    """imapclient ``UID FETCH`` of the engine's items in batches of RAW_BATCH UIDs; nothing is parsed further."""
    client = imap_connect(server)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        client.select_folder("INBOX", readonly=True)
        uids = client.search(["ALL"])
        items = fetch_items()
        count = 0
        for i in range(0, len(uids), RAW_BATCH):
            count += len(client.fetch(uids[i : i + RAW_BATCH], items))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        client.logout()
    return {"seconds": elapsed, "cpu": cpu, "messages": count}


# -- 3. imap-tools -----------------------------------------------------------------------------------


def imap_tools_fetch(server) -> dict:
    """What most Python code does: imap-tools ``fetch(headers_only=True)`` and read the usual fields."""
    from imap_tools import MailBoxUnencrypted

    with MailBoxUnencrypted(server.host, port=server.imap_port).login(USER, PASSWORD, "INBOX") as box:
        start, cpu = time.perf_counter(), time.process_time()
        count = 0
        for msg in box.fetch(headers_only=True, mark_seen=False):
            _ = (msg.uid, msg.flags, msg.size_rfc822, msg.subject, msg.from_, msg.to, msg.cc, msg.date)
            _ = msg.headers.get("message-id")
            count += 1
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": elapsed, "cpu": cpu, "messages": count}


# -- 1. and 4. Mailroom ----------------------------------------------------------------------------------


def _sqlalchemy_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def fresh_app(database_url: str | None, workdir: Path):
    """A Mailroom app on an empty, migrated database, with one user, mailbox and INBOX folder."""
    from cryptography.fernet import Fernet
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db

    instance = workdir / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    url = _sqlalchemy_url(database_url) if database_url else f"sqlite:///{instance / 'bench.sqlite3'}"
    app = create_app(
        {
            "INSTANCE_PATH": str(instance),
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEYS": Fernet.generate_key().decode(),
            "SECRET_KEY": "bench",
            "REDIS_URL": "redis://127.0.0.1:1/0",  # never used: the bench enqueues nothing
        }
    )
    with app.app_context():
        with db.engine.begin() as conn:
            db.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        upgrade()
    return app


def _seed(app) -> tuple[int, int]:
    from webapp.extensions import db
    from webapp.models import Account, Folder, User

    with app.app_context():
        user = User(username="bench", password_hash="-")
        db.session.add(user)
        db.session.flush()
        account = Account(user_id=user.id, manual=True, username=USER, email="bench@example.com")
        db.session.add(account)
        db.session.flush()
        folder = Folder(account_id=account.id, name="INBOX", display_name="Inbox", role="inbox", sync=True)
        db.session.add(folder)
        db.session.commit()
        return account.id, folder.id


def mailroom_sync(app, server, account_id: int, folder_id: int, profile: cProfile.Profile | None = None):
    """One run of the real engine and store on a fresh connection; returns (seconds, SyncStats)."""
    from connectors.sync import sync_folders
    from webapp.extensions import db
    from webapp.jobs.sync_store import SqlSyncStore

    client = imap_connect(server)
    try:
        with app.app_context():
            store = SqlSyncStore(account_id)
            if profile is not None:
                profile.enable()
            start, cpu = time.perf_counter(), time.process_time()
            stats = sync_folders(client, store, [(folder_id, "INBOX")], account_id=None)
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            if profile is not None:
                profile.disable()
            db.session.remove()
    finally:
        client.logout()
    return elapsed, cpu, stats


def stored_count(app, folder_id: int) -> int:
    from webapp.extensions import db
    from webapp.models import Message

    with app.app_context():
        n = db.session.query(Message).filter_by(folder_id=folder_id).count()
        db.session.remove()
        return n


def mailroom_run(server, database_url: str | None, prof: cProfile.Profile | None = None) -> tuple[dict, dict]:
    """A first sync into a fresh database, then a nothing-changed re-sync: (first, resync) figures."""
    workdir = Path(tempfile.mkdtemp(prefix="mailroom-bench-db-"))
    try:
        app = fresh_app(database_url, workdir)
        account_id, folder_id = _seed(app)
        seconds, cpu, stats = mailroom_sync(app, server, account_id, folder_id, prof)
        stored = stored_count(app, folder_id)
        first = {"seconds": seconds, "cpu": cpu, "messages": stored, "stats": stats.as_dict()}
        again_s, _, again = mailroom_sync(app, server, account_id, folder_id)
        resync = {
            "ms": again_s * 1000,
            "fetch_commands": again.commands.get("FETCH", 0),
            "commands": dict(again.commands),
            "path": [f.path for f in again.folders],
        }
        with app.app_context():
            from webapp.extensions import db

            db.engine.dispose()
        return first, resync
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- the report ---------------------------------------------------------------------------------------


def best(runs: list[dict], key: str = "seconds") -> dict:
    return min(runs, key=lambda r: r[key])


def rate(run: dict) -> float:
    return run["messages"] / run["seconds"] if run["seconds"] else 0.0


def _cpu(run: dict) -> str:
    return f"{run['cpu']:.2f} s" if "cpu" in run else ""


def _ok(flag: bool) -> str:
    return "OK" if flag else "BELOW TARGET"


def report(n: int, size: int, results: dict) -> tuple[str, dict]:
    """The printed table and the summary figures."""
    raw, tools = best(results["raw"]), best(results["imap_tools"])
    lines = [
        f"Sync benchmark: {n:,} messages ({size / 1e6:.1f} MB) in INBOX, Dovecot on loopback, "
        f"best of {results['repeat']} run(s)",
        "",
        f"{'':4}{'measurement':52}{'time':>12}{'messages/s':>14}{'client CPU':>12}",
    ]
    summary: dict = {"messages": n, "bytes": size}
    rows = []
    for label, db_name in results["databases"]:
        mr = results["mailroom"][label]
        first = best(mr["first"])
        summary[f"first_sync_{label}_per_s"] = round(rate(first))
        rows.append(
            (
                f"Mailroom first sync ({db_name})",
                f"{first['seconds']:.2f} s",
                f"{rate(first):,.0f}",
                _cpu(first),
            )
        )
    rows.append(
        (
            "Raw limit: imapclient UID FETCH, no database",
            f"{raw['seconds']:.2f} s",
            f"{rate(raw):,.0f}",
            _cpu(raw),
        )
    )
    rows.append(
        (
            "imap-tools fetch(headers_only=True)",
            f"{tools['seconds']:.2f} s",
            f"{rate(tools):,.0f}",
            _cpu(tools),
        )
    )
    for label, db_name in results["databases"]:
        again = best(results["mailroom"][label]["resync"], "ms")
        summary[f"resync_{label}_ms"] = round(again["ms"], 2)
        summary[f"resync_{label}_fetch"] = again["fetch_commands"]
        rows.append(
            (
                f"Mailroom re-sync, nothing changed ({db_name})",
                f"{again['ms']:.1f} ms",
                f"FETCH: {again['fetch_commands']}",
                "",
            )
        )
    for i, (label, t, r, c) in enumerate(rows, 1):
        lines.append(f"{i:<4}{label:52}{t:>12}{r:>14}{c:>12}")
    lines.append("")
    summary["raw_per_s"], summary["imap_tools_per_s"] = round(rate(raw)), round(rate(tools))
    for label, db_name in results["databases"]:
        first = best(results["mailroom"][label]["first"])
        again = best(results["mailroom"][label]["resync"], "ms")
        vs_raw = rate(first) / rate(raw) if rate(raw) else 0.0
        vs_tools = rate(first) / rate(tools) if rate(tools) else 0.0
        summary[f"{label}_vs_raw"], summary[f"{label}_vs_imap_tools"] = round(vs_raw, 3), round(vs_tools, 3)
        fast = again["ms"] < TARGET_RESYNC_MS and again["fetch_commands"] == 0
        lines += [
            f"Ratios ({db_name}):",
            f"  first sync / raw limit   = {vs_raw:.2f}x   (target >= {TARGET_RAW}x)   {_ok(vs_raw >= TARGET_RAW)}",
            f"  first sync / imap-tools  = {vs_tools:.2f}x   (target >= {TARGET_IMAP_TOOLS}x)   "
            f"{_ok(vs_tools >= TARGET_IMAP_TOOLS)}",
            f"  re-sync unchanged        = {again['ms']:.1f} ms, {again['fetch_commands']} FETCH   "
            f"(target < {TARGET_RESYNC_MS:g} ms, 0 FETCH)   {_ok(fast)}",
        ]
    return "\n".join(lines), summary


def _dovecot_version() -> str:
    try:
        return subprocess.run(
            ["/usr/sbin/dovecot", "--version"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sync", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--messages", type=int, default=20_000, help="messages in the folder (default 20,000)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement; the best is shown")
    parser.add_argument(
        "--database-url",
        help="also measure on this PostgreSQL database (a scratch one: its tables are dropped)",
    )
    parser.add_argument(
        "--cache-dir", help="where the generated Maildir is kept (default /tmp/mailroom-bench-N)"
    )
    parser.add_argument("--results-dir", default=str(RESULTS), help="where the JSON results go")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the first Mailroom sync and print it"
    )
    args = parser.parse_args(argv)
    if args.messages < 1 or args.repeat < 1:
        parser.error("--messages and --repeat must be at least 1")

    cache = Path(args.cache_dir or f"/tmp/mailroom-bench-{args.messages}")
    log(f"Maildir of {args.messages:,} messages in {cache} ...")
    started = time.monotonic()
    facts = maildir_gen.ensure(args.messages, cache, log)
    log(f"  {'reused' if facts['cached'] else 'generated'} in {time.monotonic() - started:.1f} s")

    server = start_dovecot(Path(facts["path"]))
    try:
        log("warming Dovecot's index and cache (one untimed raw pass) ...")
        warm = raw_fetch(server)
        if warm["messages"] != args.messages:
            raise SystemExit(f"Dovecot shows {warm['messages']} messages, expected {args.messages}")
        results: dict = {"repeat": args.repeat, "raw": [], "imap_tools": [], "mailroom": {}, "databases": []}
        targets = [("sqlite", "SQLite", None)]
        if args.database_url:
            targets.append(("postgresql", "PostgreSQL", args.database_url))
        for label, name, _ in targets:
            results["mailroom"][label] = {"first": [], "resync": []}
            results["databases"].append((label, name))
        prof = cProfile.Profile() if args.profile else None
        # One of each per round, so a machine that gets busier mid-run weighs on all of them alike.
        for run in range(args.repeat):
            step = f"run {run + 1}/{args.repeat}:"
            log(f"{step} raw imapclient ...")
            results["raw"].append(raw_fetch(server))
            log(f"{step} imap-tools ...")
            results["imap_tools"].append(imap_tools_fetch(server))
            for label, name, url in targets:
                log(f"{step} Mailroom first sync and re-sync on {name} ...")
                first, resync = mailroom_run(server, url, prof if run == 0 and label == "sqlite" else None)
                if first["messages"] != args.messages:
                    raise SystemExit(
                        f"Mailroom stored {first['messages']} messages, expected {args.messages}"
                    )
                results["mailroom"][label]["first"].append(first)
                results["mailroom"][label]["resync"].append(resync)
        if prof is not None:
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
            results["mailroom"]["sqlite"]["profile"] = buf.getvalue()
    finally:
        server.stop()

    table, summary = report(args.messages, facts["bytes"], results)
    print(table)
    profile_text = results["mailroom"]["sqlite"].pop("profile", None)
    if profile_text:
        print("\nProfile of the first Mailroom sync (SQLite), by own time:\n" + profile_text)
    out_dir = Path(args.results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"sync-{args.messages}-{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "when": stamp,
                "summary": summary,
                "results": results,
                "machine": {
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "dovecot": _dovecot_version(),
                },
            },
            indent=2,
            default=str,
        )
    )
    print(f"\nResults written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
