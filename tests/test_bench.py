"""Smoke test of ``python -m bench.sync``: a tiny folder, every row printed (no timing assertions)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cache_dir():
    """Not pytest's tmp_path: Dovecot's mail uid must be able to reach the Maildir (tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="mailroom-bench-test-"))
    path.chmod(0o755)
    yield path / "maildir-cache"
    shutil.rmtree(path, ignore_errors=True)


def test_the_sync_bench_prints_every_row_and_writes_json(tmp_path, cache_dir):
    cache, results = cache_dir, tmp_path / "results"
    cmd = [
        sys.executable,
        "-m",
        "bench.sync",
        "--messages",
        "200",
        "--cache-dir",
        str(cache),
        "--results-dir",
        str(results),
    ]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "200 messages" in out
    for row in (
        r"1\s+Mailroom first sync \(SQLite\)\s+[\d.]+ s\s+[\d,]+",
        r"2\s+Raw limit: imapclient UID FETCH, no database\s+[\d.]+ s\s+[\d,]+",
        r"3\s+imap-tools fetch\(headers_only=True\)\s+[\d.]+ s\s+[\d,]+",
        r"4\s+Mailroom re-sync, nothing changed \(SQLite\)\s+[\d.]+ ms\s+FETCH: 0",
        r"first sync / raw limit\s+= [\d.]+x",
        r"first sync / imap-tools\s+= [\d.]+x",
        r"re-sync unchanged\s+= [\d.]+ ms, 0 FETCH",
    ):
        assert re.search(row, out), (row, out)
    [written] = results.glob("sync-200-*.json")
    data = json.loads(written.read_text())
    first = data["results"]["mailroom"]["sqlite"]["first"][0]
    assert first["messages"] == 200 and first["stats"]["inserted"] == 200
    assert (
        data["results"]["imap_tools"][0]["messages"] == 200 and data["results"]["raw"][0]["messages"] == 200
    )

    # A second run with the same N reuses the generated Maildir.
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "reused" in again.stderr, again.stderr[-3000:]
