"""Push latency: new mail to the API, with N push mailboxes held by one ``mailroom idle``.

Issue 13's goal: new mail visible in the console at most 5 s after delivery, for mailboxes with
push on, 1,000 of them held by one process.  This measures the path a person waits on: one real
``mailroom idle`` holds all N INBOXes in IDLE, one real ``mailroom worker`` runs the syncs it
enqueues on the interactive lane, and the bench delivers a message into a mailbox's Maildir and
polls ``GET /api/v1/accounts/<id>/messages`` (every 20 ms, as its owner) until it is there.

In the same run, the yardsticks on a mailbox Mailroom does not hold:

* **raw**: the server's own signal, delivery to ``* N EXISTS`` on a socket already in IDLE
  (imapclient's ``idle_check``): the least any push can take here;
* **usual Python way**: that signal plus what a small script then does, ``idle_done``, a
  ``UID SEARCH`` for new UIDs and a ``UID FETCH`` of their headers, then IDLE again.

    .venv/bin/python -m bench.push_latency --mailboxes 1000 --deliveries 20
    .venv/bin/python -m bench.push_latency --mailboxes 1000 --deliveries 20 \\
        --database-url postgresql://postgres@127.0.0.1:5432/SCRATCH --redis-url redis://127.0.0.1:6379/N

``--database-url``/``--redis-url`` must be scratch databases (tables dropped, Redis db flushed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from imapclient import IMAPClient

from tests.servers.dovecot import Dovecot
from webapp import api_tokens
from webapp.extensions import db
from webapp.jobs.idle import processes
from webapp.models import Account
from webapp.queue import get_queues, get_redis, stop_embedded

from .fleet import nearest_rank
from .fleet_app import _create, _inboxes, environment, fresh_app
from .idle_memory import rss_kb

YARDSTICK_USER = "yardstick"
POLL = 0.02
#: Dovecot's IDLE hears of new mail through inotify, one instance per imap process, all under the
#: mail uid: past this limit (128 by default) it falls back to checking every 30 s.
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")


@contextlib.contextmanager
def inotify_room(needed: int):
    """Raise the per-user inotify instance limit for the run when it is lower (root only); says so."""
    before = int(INOTIFY_INSTANCES.read_text())
    if before >= needed:
        yield before
        return
    try:
        INOTIFY_INSTANCES.write_text(str(needed))
    except OSError as exc:
        print(f"fs.inotify.max_user_instances is {before} and cannot be raised ({exc}): past {before} "
              "imap processes the local Dovecot checks IDLE mailboxes every 30 s, not at once")
        yield before
        return
    print(f"fs.inotify.max_user_instances raised from {before} to {needed} for this run")
    try:
        yield needed
    finally:
        INOTIFY_INSTANCES.write_text(str(before))


def _message(user: str, subject: str) -> str:
    return (
        f"From: a@example.com\r\nTo: {user}@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@push.bench>\r\n\r\nhello\r\n"
    )


def _spawn(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "webapp.cli", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    proc.log_path = log
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait(predicate, timeout: float, what: str, procs: list[subprocess.Popen]) -> float:
    started = time.monotonic()
    while not predicate():
        for proc in procs:
            if proc.poll() is not None:
                tail = "\n".join(proc.log_path.read_text(errors="replace").splitlines()[-30:])
                raise SystemExit(f"{' '.join(proc.args[3:])} ended while waiting for {what}:\n{tail}")
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - started


def _queues_empty(app) -> bool:
    with app.app_context():
        return all(q.count == 0 for q in get_queues()) and not any(
            q.started_job_registry.count for q in get_queues()
        )


@contextlib.contextmanager
def embedded_redis_stopped(env: dict[str, str], redis_url: str | None):
    """Without ``--redis-url`` the run started an embedded Redis: stop it at the end, however it ends."""
    try:
        yield
    finally:
        if not redis_url:
            stop_embedded(env["MAILROOM_INSTANCE"])


def yardsticks(server: Dovecot, deliveries: int, gap: float) -> dict[str, list[float]]:
    """Delivery to EXISTS on an idling socket (raw), and to headers fetched (the usual script)."""
    raw, usual = [], []
    with IMAPClient("127.0.0.1", port=server.imap_port, ssl=False) as client:
        client.login(YARDSTICK_USER, "pw-yard")
        client.select_folder("INBOX")
        last_uid = max(client.search("ALL") or [0])
        for _ in range(deliveries):
            client.idle()
            time.sleep(gap)
            subject = f"yard {uuid.uuid4().hex[:8]}"
            delivered = time.monotonic()
            server.add_message(YARDSTICK_USER, _message(YARDSTICK_USER, subject))
            while not any(r[1] == b"EXISTS" for r in client.idle_check(timeout=10) if len(r) > 1):
                pass
            raw.append(time.monotonic() - delivered)
            client.idle_done()
            new = [u for u in client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid]
            fetched = client.fetch(new, ["BODY.PEEK[HEADER.FIELDS (SUBJECT FROM DATE MESSAGE-ID)]"])
            assert any(subject.encode() in v[b"BODY[HEADER.FIELDS (SUBJECT FROM DATE MESSAGE-ID)]"] for v in fetched.values())
            usual.append(time.monotonic() - delivered)
            last_uid = max(new)
    return {"raw": raw, "usual": usual}


def through_api(app, server: Dovecot, targets: list[tuple[int, str, str]], gap: float, timeout: float) -> list[float]:
    """Deliver to each target mailbox in turn; time until its owner sees it in the API."""
    times = []
    with app.test_client() as client:
        for account_id, login, token in targets:
            time.sleep(gap)
            subject = f"pushed {uuid.uuid4().hex[:8]}"
            delivered = time.monotonic()
            server.add_message(login, _message(login, subject))
            while True:
                answer = client.get(
                    f"/api/v1/accounts/{account_id}/messages", headers={"Authorization": f"Bearer {token}"}
                )
                assert answer.status_code == 200, answer.get_data(as_text=True)
                if any(m["subject"] == subject for m in answer.get_json()["messages"]):
                    times.append(time.monotonic() - delivered)
                    break
                if time.monotonic() - delivered > timeout:
                    raise SystemExit(f"mailbox {account_id}: not in the API after {timeout} s")
                time.sleep(POLL)
    return times


def _stats(values: list[float]) -> dict:
    return {
        "p50_s": round(nearest_rank(values, 0.5), 3),
        "p95_s": round(nearest_rank(values, 0.95), 3),
        "max_s": round(max(values), 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mailboxes", type=int, default=1000)
    parser.add_argument("--deliveries", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between two deliveries")
    parser.add_argument("--database-url")
    parser.add_argument("--redis-url")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for all mailboxes to idle")
    parser.add_argument("--keep-logs", type=Path, help="copy the idle and worker logs into this folder")
    args = parser.parse_args(argv)
    users = {f"push{i:05d}": f"pw-{i}" for i in range(args.mailboxes)}
    with tempfile.TemporaryDirectory(prefix="mailroom-push-bench-") as tmp:
        workdir = Path(tmp)
        env = environment(workdir, args.database_url, args.redis_url)
        os.environ.update(env)
        app = fresh_app(env, scratch_redis=bool(args.redis_url))
        server = Dovecot(
            users={**users, YARDSTICK_USER: "pw-yard"}, ssl=False, max_connections=args.mailboxes + 100
        )
        with embedded_redis_stopped(env, args.redis_url), inotify_room(args.mailboxes + 50), server:
            with app.app_context():
                from webapp import settings_store

                settings_store.update({"allowed_internal_hosts": ["127.0.0.1/32"]})
                ids = [_create(login, pw, (server.imap_port, 25)) for login, pw in users.items()]
                _inboxes(ids)
                db.session.execute(db.update(Account).where(Account.id.in_(ids)).values(push=True))
                db.session.commit()
                picks = random.Random(13).sample(range(len(ids)), min(args.deliveries, len(ids)))
                logins = list(users)
                targets = [
                    (ids[i], logins[i], api_tokens.issue_token(db.session.get(Account, ids[i]).user, "bench"))
                    for i in picks
                ]
                db.session.remove()
            child_env = dict(os.environ, **env)
            worker = _spawn(child_env, "worker", log=workdir / "worker.log")
            idle = _spawn(child_env, "idle", log=workdir / "idle.log")
            procs = [worker, idle]
            try:
                redis = get_redis_for(app)

                def all_idling() -> bool:
                    mine = [p for p in processes(redis) if p["name"].split(":")[1] == str(idle.pid)]
                    return bool(mine) and mine[0]["idling"] >= args.mailboxes

                held_after = _wait(all_idling, args.timeout, f"{args.mailboxes} mailboxes in IDLE", procs)
                settled = _wait(lambda: _queues_empty(app), args.timeout, "the catch-up syncs", procs)
                time.sleep(2)
                api = through_api(app, server, targets, args.gap, timeout=60)
                idle_rss_kb = rss_kb(idle.pid)
                yard = yardsticks(server, args.deliveries, args.gap)  # with the N connections still held
            finally:
                for proc in procs:
                    _stop(proc)
                if args.keep_logs:
                    args.keep_logs.mkdir(parents=True, exist_ok=True)
                    for proc in procs:
                        shutil.copy(proc.log_path, args.keep_logs / proc.log_path.name)
    result = {
        "mailboxes": args.mailboxes,
        "deliveries": len(api),
        "database": "postgresql" if (args.database_url or "").startswith("postgresql") else "sqlite",
        "all_idling_after_s": round(held_after, 1),
        "catch_up_syncs_done_after_s": round(held_after + settled, 1),
        "idle_rss_mb": round(idle_rss_kb / 1024, 1),
        "api": _stats(api),
        "api_each_s": [round(t, 3) for t in api],
        "raw": _stats(yard["raw"]),
        "usual": _stats(yard["usual"]),
    }
    print(f"{args.mailboxes} push mailboxes held by one mailroom idle ({result['database']}); "
          f"all in IDLE after {result['all_idling_after_s']} s, RSS {result['idle_rss_mb']} MB")
    print(f"{'delivery ->':<38} {'p50':>7} {'p95':>7} {'max':>7}")
    for label, key in (
        ("console API (idle -> worker -> DB)", "api"),
        ("raw: EXISTS on an idling socket", "raw"),
        ("usual: imapclient IDLE + fetch", "usual"),
    ):
        s = result[key]
        print(f"{label:<38} {s['p50_s']:>6.3f}s {s['p95_s']:>6.3f}s {s['max_s']:>6.3f}s")
    print(
        f"API p95 / raw p95: {result['api']['p95_s'] / max(result['raw']['p95_s'], 1e-3):.1f}x; "
        f"API p95 / usual p95: {result['api']['p95_s'] / max(result['usual']['p95_s'], 1e-3):.1f}x; "
        f"goal p95 <= 5 s: {'met' if result['api']['p95_s'] <= 5 else 'NOT met'}"
    )
    print("PUSH_LATENCY_JSON " + json.dumps(result))


def get_redis_for(app):
    with app.app_context():
        return get_redis()



if __name__ == "__main__":
    main()
