"""Real ``mailroom worker`` processes for the fleet benchmark, their memory, and py-spy on them.

Each worker is the ``mailroom`` console script of this virtualenv, started with the run's
DATABASE_URL, REDIS_URL, MAILROOM_INSTANCE and MAILROOM_SECRET_KEYS, exactly as an operator
would start one; stopped with SIGTERM (RQ's warm shutdown).  With ``cpu`` each runs in a cgroup
of its own capped at that fraction of a core (:mod:`bench.fleet_cgroups`).  :class:`RssSampler` reads
``/proc/<pid>/status`` of each worker and of the children it forks (RQ's work horses).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
from rq import Worker

from bench.fleet_cgroups import CpuCap

MAILROOM = Path(sys.executable).with_name("mailroom")
PY_SPY = Path(sys.executable).with_name("py-spy")


class Workers:
    """``n`` running ``mailroom worker`` processes, each capped at ``cpu`` of a core when given;
    :meth:`stop` ends them (and removes their cgroups)."""

    def __init__(self, n: int, env: dict[str, str], logdir: Path, cpu: float | None = None) -> None:
        self.n, self.env, self.logdir, self.cpu = n, dict(os.environ, **env), logdir, cpu
        self.procs: list[subprocess.Popen] = []
        self.caps: list[CpuCap] = []

    def start(self, timeout: float = 120.0) -> Workers:
        """Start them and wait until RQ lists them all (each imports and builds the app first)."""
        self.logdir.mkdir(parents=True, exist_ok=True)
        if self.cpu:
            timeout = min(900.0, timeout / min(1.0, self.cpu))  # a capped worker starts slower
        try:
            for i in range(self.n):
                self.procs.append(self._spawn(i + 1))
            self._wait_registered(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, number: int) -> subprocess.Popen:
        argv = [str(MAILROOM), "worker"]
        if self.cpu:
            self.caps.append(CpuCap(f"mailroom-fleet-{os.getpid()}-{number}", self.cpu).create())
            argv = self.caps[-1].command(argv)
        with open(self.logdir / f"worker-{number}.log", "wb") as out:
            return subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def _wait_registered(self, timeout: float) -> None:
        conn = redis.Redis.from_url(self.env["REDIS_URL"])
        try:
            deadline = time.monotonic() + timeout
            while len(Worker.all(connection=conn)) < self.n:
                if any(p.poll() is not None for p in self.procs) or time.monotonic() > deadline:
                    raise RuntimeError(f"workers did not start; see {self.logdir}")
                time.sleep(0.2)
        finally:
            conn.close()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []
        for cap in self.caps:
            cap.remove()
        self.caps = []

    def throttling(self) -> dict[str, int]:
        """The cgroups' ``cpu.stat`` summed: CFS periods run and throttled (empty when uncapped)."""
        total: dict[str, int] = {}
        for cap in self.caps:
            for key, value in cap.throttling().items():
                total[key] = total.get(key, 0) + value
        return total


def _status_kb(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from every thread's ``children`` list)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(c) for c in fh.read().split()]
        except OSError:
            pass
    return found


class RssSampler:
    """Peak VmHWM/VmRSS (kB) of the workers' main processes and of their forked children."""

    def __init__(self, pids: list[int], every: float = 0.25) -> None:
        self.pids, self.every = pids, every
        self.peak = {"worker_hwm": 0, "worker_rss": 0, "horse_hwm": 0, "horse_rss": 0, "horses_seen": 0}
        self._seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def sample(self) -> None:
        for pid in self.pids:
            self._keep("worker", _status_kb(pid))
            for child in children(pid):
                self._seen.add(child)
                self._keep("horse", _status_kb(child))
        self.peak["horses_seen"] = len(self._seen)

    def _keep(self, who: str, kb: dict[str, int]) -> None:
        self.peak[f"{who}_hwm"] = max(self.peak[f"{who}_hwm"], kb.get("VmHWM", 0))
        self.peak[f"{who}_rss"] = max(self.peak[f"{who}_rss"], kb.get("VmRSS", 0))


class PySpy:
    """``py-spy record --subprocesses --format raw`` on one worker for the length of a ``with`` block."""

    def __init__(self, pid: int, output: Path, rate: int = 200) -> None:
        self.cmd = [str(PY_SPY), "record", "--pid", str(pid), "--subprocesses", "--format", "raw"]
        self.cmd += ["--rate", str(rate), "--output", str(output)]
        self.output = output
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> PySpy:
        self._proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # attached before the pass starts
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
