"""Fleet benchmark: N mailboxes kept fresh by real ``mailroom worker`` processes (issue 13).

``python -m bench.fleet [--mailboxes N] [--workers 1,2,4] [--worker-cpu F] [--database-url URL] [--redis-url URL]``
(``make bench-fleet``)

One private Dovecot (plaintext IMAP on loopback) holds N users, each INBOX with the same M
generated messages (bench/fleet_servers.py).  On a fresh database and Redis the mailboxes are
created once through Mailroom's own services with INBOX marked for sync; for each worker count
the fleet is reset to never-synced (messages, folder states, due times, log rows, Redis),
``w`` real ``mailroom worker`` processes are started, and in the same run it measures:

1. the first sync of the fleet: cron's own ``sync_due_accounts`` enqueues every mailbox; the
   wall time runs from that call to the last mailbox's ``last_synced_at``;
2. an unchanged pass: every mailbox made due again, enqueued the same way, timed the same way;
3. right after that pass is enqueued, ``--tests`` connection tests of another mailbox are
   started through ``POST /api/v1/accounts/<id>/test``; their latency is RQ's ``ended_at``
   minus the moment the request was made (p50 and p95, nearest rank);
4. the workers' memory: peak VmHWM/VmRSS of each worker and of the work horses it forks;
5. CPU-ms per mailbox of each part (workers, Dovecot, the workers' PostgreSQL backends, Redis,
   the bench) per pass, from ``/proc/<pid>/stat`` (bench/fleet_cputime.py); the efficiency of each
   worker count (rate_N / (N x rate_1)) and what one core of PostgreSQL or Redis can serve
   (bench/fleet_scaling.py).  ``--worker-cpu F`` runs each worker in a cgroup of its own capped
   at F of a core (bench/fleet_cgroups.py), so 1, 2, 4 workers get F, 2F, 4F cores;
6. yardsticks, per mailbox, serial and in-process: the engine alone (connectors.sync with the
   real store on one mailbox, login excluded), the raw limit (imaplib login + STATUS + logout;
   login + SELECT + one UID FETCH for a first sync) and the usual Python way (imap-tools).

Prints a table and one ``FLEET_JSON {...}`` line; writes the JSON into bench/results/.
``--database-url`` and ``--redis-url`` must be scratch databases: tables are dropped, the
Redis database is flushed.  The default is an SQLite file and the embedded Redis per run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bench import fleet_app, fleet_cgroups, fleet_raw, fleet_scaling, fleet_servers
from bench.fleet_cputime import WORKER_APP_NAME, CpuMeter, PostgresBackends
from bench.fleet_scaling import PassCpu
from bench.fleet_servers import ENGINE_USER, PROBE_USER, SmtpSink, log
from bench.fleet_workers import PySpy, RssSampler, Workers

RESULTS = Path(__file__).resolve().parent / "results"
#: Goals of issue 13, per worker.
GOAL_FIRST, GOAL_UNCHANGED, GOAL_P95_S = 30.0, 100.0, 2.0
#: Mailboxes the serial yardsticks run over (all of them up to this many).
YARDSTICK_SAMPLE = 500


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mailboxes", type=int, help="mailboxes in the fleet (default 1,000; --large 10,000; --quick 6)"
    )
    parser.add_argument("--large", action="store_true", help="10,000 mailboxes (the issue's company)")
    parser.add_argument("--messages-per-mailbox", type=int, help="messages in each INBOX (default 20)")
    parser.add_argument("--workers", help="worker counts to measure (default 1,2,4)")
    parser.add_argument(
        "--worker-cpu",
        type=float,
        metavar="FRACTION",
        help="cap each worker at this fraction of a core, in a cgroup of its own (e.g. 0.2)",
    )
    parser.add_argument("--tests", type=int, help="connection tests timed behind a pass (default 5)")
    parser.add_argument(
        "--dovecot-performance",
        action="store_true",
        help="run the fleet's Dovecot in its high-performance mode (login and imap processes reused)",
    )
    parser.add_argument("--database-url", help="a scratch PostgreSQL database (its tables are dropped)")
    parser.add_argument("--redis-url", help="a scratch Redis database (it is flushed); default embedded")
    parser.add_argument("--quick", action="store_true", help="a handful of mailboxes, for the smoke test")
    parser.add_argument("--py-spy", metavar="DIR", help="py-spy the first worker during the unchanged pass")
    parser.add_argument("--results-dir", default=str(RESULTS), help="where the JSON results go")
    args = parser.parse_args(argv)
    quick = args.quick
    args.mailboxes = args.mailboxes or (6 if quick else 10_000 if args.large else 1000)
    args.messages_per_mailbox = args.messages_per_mailbox or (3 if quick else 20)
    args.tests = args.tests if args.tests is not None else (2 if quick else 5)
    try:
        args.workers = [int(w) for w in (args.workers or ("1" if quick else "1,2,4")).split(",")]
    except ValueError:
        parser.error("--workers must be whole numbers separated by commas, e.g. 1,2,4")
    if args.mailboxes < 1 or args.messages_per_mailbox < 1 or min(args.workers) < 1 or args.tests < 0:
        parser.error("--mailboxes, --messages-per-mailbox and --workers must be at least 1")
    if args.worker_cpu is not None:
        if not 0.01 <= args.worker_cpu <= (os.cpu_count() or 1):
            parser.error(f"--worker-cpu must be between 0.01 and {os.cpu_count()} (a fraction of one core)")
        try:
            fleet_cgroups.check_writable()
        except fleet_cgroups.CgroupError as exc:
            parser.error(str(exc))
    return args


# -- one pass ------------------------------------------------------------------------------------


def run_pass(fleet: fleet_app.Fleet, tests: int, deadline_s: float) -> dict:
    """Enqueue a pass as cron does (and ``tests`` connection tests after it); wait until it is over."""
    since = datetime.now(UTC).replace(tzinfo=None)
    load = os.getloadavg()[0]
    t0 = time.time()
    enqueued = fleet_app.enqueue_pass(fleet)
    asked = [fleet_app.start_connection_test(fleet) for _ in range(tests)]
    latencies: dict[str, float] = {}
    state = fleet_app.progress(fleet, since)
    while time.time() - t0 < deadline_s:
        state = fleet_app.progress(fleet, since)
        for when, job_id in asked:
            if job_id not in latencies and (ended := fleet_app.job_done_at(fleet, job_id)) is not None:
                latencies[job_id] = ended - when
        if state["done"] >= fleet.size and len(latencies) == len(asked):
            break
        time.sleep(0.25)
    latest = state["latest"]
    wall = latest.replace(tzinfo=UTC).timestamp() - t0 if latest else float("nan")
    return {
        "enqueue_s": enqueued["seconds"],
        "enqueued": enqueued["enqueued"],
        "wall_s": wall,
        "done": state["done"],
        "failed": state["failed"],
        "errors": fleet_app.errors(fleet, since) if state["failed"] else [],
        "complete": state["done"] >= fleet.size,
        "latencies_s": sorted(latencies.values()),
        "tests_unanswered": len(asked) - len(latencies),
        "load_before": load,
        "load_after": os.getloadavg()[0],
    }


# -- one worker count ---------------------------------------------------------------------------


def run_all(args, server, smtp_port: int, users: dict[str, str]) -> list[dict]:
    """One database and Redis, the fleet made once; per worker count the fleet is reset to
    never-synced (messages, folder states, due times, log and Redis cleared), ``w`` workers
    started, a first sync and an unchanged pass measured."""
    workdir = Path(tempfile.mkdtemp(prefix="mailroom-fleet-"))
    try:
        env = fleet_app.environment(workdir, args.database_url, args.redis_url)
        os.environ.update(env)  # the bench's own app reads what the workers read
        fleet = fleet_app.Fleet(
            fleet_app.fresh_app(env, scratch_redis=bool(args.redis_url)),
            env,
            embedded_redis=not args.redis_url,
        )
        started = time.monotonic()
        log(f"creating {args.mailboxes:,} mailboxes through the services ...")
        fleet_app.create_fleet(fleet, users, server.imap_port, smtp_port)
        setup = time.monotonic() - started
        log("timing the engine alone on one mailbox ...")
        engine = fleet_app.engine_times(fleet, server.host, server.imap_port, users[ENGINE_USER])
        runs = []
        try:
            for i, workers in enumerate(args.workers):
                if i:
                    fleet_app.reset(fleet)
                out: dict = {"workers": workers, "setup_s": setup, "engine": engine}
                out.update(_passes(args, fleet, workers, workdir, first=(i == 0)))
                runs.append(out)
        finally:
            fleet_app.close(fleet)
        return runs
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _passes(args, fleet: fleet_app.Fleet, workers: int, workdir: Path, first: bool) -> dict:
    deadline = max(300.0, args.mailboxes * 2.0 / (workers * min(1.0, args.worker_cpu or 1.0)) + 120)
    env = dict(fleet.env)
    backends = None
    if args.database_url:  # the workers' own backends, told from others by their application_name
        env["DATABASE_URL"] = with_application_name(args.database_url, WORKER_APP_NAME)
        backends = PostgresBackends(args.database_url)
    with contextlib.ExitStack() as stack:
        if backends is not None:
            stack.enter_context(backends)
        pool = Workers(workers, env, workdir / "logs", cpu=args.worker_cpu).start()
        stack.callback(pool.stop)
        rss = stack.enter_context(RssSampler(pool.pids))
        meter = CpuMeter(pool.pids, fleet.env["REDIS_URL"], backends)
        log(f"[{workers} worker(s)] first sync of the fleet ...")
        with PassCpu(meter, pool) as first_cpu:
            first_pass = run_pass(fleet, 0, deadline)
        stored = fleet_app.stored_messages(fleet)
        fleet_app.make_due(fleet)
        log(f"[{workers} worker(s)] unchanged pass, {args.tests} connection tests behind it ...")
        with contextlib.ExitStack() as spying:
            if args.py_spy and first:
                target = Path(args.py_spy) / f"unchanged-pass-{args.mailboxes}.txt"
                target.parent.mkdir(parents=True, exist_ok=True)
                spying.enter_context(PySpy(pool.pids[0], target))
            with PassCpu(meter, pool) as same_cpu:
                unchanged = run_pass(fleet, args.tests, deadline)
    first_pass["cpu"], unchanged["cpu"] = first_cpu.result, same_cpu.result
    for name, p in (("first sync", first_pass), ("unchanged pass", unchanged)):
        for error, n in p["errors"]:
            log(f"  {name}: {n} mailbox(es) failed: {error}")
    if not first_pass["complete"] or not unchanged["complete"]:
        log(f"  INCOMPLETE: see the worker logs (kept in {workdir / 'logs'} until the run ends)")
    seen = backends.seen if backends is not None else None
    return {
        "first": first_pass,
        "unchanged": unchanged,
        "stored": stored,
        "rss_kb": rss.peak,
        "pg_backends": seen,
    }


def with_application_name(url: str, name: str) -> str:
    """``url`` with ``application_name`` set (libpq's parameter), other parameters kept."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "application_name"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("application_name", name)])))


# -- the report ----------------------------------------------------------------------------------


def rate(n: int, p: dict) -> float:
    return n / p["wall_s"] if p["wall_s"] and p["wall_s"] > 0 else 0.0


def nearest_rank(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def run_row(run: dict, n: int, cap: float | None) -> dict:
    """One worker count's figures: rates, latency of the tests, memory, CPU per part."""
    w, lat = run["workers"], run["unchanged"]["latencies_s"]
    first, same = rate(n, run["first"]), rate(n, run["unchanged"])
    return {
        "workers": w,
        "first_per_s": round(first, 2),
        "first_per_s_per_worker": round(first / w, 2),
        "unchanged_per_s": round(same, 2),
        "unchanged_per_s_per_worker": round(same / w, 2),
        "unchanged_ms_per_mailbox_worker": round(1000 * w / same, 1) if same else None,
        "enqueue_s": round(run["unchanged"]["enqueue_s"], 2),
        "interactive_p50_s": round(statistics.median(lat), 2) if lat else None,
        "interactive_p95_s": round(nearest_rank(lat, 0.95), 2) if lat else None,
        "failed": run["first"]["failed"] + run["unchanged"]["failed"],
        "worker_hwm_mb": round(run["rss_kb"]["worker_hwm"] / 1024, 1),
        "horse_hwm_mb": round(run["rss_kb"]["horse_hwm"] / 1024, 1),
        "load": round(max(run["first"]["load_before"], run["unchanged"]["load_after"]), 2),
        "cpu": {
            kind: fleet_scaling.pass_figures(run[kind]["cpu"], n, w, cap) for kind in ("first", "unchanged")
        },
    }


def summarize(args, yard: dict, runs: list[dict]) -> dict:
    """The figures of the JSON line: per worker count, and ratios on the one-worker run."""
    n = args.mailboxes
    per = [run_row(run, n, args.worker_cpu) for run in runs]
    fleet_scaling.efficiency(per, "first_per_s")
    fleet_scaling.efficiency(per, "unchanged_per_s")
    for row in per:  # the names the README's figures use
        row["scaling_unchanged"], row["scaling_first"] = row["unchanged_per_s_x1"], row["first_per_s_x1"]
    base = per[0]
    engine = runs[0]["engine"]
    first_ms = 1000 * base["workers"] / base["first_per_s"] if base["first_per_s"] else float("nan")
    same_ms = base["unchanged_ms_per_mailbox_worker"] or float("nan")
    ratios = {
        "unchanged_vs_engine": same_ms / engine["unchanged_ms"],
        "unchanged_vs_raw": same_ms / yard["raw_unchanged_ms"],
        "unchanged_vs_usual": same_ms / yard["usual_unchanged_ms"],
        "first_vs_engine": first_ms / engine["first_ms"],
        "first_vs_raw": first_ms / yard["raw_first_ms"],
        "first_vs_usual": first_ms / yard["usual_first_ms"],
    }
    return {
        "mailboxes": n,
        "messages_per_mailbox": args.messages_per_mailbox,
        "database": "postgresql" if args.database_url else "sqlite",
        "redis": "server" if args.redis_url else "embedded",
        "worker_cpu": args.worker_cpu,
        "dovecot_mode": "performance" if args.dovecot_performance else "default",
        "runs": per,
        "cpu_ceilings": fleet_scaling.ceilings(runs, n),
        "engine_first_ms": round(engine["first_ms"], 2),
        "engine_unchanged_ms": round(engine["unchanged_ms"], 2),
        **{k: round(v, 2) for k, v in yard.items()},
        **{k: round(v, 1) for k, v in ratios.items()},
    }


def table(summary: dict) -> str:
    s = summary
    lines = [
        f"Fleet benchmark: {s['mailboxes']:,} mailboxes x {s['messages_per_mailbox']} messages, Dovecot "
        f"(plain IMAP, loopback, {s['dovecot_mode']} mode), {s['database']}, {s['redis']} Redis, "
        f"{os.cpu_count()} CPUs",
        "",
        f"{'workers':>7} {'first/s':>8} {'/worker':>8} {'unch./s':>8} {'/worker':>8} {'ms/mbx':>7} "
        f"{'x1 w':>5} {'enq s':>6} {'test p50':>9} {'p95':>7} {'worker MB':>10} {'horse MB':>9} "
        f"{'failed':>6} {'load':>5}",
    ]
    for r in s["runs"]:
        p50 = f"{r['interactive_p50_s']:.2f} s" if r["interactive_p50_s"] is not None else "-"
        p95 = f"{r['interactive_p95_s']:.2f} s" if r["interactive_p95_s"] is not None else "-"
        lines.append(
            f"{r['workers']:>7} {r['first_per_s']:>8.1f} {r['first_per_s_per_worker']:>8.1f} "
            f"{r['unchanged_per_s']:>8.1f} {r['unchanged_per_s_per_worker']:>8.1f} "
            f"{r['unchanged_ms_per_mailbox_worker'] or 0:>7.0f} {r['scaling_unchanged'] or 0:>5.2f} "
            f"{r['enqueue_s']:>6.1f} {p50:>9} {p95:>7} {r['worker_hwm_mb']:>10.1f} {r['horse_hwm_mb']:>9.1f} "
            f"{r['failed']:>6} {r['load']:>5.1f}"
        )
    lines += [
        "",
        "Per mailbox, serial, in-process (ms):   first sync   unchanged",
        f"  engine alone (connectors.sync)        {s['engine_first_ms']:>10.1f} {s['engine_unchanged_ms']:>11.1f}",
        f"  raw limit (imaplib)                   {s['raw_first_ms']:>10.1f} {s['raw_unchanged_ms']:>11.1f}",
        f"  usual Python way (imap-tools)         {s['usual_first_ms']:>10.1f} {s['usual_unchanged_ms']:>11.1f}",
        "",
        "Per-mailbox worker time (1st row) / yardstick:   first sync   unchanged"
        + ("   (capped workers: slower by design)" if s["worker_cpu"] else ""),
        f"  / engine alone                                 {s['first_vs_engine']:>10.1f}x {s['unchanged_vs_engine']:>10.1f}x",
        f"  / raw limit                                    {s['first_vs_raw']:>10.1f}x {s['unchanged_vs_raw']:>10.1f}x",
        f"  / usual Python way                             {s['first_vs_usual']:>10.1f}x {s['unchanged_vs_usual']:>10.1f}x",
        "",
        fleet_scaling.render(s),
        "",
        _goals(s),
    ]
    return "\n".join(lines)


def _goals(s: dict) -> str:
    best = max(s["runs"], key=lambda r: r["unchanged_per_s_per_worker"])
    measured = [r["interactive_p95_s"] for r in s["runs"] if r["interactive_p95_s"] is not None]
    p95 = max(measured) if measured else float("nan")
    # A capped worker is a fraction of a core: the goals (per worker = per core) are met per core.
    per, scale = ("worker core", 1 / s["worker_cpu"]) if s["worker_cpu"] else ("worker", 1.0)
    first, same = best["first_per_s_per_worker"] * scale, best["unchanged_per_s_per_worker"] * scale

    def ok(flag: bool) -> str:
        return "OK" if flag else "BELOW GOAL"

    return "\n".join(
        [
            "Goals (issue 13)"
            + (f", per core (rate per worker / {s['worker_cpu']:g} core):" if scale != 1 else ":"),
            f"  first sync   >= {GOAL_FIRST:g}/s per {per}:  {first:.1f}   {ok(first >= GOAL_FIRST)}",
            f"  unchanged    >= {GOAL_UNCHANGED:g}/s per {per}: {same:.1f}   {ok(same >= GOAL_UNCHANGED)}",
            f"  connection test p95 < {GOAL_P95_S:g} s:     {p95:.2f} s   "
            + (ok(p95 < GOAL_P95_S) if measured else "not measured (--tests 0)"),
        ]
    )


# -- main ------------------------------------------------------------------------------------------


def prepare(args) -> tuple:
    users = fleet_servers.fleet_users(args.mailboxes)
    cur = fleet_servers.template(args.messages_per_mailbox)
    log(f"Dovecot with {len(users):,} users, {args.messages_per_mailbox} messages each ...")
    server = fleet_servers.start_dovecot(users, performance=args.dovecot_performance)
    fleet_servers.fill_inboxes(server, list(users), cur)
    server.doveadm("index", "-A", "INBOX")  # every index built before anything is timed
    return users, server


def code_version() -> str:
    """The commit measured, "+dirty" when the work tree has changes (the shared checkout often has)."""
    git = ["git", "-C", str(RESULTS.parent.parent)]
    head = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    )
    return (head or "?") + ("+dirty" if dirty.stdout.strip() else "")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started, load, commit = time.monotonic(), os.getloadavg(), code_version()
    users, server = prepare(args)
    try:
        with SmtpSink() as smtp:
            sample = [(u, p) for u, p in users.items() if u not in (PROBE_USER, ENGINE_USER)]
            log(f"yardsticks over {min(len(sample), YARDSTICK_SAMPLE)} mailboxes ...")
            yard = fleet_raw.yardsticks(
                server.host, server.imap_port, sample[:YARDSTICK_SAMPLE], args.messages_per_mailbox
            )
            runs = run_all(args, server, smtp.port, users)
    finally:
        server.stop()
    summary = summarize(args, yard, runs)
    summary["load_at_start"] = [round(x, 2) for x in load]
    summary["commit"] = commit
    summary["minutes"] = round((time.monotonic() - started) / 60, 1)
    print(table(summary))
    print(
        f"load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}; run took {summary['minutes']} min"
    )
    print("FLEET_JSON " + json.dumps(summary, separators=(",", ":")))
    write_results(args, summary, runs)
    return 0


def write_results(args, summary: dict, runs: list[dict]) -> None:
    out = Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"fleet-{args.mailboxes}-{summary['database']}-{stamp}.json"
    machine = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
    path.write_text(
        json.dumps(
            {"when": stamp, "summary": summary, "runs": runs, "machine": machine}, indent=2, default=str
        )
    )
    print(f"Results written to {path}")


if __name__ == "__main__":
    sys.exit(main())
