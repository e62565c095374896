"""cProfile of unchanged sync jobs as RQ runs them, in-process: the "before" profile of issue 13.

``python -m bench.fleet_profile [--mailboxes 50] [--database-url URL] [--redis-url URL]``

The fleet of bench/fleet.py (a private Dovecot, mailboxes made through the services), a first
sync run by an RQ ``SimpleWorker`` in this process, then every mailbox made due, one pass
enqueued by cron's ``sync_due_accounts`` and drained by a ``SimpleWorker`` under cProfile.
A ``SimpleWorker`` runs each job as ``mailroom worker``'s work horse does (the same
``perform_job``, registries, callbacks and Redis traffic) minus the fork: the fork and what a
new horse pays for it are seen with py-spy on a real worker (``bench.fleet --py-spy DIR``,
then ``bench.profile_shares``).  Prints milliseconds per job of the functions that matter.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rq import SimpleWorker

from bench import fleet_app, fleet_servers
from bench.fleet_servers import SmtpSink, log
from webapp.queue import get_queues, get_redis

#: (label, pstats function-name pattern): cumulative time of each, per job.
SPOTS = [
    ("RQ perform_job (the whole job as RQ runs it)", r"perform_job"),
    ("webapp.jobs.sync.sync_account", r"sync(_jobs)?\.py:\d+\(sync_account\)"),
    ("  _Lock acquire + release (Redis)", r"sync(_jobs)?\.py:\d+\((acquire|release)\)"),
    ("  webapp.jobs.session.open_client (enter)", r"session\.py:\d+\(open_client\)"),
    ("    connectors.net.tls_context", r"net.py:\d+\(tls_context\)"),
    ("      ssl.create_default_context", r"ssl.py:\d+\(create_default_context\)"),
    ("    connectors connect (socket, greeting)", r"imap.py:\d+\(connect\)"),
    ("    connectors login", r"imap.py:\d+\(login\)"),
    ("    credentials (decrypt password)", r"session\.py:\d+\(credentials\)"),
    ("  _folders_to_sync (2 queries)", r"_folders_to_sync"),
    ("  connectors.sync.sync_folders (the engine)", r"sync.py:\d+\(sync_folders\)"),
    ("  _succeeded (outcome, email log, commit)", r"_succeeded"),
    ("    email_log.record", r"email_log.py:\d+\(record\)"),
    ("  logout", r"logout"),
    ("SQLAlchemy Session.commit (all)", r"session.py:\d+\(commit\)"),
    ("redis-py execute_command (all)", r"client.py:\d+\(execute_command\)"),
    ("imaplib _command_complete (all IMAP round trips)", r"imaplib.py:\d+\(_command_complete\)"),
]


def spots(stats: pstats.Stats, jobs: int) -> list[tuple[str, float, int]]:
    """(label, ms per job, calls per job) of each SPOTS pattern, by cumulative time."""
    rows = []
    for label, pattern in SPOTS:
        regex = re.compile(pattern)
        cum, calls = 0.0, 0
        for (filename, line, name), (_cc, nc, _tt, ct, _callers) in stats.stats.items():
            if regex.search(f"{filename}:{line}({name})"):
                cum, calls = max(cum, ct), max(calls, nc)
        rows.append((label, 1000 * cum / jobs, calls / jobs))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fleet_profile", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--mailboxes", type=int, default=50)
    parser.add_argument("--database-url", help="a scratch PostgreSQL database (its tables are dropped)")
    parser.add_argument("--redis-url", help="a scratch Redis database (it is flushed)")
    parser.add_argument("--output", help="also write the full pstats dump here")
    args = parser.parse_args(argv)
    users = fleet_servers.fleet_users(args.mailboxes)
    server = fleet_servers.start_dovecot(users)
    fleet_servers.fill_inboxes(server, list(users), fleet_servers.template(20))
    server.doveadm("index", "-A", "INBOX")
    workdir = Path(tempfile.mkdtemp(prefix="mailroom-fleet-profile-"))
    try:
        with SmtpSink() as smtp:
            env = fleet_app.environment(workdir, args.database_url, args.redis_url)
            fleet = fleet_app.Fleet(fleet_app.fresh_app(env, scratch_redis=bool(args.redis_url)), env)
            fleet.embedded_redis = not args.redis_url
            fleet_app.create_fleet(fleet, users, server.imap_port, smtp.port)
            prof, jobs, seconds = _profile(fleet)
            fleet_app.close(fleet)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    _print(prof, jobs, seconds, args.output)
    return 0


def _drain(fleet: fleet_app.Fleet) -> None:
    with fleet.app.app_context():
        SimpleWorker(get_queues(), connection=get_redis()).work(burst=True, logging_level="WARNING")


def _profile(fleet: fleet_app.Fleet) -> tuple[cProfile.Profile, int, float]:
    log("first sync (SimpleWorker, not profiled) ...")
    fleet_app.enqueue_pass(fleet)
    _drain(fleet)
    fleet_app.make_due(fleet)
    jobs = fleet_app.enqueue_pass(fleet)["enqueued"]
    log(f"unchanged pass of {jobs} jobs under cProfile ...")
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    _drain(fleet)
    prof.disable()
    return prof, jobs, time.perf_counter() - start


def _print(prof: cProfile.Profile, jobs: int, seconds: float, output: str | None) -> None:
    stats = pstats.Stats(prof)
    print(
        f"{jobs} unchanged sync jobs in {seconds:.2f} s: {1000 * seconds / jobs:.1f} ms per job (under cProfile)"
    )
    print(f"{'':58}{'ms/job':>8}{'calls/job':>10}")
    for label, ms, calls in spots(stats, jobs):
        print(f"{label:58}{ms:>8.1f}{calls:>10.1f}")
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
    print("\nBy own time:\n" + buf.getvalue())
    if output:
        stats.dump_stats(output)


if __name__ == "__main__":
    sys.exit(main())
