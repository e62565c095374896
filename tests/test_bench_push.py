"""Smoke test of ``python -m bench.push_latency`` on three mailboxes: real ``mailroom idle`` and
``mailroom worker`` processes, every delivery seen through the API, every figure printed.

No timing is asserted (speed is the bench's to measure): the test keeps the benchmark from rotting
and checks that what it prints is what it measured.  With ``DATABASE_URL`` set (the PostgreSQL
run) the bench gets a scratch database beside it (its tables are dropped); Redis is the bench's own
embedded one, stopped when the bench ends.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.test_bench_fleet import ROOT, database_args  # noqa: F401 (a fixture)


def test_the_push_bench_times_each_delivery_to_the_api(database_args):  # noqa: F811
    cmd = [sys.executable, "-m", "bench.push_latency", "--mailboxes", "3", "--deliveries", "2",
           "--gap", "0.1", "--timeout", "120", *database_args]  # fmt: skip
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-3000:])
    out = run.stdout
    for row in (
        r"3 push mailboxes held by one mailroom idle",
        r"console API \(idle -> worker -> DB\)\s+[\d.]+s\s+[\d.]+s\s+[\d.]+s",
        r"raw: EXISTS on an idling socket\s+[\d.]+s",
        r"usual: imapclient IDLE \+ fetch\s+[\d.]+s",
        r"API p95 / raw p95: [\d.]+x",
    ):
        assert re.search(row, out), (row, out)
    [line] = [x for x in out.splitlines() if x.startswith("PUSH_LATENCY_JSON ")]
    result = json.loads(line.split(" ", 1)[1])
    assert result["database"] == ("postgresql" if database_args else "sqlite")
    assert result["mailboxes"] == 3 and result["deliveries"] == 2 and len(result["api_each_s"]) == 2
    # Each delivery was timed, by the API and by the yardstick on the server's own notification.
    assert all(t > 0 for t in result["api_each_s"]) and result["raw"]["p50_s"] > 0
    assert result["idle_rss_mb"] > 10  # read from /proc of the real idle process
