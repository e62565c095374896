"""Where the time of an unchanged pass goes, in-process: cProfile of cron's batch jobs (issue 13).

``python -m bench.fleet_profile [--mailboxes 200] [--database-url URL] [--redis-url URL]``

The fleet of bench/fleet.py (a private Dovecot, mailboxes made through the services), a first
sync run by an RQ ``SimpleWorker`` in this process, then every mailbox made due, one pass
enqueued by cron's ``sync_due_accounts`` (batch jobs, :mod:`webapp.jobs.batch`) and drained by
a ``SimpleWorker`` under cProfile, in the job's own thread and in every connection thread the
batches start (``threading.setprofile`` gives each its own profiler; they are merged).  A
``SimpleWorker`` runs each job as ``mailroom worker`` does.  Prints milliseconds per mailbox
of the functions that matter (cumulative, summed over threads: with 8 threads the network part
overlaps, so its per-mailbox sum is more than the wall time), the batch's own phase timings
(wall time), and per job and per mailbox: Redis round trips, SQL statements and commits.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from redis.connection import AbstractConnection
from rq import SimpleWorker
from rq.job import Job
from rq.registry import FinishedJobRegistry
from sqlalchemy import event

from bench import fleet_app, fleet_servers
from bench.fleet_servers import SmtpSink, log
from webapp.extensions import db
from webapp.queue import PERIODIC, get_queue, get_queues, get_redis

#: (label, pstats function-name pattern): cumulative time of each (summed over threads), per mailbox.
SPOTS = [
    ("RQ perform_job (the batch jobs as RQ runs them; wall)", r"perform_job"),
    ("webapp.jobs.batch.sync_batch (wall)", r"batch\.py:\d+\(sync_batch\)"),
    ("  _load (one query: mailboxes + services)", r"batch\.py:\d+\(_load\)"),
    ("  MailboxLocks.take (one pipeline)", r"mailbox_lock\.py:\d+\(take\)"),
    ("  _plan (settings, credentials, folder states)", r"batch\.py:\d+\(_plan\)"),
    ("    credentials (decrypt password)", r"session\.py:\d+\(credentials\)"),
    ("  _run (the thread pool; wall)", r"batch\.py:\d+\(_run\)"),
    ("  _record (unchanged: 2 UPDATEs + 1 commit)", r"batch\.py:\d+\(_record\)"),
    ("  MailboxLocks.release (one pipeline)", r"mailbox_lock\.py:\d+\(release\)"),
    ("_visit, all threads (per-mailbox network work)", r"batch\.py:\d+\(_visit\)"),
    ("  connectors connect (socket, greeting)", r"imap\.py:\d+\(connect\)"),
    ("  connectors login", r"imap\.py:\d+\(login\)"),
    ("  connectors.sync.unchanged_folders (STATUS)", r"sync\.py:\d+\(unchanged_folders\)"),
    ("  logout + close", r"imap\.py:\d+\(close\)"),
    ("SQLAlchemy Session.commit (all)", r"orm/session\.py:\d+\(commit\)"),
    ("redis-py execute_command (all)", r"client\.py:\d+\(execute_command\)"),
    ("imaplib _command_complete (all IMAP round trips)", r"imaplib\.py:\d+\(_command_complete\)"),
]


def spots(stats: pstats.Stats, per: int) -> list[tuple[str, float, float]]:
    """(label, ms per mailbox, calls per mailbox) of each SPOTS pattern, by cumulative time."""
    rows = []
    for label, pattern in SPOTS:
        regex = re.compile(pattern)
        cum, calls = 0.0, 0
        for (filename, line, name), (_cc, nc, _tt, ct, _callers) in stats.stats.items():
            if regex.search(f"{filename}:{line}({name})"):
                cum, calls = max(cum, ct), max(calls, nc)
        rows.append((label, 1000 * cum / per, calls / per))
    return rows


class ThreadProfiles:
    """cProfile in this thread and in every thread started while it is on (each its own profiler)."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _start_in_thread(self, frame, event_name, arg) -> None:
        sys.setprofile(None)
        prof = cProfile.Profile()
        with self._lock:
            self.profiles.append(prof)
        prof.enable()

    def __enter__(self) -> ThreadProfiles:
        threading.setprofile(self._start_in_thread)
        main = cProfile.Profile()
        self.profiles.append(main)
        main.enable()
        return self

    def __exit__(self, *exc) -> None:
        self.profiles[0].disable()
        threading.setprofile(None)
        for prof in self.profiles[1:]:
            prof.disable()  # threads that ended already left theirs enabled: harmless

    def stats(self, stream=None) -> pstats.Stats:
        stats = pstats.Stats(self.profiles[0], stream=stream)
        for prof in self.profiles[1:]:
            prof.create_stats()
            stats.add(prof)
        return stats


