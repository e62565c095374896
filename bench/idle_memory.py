"""Memory of ``mailroom idle`` per idling mailbox, on a local Dovecot.

For each count N (default 0, 100, 500) a fresh ``mailroom idle`` process is started with N
push-enabled mailboxes (one Dovecot user each, plain IMAP on loopback); once its heartbeat says
all N are in IDLE, its VmRSS is read (after a short settle).  Prints RSS per count and the growth
per mailbox against N = 0.

    .venv/bin/python -m bench.idle_memory --counts 0,100,500
    .venv/bin/python -m bench.idle_memory --counts 0,100,500 \\
        --database-url postgresql://postgres@127.0.0.1:5432/SCRATCH --redis-url redis://127.0.0.1:6379/N

``--database-url``/``--redis-url`` must be scratch databases (tables dropped, Redis db flushed).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.servers.certs import make_cert_set
from tests.servers.dovecot import Dovecot
from webapp import settings_store
from webapp.extensions import db
from webapp.jobs.idle import processes
from webapp.models import Account
from webapp.queue import get_redis

from .fleet_app import _create, environment, fresh_app

SETTLE = 3.0


def rss_kb(pid: int) -> int:
    """VmRSS of a live process, in KB (0 if /proc does not say)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _measure(app, env: dict[str, str], ids: list[int], n: int, timeout: float) -> dict:
    with app.app_context():
        db.session.execute(db.update(Account).values(push=False))
        if n:
            db.session.execute(db.update(Account).where(Account.id.in_(ids[:n])).values(push=True))
        db.session.commit()
        redis = get_redis()
    proc = subprocess.Popen(
        [sys.executable, "-m", "webapp.cli", "idle", "--lease", "15"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = time.monotonic()
    try:
        while True:
            mine = [p for p in processes(redis) if p["name"].split(":")[1] == str(proc.pid)]
            if mine and mine[0]["idling"] >= n:
                break
            if proc.poll() is not None or time.monotonic() - started > timeout:
                raise SystemExit(f"mailroom idle did not reach {n} idling mailboxes: {mine}")
            time.sleep(0.2)
        ready = time.monotonic() - started
        time.sleep(SETTLE)
        return {"mailboxes": n, "rss_kb": rss_kb(proc.pid), "all_idling_after_s": round(ready, 2)}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", default="0,100,500")
    parser.add_argument("--database-url")
    parser.add_argument("--redis-url")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--tls", action="store_true", help="implicit TLS (993-style port) with a test CA")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    most = max(counts)
    users = {f"idle{i:05d}": f"pw-{i}" for i in range(max(most, 1))}
    with tempfile.TemporaryDirectory(prefix="mailroom-idle-bench-") as tmp:
        env = environment(Path(tmp), args.database_url, args.redis_url)
        certs = make_cert_set(Path(tmp) / "certs") if args.tls else None
        if certs is not None:
            env["MAILROOM_CA_FILE"] = str(certs.ca_cert)
        os.environ.update(env)  # the app built here and the child processes read these
        app = fresh_app(env, scratch_redis=bool(args.redis_url))
        server = Dovecot(
            users=users,
            ssl=certs is not None,
            cert=certs.valid if certs else None,
            max_connections=most + 100,
        )
        with server:
            with app.app_context():
                settings_store.update({"allowed_internal_hosts": ["127.0.0.1/32"]})
                ids = [_create(login, pw, (server.imap_port, 25)) for login, pw in users.items()]
                if certs is not None:
                    db.session.execute(
                        db.update(Account).values(imap_port=server.imaps_port, imap_security="tls")
                    )
                    db.session.commit()
                db.session.remove()
            rows = [_measure(app, dict(os.environ, **env), ids, n, args.timeout) for n in counts]
    base = next((r["rss_kb"] for r in rows if r["mailboxes"] == 0), None)
    print(f"{'mailboxes':>9} {'RSS MB':>8} {'KB per mailbox (vs 0)':>22} {'all idling after':>17}")
    for r in rows:
        per = f"{(r['rss_kb'] - base) / r['mailboxes']:.1f}" if base is not None and r["mailboxes"] else "-"
        print(f"{r['mailboxes']:>9} {r['rss_kb'] / 1024:>8.1f} {per:>22} {r['all_idling_after_s']:>15} s")
    print("IDLE_MEMORY_JSON " + json.dumps(rows))


if __name__ == "__main__":
    main()
