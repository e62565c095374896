"""Run Mailroom's RQ jobs in tests the way production runs them.

``run_burst(app)`` works the app's queue until it is empty, in this process: an
``rq.SimpleWorker`` by default (jobs run in the test's own process, so monkeypatches
and the test's database session see them), or with ``fork=True`` a real ``rq.Worker``
that forks a work horse per job, like ``mailroom worker``. It is the one way tests run
queued jobs; do not build workers by hand.
``WorkerProcess`` runs the ``mailroom worker`` command itself in a child
process, built from the same configuration as the test app, so its log output
can be captured (the no-secret proof) or so it can serve a live server
(browser tests) until stopped.

Run as ``python -m tests.support.job_worker CONFIG.json [--burst]``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path

from flask import Flask, current_app, has_app_context
from rq import Queue, SimpleWorker, Worker

ROOT = Path(__file__).resolve().parents[2]
_FORK_HOOKED: set[int] = set()


def run_burst(app: Flask | None = None, queue: Queue | None = None, *, fork: bool = False) -> None:
    """Work ``queue`` (the app's lanes by default, interactive first) until it is empty.

    ``app`` defaults to the current app; when its context is already pushed (the ``app``
    fixture), the jobs run inside it so the test's session stays usable afterwards.
    ``fork=True`` runs a forking ``rq.Worker`` in a fresh app context whose session is closed
    first, so no open transaction blocks the horse's writes (SQLite); the horse gets fresh
    connections.
    """
    from webapp.queue import get_queues

    app = app or current_app._get_current_object()
    reuse = not fork and has_app_context() and current_app._get_current_object() is app
    # A forking run gets its own app context, hence its own session: closing it leaves the test's alone.
    with nullcontext() if reuse else app.app_context(), _own_signal_handlers():
        queues = [queue] if queue is not None else get_queues()  # both lanes, interactive first
        if fork:
            _work_forking(queues)
        else:
            SimpleWorker(queues, connection=queues[0].connection).work(burst=True)


@contextmanager
def _own_signal_handlers():
    """RQ's worker installs SIGINT/SIGTERM handlers (a warm shutdown) and leaves them: put pytest's
    back, or Ctrl-C (and a CI timeout's SIGTERM) would only fail the running test, not stop the run."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _work_forking(queues: list[Queue]) -> None:
    from webapp.extensions import db

    engine = db.engine
    if id(engine) not in _FORK_HOOKED:
        # As ``mailroom worker`` does: the forked horse must not reuse the parent's connections.
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
        _FORK_HOOKED.add(id(engine))
    db.session.remove()  # no open transaction may block the horse's writes (SQLite)
    Worker(queues, connection=queues[0].connection).work(burst=True)
    db.session.remove()


def _jsonable_config(app: Flask) -> dict:
    keep = {}
    for key, value in app.config.items():
        try:
            json.dumps(value)
        except TypeError:
            continue
        keep[key] = value
    keep["INSTANCE_PATH"] = app.instance_path
    return keep


class WorkerProcess:
    """``mailroom worker`` in a child process with the test app's configuration; output to a file."""

    def __init__(self, app: Flask, tmp_path: Path, *, burst: bool = True, args: tuple[str, ...] = ()) -> None:
        self.args = args  # more ``mailroom worker`` options, e.g. ("--fork",)
        self.config_path = tmp_path / "worker-config.json"
        self.config_path.write_text(json.dumps(_jsonable_config(app)))
        self.log_path = tmp_path / "worker.log"
        self.burst = burst
        self.proc: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        args = [sys.executable, "-m", "tests.support.job_worker", str(self.config_path), *self.args]
        if self.burst:
            args.append("--burst")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def wait_ready(self, timeout: float = 60) -> WorkerProcess:
        """Wait until the worker listens on its queue (it prints "Listening on")."""
        import time

        deadline = time.monotonic() + timeout
        while "Listening on" not in self.output():
            assert self.proc is not None and self.proc.poll() is None, self.output()
            if time.monotonic() > deadline:
                self.stop()  # a worker left running would take the next tests' jobs off their queue
                raise AssertionError(f"the worker did not start in {timeout} s:\n{self.output()}")
            time.sleep(0.05)
        return self

    def wait(self, timeout: float = 120) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def run(self, timeout: float = 120) -> str:
        """Start a burst worker, wait for it to empty the queue and return everything it printed."""
        self.start()
        code = self.wait(timeout)
        assert code == 0, self.output()
        return self.output()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # a warm shutdown, as RQ expects
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def main(argv: list[str]) -> None:
    from webapp import create_app
    from webapp.cli import cli

    config = json.loads(Path(argv[0]).read_text())
    app = create_app(config)
    with app.app_context():
        cli.main(["worker", *argv[1:]], prog_name="mailroom")


if __name__ == "__main__":
    main(sys.argv[1:])