class Counters:
    """Redis round trips (one per command or pipeline), SQL statements and commits while on."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.counts: Counter = Counter()
        self._real = AbstractConnection.send_packed_command

    def __enter__(self) -> Counters:
        counts, real = self.counts, self._real

        def counted(conn, command, check_health=True):
            counts["redis"] += 1
            return real(conn, command, check_health)

        AbstractConnection.send_packed_command = counted
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._commit)
        return self

    def _statement(self, *args) -> None:
        self.counts["sql"] += 1

    def _commit(self, conn) -> None:
        self.counts["commits"] += 1

    def __exit__(self, *exc) -> None:
        AbstractConnection.send_packed_command = self._real
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fleet_profile", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--mailboxes", type=int, default=200)
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
            report = _profile(fleet)
            fleet_app.close(fleet)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    _print(report, args.output)
    return 0


def _drain(fleet: fleet_app.Fleet) -> None:
    with fleet.app.app_context():
        SimpleWorker(get_queues(), connection=get_redis()).work(burst=True, logging_level="WARNING")


def _profile(fleet: fleet_app.Fleet) -> dict:
    log("first sync (SimpleWorker, not profiled) ...")
    fleet_app.enqueue_pass(fleet)
    _drain(fleet)
    fleet_app.make_due(fleet)
    with fleet.app.app_context():
        done_before = set(FinishedJobRegistry(queue=get_queue(PERIODIC)).get_job_ids())
        engine = db.engine
    enqueued = fleet_app.enqueue_pass(fleet)
    log(f"unchanged pass of {enqueued['enqueued']} mailboxes under cProfile ...")
    start = time.perf_counter()
    with Counters(engine) as counters, ThreadProfiles() as profiles:
        _drain(fleet)
    seconds = time.perf_counter() - start
    with fleet.app.app_context():
        ids = [
            i for i in FinishedJobRegistry(queue=get_queue(PERIODIC)).get_job_ids() if i not in done_before
        ]
        results = [job.return_value() for job in Job.fetch_many(ids, connection=get_redis()) if job]
    return {
        "mailboxes": enqueued["enqueued"],
        "jobs": len(results),
        "seconds": seconds,
        "profiles": profiles,
        "counts": dict(counters.counts),
        "results": results,
    }


def _print(report: dict, output: str | None) -> None:
    n, jobs, seconds = report["mailboxes"], report["jobs"], report["seconds"]
    phases: Counter = Counter()
    outcomes: Counter = Counter()
    for result in report["results"]:
        phases.update(result.get("phases", {}))
        outcomes.update(
            {k: result.get(k, 0) for k in ("unchanged", "synced", "waiting", "failed", "crashed")}
        )
    print(
        f"{n} unchanged mailboxes in {jobs} batch jobs, {seconds:.2f} s under cProfile: "
        f"{1000 * seconds / n:.1f} ms per mailbox of wall time; outcomes {dict(outcomes)}"
    )
    print("\nThe batches' own phase timings (wall time, ms per mailbox):")
    for name, total in phases.items():
        print(f"  {name:56}{1000 * total / n:>8.2f}")
    counts = report["counts"]
    print("\nPer job / per mailbox:")
    for key, label in (("redis", "Redis round trips"), ("sql", "SQL statements"), ("commits", "commits")):
        value = counts.get(key, 0)
        print(f"  {label:56}{value / max(jobs, 1):>8.1f}{value / n:>8.2f}")
    stats = report["profiles"].stats()
    print(f"\n{'cumulative, summed over threads':58}{'ms/mbx':>8}{'calls/mbx':>10}")
    for label, ms, calls in spots(stats, n):
        print(f"{label:58}{ms:>8.2f}{calls:>10.2f}")
    buf = io.StringIO()
    report["profiles"].stats(stream=buf).sort_stats("tottime").print_stats(25)
    print("\nBy own time (all threads):\n" + buf.getvalue())
    print(
        "PROFILE_JSON "
        + json.dumps(
            {
                "mailboxes": n,
                "jobs": jobs,
                "seconds": round(seconds, 3),
                "phases": dict(phases),
                "counts": counts,
            }
        )
    )
    if output:
        stats.dump_stats(output)


if __name__ == "__main__":
    sys.exit(main())
