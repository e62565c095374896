"""CPU caps for the fleet benchmark's workers: one cgroup (v1 ``cpu`` controller) per worker.

On a 2-core machine that also runs Dovecot, PostgreSQL and Redis, one uncapped worker already
fills the cores, so a second worker only divides the same CPU and says nothing about scaling.
``python -m bench.fleet --worker-cpu 0.2`` gives each ``mailroom worker`` a core of its own size
instead: its own cgroup with ``cpu.cfs_quota_us = 0.2 * cpu.cfs_period_us``, so 1, 2 and 4
workers get 0.2, 0.4 and 0.8 of a core between them and the servers keep the rest.  If the
workers share no bottleneck (Redis locks, database rows, connection slots), throughput then
grows with the worker count.

A worker is started through ``/bin/sh -c 'echo $$ > cgroup.procs && exec mailroom worker'``:
the shell joins the cgroup and execs, so the worker (same pid) and everything it forks or starts
(RQ's scheduler process, its threads) are inside before it does any work.  ``preexec_fn`` would
do the same but is unsafe in a process with threads (the bench runs an SMTP sink thread).
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

#: Where cgroup v1 mounts the ``cpu`` controller.
CPU_ROOT = Path("/sys/fs/cgroup/cpu")
#: CFS period in microseconds (the kernel's default); the quota is a fraction of it.
PERIOD_US = 100_000
#: The shell that joins a cgroup and becomes the command: ``$0`` is the ``cgroup.procs`` file.
JOIN_AND_EXEC = 'echo $$ > "$0" && exec "$@"'


class CgroupError(RuntimeError):
    """The CPU controller cannot be used here (not cgroup v1, not root, read-only)."""


def check_writable(root: Path = CPU_ROOT) -> None:
    """Raise :class:`CgroupError` naming what is missing, before any worker is started."""
    quota = root / "cpu.cfs_quota_us"
    if not quota.exists():
        raise CgroupError(
            f"--worker-cpu needs the cgroup v1 'cpu' controller at {root} (no {quota.name} there; "
            "cgroup v2-only machines are not supported by this bench)"
        )
    if not os.access(root, os.W_OK):
        raise CgroupError(f"--worker-cpu needs to create cgroups under {root}: not writable (run as root)")


class CpuCap:
    """A cgroup whose processes together get ``fraction`` of one core; :meth:`remove` deletes it."""

    def __init__(self, name: str, fraction: float, root: Path = CPU_ROOT) -> None:
        if not 0.01 <= fraction <= os.cpu_count():
            raise ValueError(f"a CPU cap must be between 0.01 and {os.cpu_count()} cores, not {fraction}")
        self.path = root / name
        self.fraction = fraction
        self.root = root

    def create(self) -> CpuCap:
        try:
            self.path.mkdir()
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(int(self.fraction * PERIOD_US)))
        except OSError as exc:
            self.remove()
            raise CgroupError(f"--worker-cpu: could not set up the cgroup {self.path}: {exc}") from exc
        return self

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this cgroup (joined before ``argv`` starts: same pid, exec'd)."""
        return ["/bin/sh", "-c", JOIN_AND_EXEC, str(self.path / "cgroup.procs"), *argv]

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def throttling(self) -> dict[str, int]:
        """``cpu.stat``: periods run, periods throttled (the cap was reached), throttled ns."""
        try:
            lines = (self.path / "cpu.stat").read_text().split("\n")
        except OSError:
            return {}
        return {k: int(v) for k, _, v in (line.partition(" ") for line in lines if line)}

    def remove(self, timeout: float = 10.0) -> None:
        """Delete the cgroup; a process still in it (one that outlived its worker) is moved out."""
        deadline = time.monotonic() + timeout
        while self.path.exists():
            for pid in self.pids():
                try:
                    (self.root / "cgroup.procs").write_text(str(pid))
                except OSError:
                    pass  # gone meanwhile
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise CgroupError(f"could not remove the cgroup {self.path}: {exc}") from exc
                time.sleep(0.1)
