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
