"""Smoke test of ``python -m bench.fleet --quick``: six mailboxes, one real worker, every figure printed.

No timing is asserted: the test keeps the benchmark from rotting (a renamed service, a changed
enqueue path or job) and checks that what it prints is what it measured.  With ``DATABASE_URL``
set (the PostgreSQL run) the bench gets a scratch database beside it (``<name>_fleet``, its
tables are dropped); Redis is the bench's own embedded one, never the session's database.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bench.fleet_cgroups import CgroupError, check_writable

ROOT = Path(__file__).resolve().parent.parent


def scratch_database(url: str) -> str:
    """``…/mr_x`` -> ``…/mr_x_fleet``, created if missing."""
    base, _, name = url.rpartition("/")
    name = name.split("?")[0] + "_fleet"
    admin = psycopg.connect(
        base.replace("postgresql+psycopg://", "postgresql://") + "/postgres", autocommit=True
    )
    with admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


@pytest.fixture
def database_args() -> list[str]:
    url = os.environ.get("DATABASE_URL")
    return ["--database-url", scratch_database(url)] if url else []


def test_the_fleet_bench_syncs_every_mailbox_and_prints_every_figure(tmp_path, database_args):
    cmd = [sys.executable, "-m", "bench.fleet", "--quick", "--results-dir", str(tmp_path), *database_args]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    for row in (
        r"Fleet benchmark: 6 mailboxes x 3 messages",
        r"\n\s+1\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+\d+\s+1\.00\s+[\d.]+\s+[\d.]+ s\s+[\d.]+ s",
        r"engine alone \(connectors\.sync\)\s+[\d.]+\s+[\d.]+",
        r"raw limit \(imaplib\)\s+[\d.]+\s+[\d.]+",
        r"usual Python way \(imap-tools\)\s+[\d.]+\s+[\d.]+",
        r"/ engine alone\s+[\d.]+x\s+[\d.]+x",
        r"connection test p95 < 2 s:",
        r"load average at start",
    ):
        assert re.search(row, out), (row, out)
    [line] = [x for x in out.splitlines() if x.startswith("FLEET_JSON ")]
    summary = json.loads(line.split(" ", 1)[1])
    assert summary["database"] == ("postgresql" if database_args else "sqlite")
    [one] = summary["runs"]
    assert one["workers"] == 1 and one["failed"] == 0
    assert one["first_per_s"] > 0 and one["unchanged_per_s"] > 0 and one["interactive_p95_s"] is not None
    assert one["worker_hwm_mb"] > 10 and one["horse_hwm_mb"] > 10  # read from /proc of real processes
    [written] = tmp_path.glob("fleet-6-*.json")
    [details] = json.loads(written.read_text())["runs"]
    # Every mailbox synced in both passes, all its messages stored once; both tests answered.
    assert details["first"]["complete"] and details["unchanged"]["complete"]
    assert details["stored"] == 6 * 3
    # The fleet and the probe; the probe's own first sync may still be running when the second pass starts.
    assert details["first"]["enqueued"] == 7 and details["unchanged"]["enqueued"] in (6, 7)
    assert len(details["unchanged"]["latencies_s"]) == 2 and details["unchanged"]["tests_unanswered"] == 0
    assert details["engine"]["stored"] == 3


def _cgroups_usable() -> str | None:
    try:
        check_writable()
    except CgroupError as exc:
        return str(exc)
    return None


CGROUPS_MISSING = _cgroups_usable()


@pytest.mark.skipif(CGROUPS_MISSING is not None, reason=f"--worker-cpu cannot run here: {CGROUPS_MISSING}")
def test_capped_workers_run_in_cgroups_of_their_own_and_the_cpu_per_part_is_printed(tmp_path, database_args):
    cmd = [sys.executable, "-m", "bench.fleet", "--quick", "--workers", "1,2", "--worker-cpu", "0.5"]
    cmd += ["--dovecot-performance", "--results-dir", str(tmp_path), *database_args]
    bench = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = bench.communicate(timeout=600)
    assert bench.returncode == 0, err[-3000:]
    for row in (
        r"Dovecot \(plain IMAP, loopback, performance mode\)",
        r"each worker capped at 0\.5 core",
        r"\n\s+1\s+0\.50\s+[\d.]+\s+1\.00\s+1\.00\s+[\d.]+\s+1\.00\s+1\.00\s",
        r"\n\s+2\s+1\.00\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s",
        r"CPU-ms per mailbox, per part and pass",
        r"dovecot\s+mailboxes/s\s+[\d,.-]+\s+[\d,.-]+\s+= one-core workers",  # "-": under one clock tick
        r"redis\s+mailboxes/s",
        r"one worker core: mailboxes/s",
    ):
        assert re.search(row, out), (row, out)
    [line] = [x for x in out.splitlines() if x.startswith("FLEET_JSON ")]
    summary = json.loads(line.split(" ", 1)[1])
    assert summary["worker_cpu"] == 0.5 and summary["dovecot_mode"] == "performance"
    for row in summary["runs"]:
        assert row["failed"] == 0
        # Read from /proc of the real processes (10 ms clock ticks: an unchanged pass of six
        # mailboxes may cost a part less than one, so only the first syncs are asserted one by one).
        first = row["cpu"]["first"]
        assert first["ms_per_mailbox"]["workers"] > 0 and 0 < first["worker_cores"] and 0 < first["cap_used"]
    ceilings = summary["cpu_ceilings"]["first"]
    # Dovecot's performance mode reuses its imap processes: six first syncs may cost it under one
    # 10 ms clock tick in all (then "-" above and 0 here), so only that it was measured is asserted.
    assert ceilings["dovecot"]["ms_per_mailbox"] >= 0
    details = json.loads(next(tmp_path.glob("fleet-6-*.json")).read_text())["runs"]
    if database_args:
        # The workers' own backends were found by their application_name; what they cost on six
        # mailboxes may be under one 10 ms clock tick (0 ms), so only its presence is asserted.
        assert all(r["pg_backends"] for r in details), [r["pg_backends"] for r in details]
        assert ceilings["postgres"]["ms_per_mailbox"] >= 0
    # The workers ran under the CFS quota of their cgroups, which are gone after the run.
    assert all(r["first"]["cpu"]["cfs_periods"] > 0 for r in details)
    assert not list(Path("/sys/fs/cgroup/cpu").glob(f"mailroom-fleet-{bench.pid}-*"))
