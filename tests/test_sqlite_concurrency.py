"""SQLite shared by several Mailroom processes (``mailroom up``: web, worker, cron, idle) never
answers "database is locked" because another process is reading or writing.

Two real processes on one database file, each with nothing but the connection set-up every
Mailroom process gets (:mod:`webapp.sqlite_connections`): one (a page reading a big folder)
keeps a read open for longer than Python's default 5 s busy timeout and then writes; the other
(a worker) commits all the while.  In the rollback-journal mode SQLite used before, the worker's
commit waited for the reader and failed with "database is locked" after 5 s; in WAL mode it
commits at once, and the reader's own writes after it take their turn.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

import webapp.sqlite_connections  # noqa: F401  (the listeners every Mailroom process has)

ROOT = Path(__file__).resolve().parent.parent

#: Seconds the reader keeps its read open: longer than Python's default busy timeout (5 s).
READ_SECONDS = 6.5

_COMMON = """
import json, sys, time
from pathlib import Path
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
import webapp.sqlite_connections  # the listeners every Mailroom process has
url, marks, read_seconds = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
engine = create_engine(url)
errors, commits = [], 0

def write(who):
    global commits
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO notes (who, body) VALUES (:w, :b)"), {"w": who, "b": "x" * 100})
        commits += 1
    except OperationalError as exc:
        errors.append(str(exc.orig))

def wait_for(name, seconds=60):
    deadline = time.monotonic() + seconds
    while not (marks / name).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no {name} mark")
        time.sleep(0.01)
"""

#: The web side: a read open (a cursor being iterated) for ``read_seconds`` after the worker's first
#: write, then ten writes.
READER = (
    _COMMON
    + """
with engine.connect() as conn:
    rows = conn.execute(text("SELECT id, body FROM notes ORDER BY id"))
    next(rows)
    (marks / "reading").touch()
    # Timed from the worker's first write attempt: a process slow to start (a loaded machine)
    # must not eat into the overlap this test is about.
    wait_for("writing")
    started = time.monotonic()
    for _row in rows:
        if time.monotonic() - started > read_seconds:
            break
        time.sleep(0.005)
    rows.close()
(marks / "read-done").touch()
for _ in range(10):
    write("web")
print(json.dumps({"commits": commits, "errors": errors}))
"""
)

#: The worker side: commits every 50 ms while the read is open, and a few more after it.
WRITER = (
    _COMMON
    + """
wait_for("reading")
(marks / "writing").touch()
during = 0
while not (marks / "read-done").exists():
    write("worker")
    during = commits
    time.sleep(0.05)
for _ in range(10):
    write("worker")
print(json.dumps({"commits": commits, "during_read": during, "errors": errors}))
"""
)


def _start(script: str, url: str, marks: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, url, str(marks), str(READ_SECONDS)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_a_long_read_in_one_process_does_not_lock_out_another_processes_writes(tmp_path):
    url = f"sqlite:///{tmp_path / 'mailroom.sqlite3'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, who TEXT, body TEXT)"))
        conn.execute(text("INSERT INTO notes (who, body) VALUES ('seed', :b)"), [{"b": "y" * 100}] * 5000)
    engine.dispose()
    marks = tmp_path / "marks"
    marks.mkdir()
    reader = _start(READER, url, marks)
    writer = _start(WRITER, url, marks)
    web, worker = _result(reader), _result(writer)
    assert web["errors"] == [] and worker["errors"] == [], (web, worker)
    # The worker committed while the page was still reading, and everything written is there.
    assert worker["during_read"] >= 10 and web["commits"] == 10
    with create_engine(url).connect() as conn:
        counts = dict(conn.execute(text("SELECT who, COUNT(*) FROM notes GROUP BY who")).all())
    assert counts == {"seed": 5000, "web": 10, "worker": worker["commits"]}


def test_every_connection_uses_wal_and_waits_its_turn(tmp_path):
    """The journal mode is the file's (WAL stays after the process ends); the wait is per connection."""
    url = f"sqlite:///{tmp_path / 'mailroom.sqlite3'}"
    with create_engine(url).connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == webapp.sqlite_connections.BUSY_TIMEOUT_MS
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    # A longer wait asked for in the URL is kept; an in-memory database has no file to switch.
    with create_engine(f"{url}?timeout=60").connect() as conn:
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 60_000
    with create_engine("sqlite://").connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "memory"
