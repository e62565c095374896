"""``mailroom idle`` in a child process with the test app's configuration (like ``WorkerProcess``).

Run as ``python -m tests.support.idle_process CONFIG.json [mailroom idle options]``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from flask import Flask

from tests.support.job_worker import ROOT, _jsonable_config


class IdleProcess:
    """One ``mailroom idle``; ``kill()`` is a SIGKILL (a crashed process keeps its leases until they expire)."""

    def __init__(self, app: Flask, tmp_path: Path, *args: str, name: str = "idle") -> None:
        self.config_path = tmp_path / f"{name}-config.json"
        self.config_path.write_text(json.dumps(_jsonable_config(app)))
        self.log_path = tmp_path / f"{name}.log"
        self.args = list(args)
        self.proc: subprocess.Popen | None = None

    def start(self) -> IdleProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.idle_process", str(self.config_path), *self.args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            assert self.proc is not None and self.proc.poll() is None, f"mailroom idle exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.output()[-3000:]}"
            time.sleep(0.05)


def main(argv: list[str]) -> None:
    from webapp import create_app
    from webapp.cli import cli

    config = json.loads(Path(argv[0]).read_text())
    app = create_app(config)
    with app.app_context():
        cli.main(["idle", *argv[1:]], prog_name="mailroom")


if __name__ == "__main__":
    main(sys.argv[1:])
