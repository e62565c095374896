"""CPU time per part of the fleet benchmark: workers, Dovecot, PostgreSQL backends, Redis, the bench.

The "across machines" sizing is a sum of CPU costs per mailbox: if a mailbox costs W ms of
worker CPU and P ms of PostgreSQL CPU, one PostgreSQL core keeps up with W / P fully busy
worker cores, wherever they run.  These costs are measured, not guessed, from
``/proc/<pid>/stat`` before and after each pass:

* a process tree (the workers with RQ's scheduler child; Dovecot's master with its login, auth
  and ``imap`` processes; the Redis server with its save children) is the sum over its live
  processes of ``utime + stime + cutime + cstime``: a child that ended and was waited for is in
  its parent's ``cutime``/``cstime``, so Dovecot's one-process-per-connection is fully counted;
* PostgreSQL backends are children of the postmaster, which serves every database on the machine,
  so the workers' own backends are found by their ``application_name`` (the workers' database
  URL carries one) in ``pg_stat_activity``, sampled every 0.2 s by a thread; a backend that ends
  between two samples loses at most its last 0.2 s;
* the bench process itself (cron's enqueue, the progress queries) is its own ``utime + stime``.

The Redis server and PostgreSQL may be shared with other work on the machine: their figures are
honest only on a quiet machine (the bench prints the load average with each row).  A server on
another machine is not measured (its part reads 0): only local pids of the right program count.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import psycopg
import redis

from bench.fleet_workers import children

#: Clock ticks per second of the ``/proc/<pid>/stat`` times.
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: The workers' ``application_name``, so their PostgreSQL backends can be told from others.
WORKER_APP_NAME = "mailroom-fleet-worker"
PARTS = ("workers", "dovecot", "postgres", "redis", "bench")


def stat_ticks(pid: int) -> tuple[int, int, int] | None:
    """``(utime + stime, cutime + cstime, starttime)`` of ``pid`` in clock ticks; None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 (state) is [0]
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return utime + stime, cutime + cstime, int(fields[19])


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children(current)
    return found


def tree_ticks(pid: int) -> int:
    """CPU ticks of a process tree, its waited-for dead children included."""
    total = 0
    for member in descendants(pid):
        ticks = stat_ticks(member)
        if ticks is not None:
            total += ticks[0] + ticks[1]
    return total


def own_ticks(pid: int) -> int:
    ticks = stat_ticks(pid)
    return ticks[0] if ticks else 0


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def dovecot_master() -> int | None:
    """The bench's own Dovecot: the child of this process named ``dovecot``."""
    return next((c for c in children(os.getpid()) if comm(c) == "dovecot"), None)


def redis_server_pid(url: str) -> int | None:
    """The Redis server's pid as it reports it (``INFO server``), for a TCP or a unix-socket URL;
    None when that pid is not a Redis server on this machine (a remote one is not measured)."""
    conn = redis.Redis.from_url(url)
    try:
        pid = int(conn.info("server")["process_id"])
    except (redis.RedisError, KeyError, ValueError):
        return None
    finally:
        conn.close()
    return pid if comm(pid).startswith("redis") else None


class PostgresBackends:
    """CPU ticks of the PostgreSQL backends whose ``application_name`` is the workers', sampled
    by a thread; a backend's last seen value is kept after it ends (keyed by pid and start time)."""

    def __init__(self, database_url: str, app_name: str = WORKER_APP_NAME, every: float = 0.2) -> None:
        self.url = database_url.replace("postgresql+psycopg://", "postgresql://")
        self.app_name, self.every = app_name, every
        self.latest: dict[tuple[int, int], int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conn: psycopg.Connection | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="fleet-pg-cpu")

    def __enter__(self) -> PostgresBackends:
        self._conn = psycopg.connect(self.url, autocommit=True, application_name="mailroom-fleet-meter")
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._conn is not None:
            self._conn.close()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.sample()
            except psycopg.Error:
                return  # the database went away: the figures stop growing, the run reports it

    def sample(self) -> None:
        assert self._conn is not None
        with self._lock:
            rows = self._conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (self.app_name,)
            ).fetchall()
            for (pid,) in rows:
                ticks = stat_ticks(pid) if comm(pid) == "postgres" else None  # a remote server: not here
                if ticks is not None:
                    self.latest[(pid, ticks[2])] = ticks[0]

    def ticks(self) -> int:
        self.sample()
        with self._lock:
            return sum(self.latest.values())

    @property
    def seen(self) -> int:
        return len(self.latest)


class CpuMeter:
    """Snapshots of CPU ticks per part; :meth:`since` turns two into CPU milliseconds per part."""

    def __init__(self, worker_pids: list[int], redis_url: str, backends: PostgresBackends | None) -> None:
        self.worker_pids = worker_pids
        self.dovecot = dovecot_master()
        self.redis = redis_server_pid(redis_url)
        self.backends = backends

    def snapshot(self) -> dict[str, int]:
        return {
            "workers": sum(tree_ticks(pid) for pid in self.worker_pids),
            "dovecot": tree_ticks(self.dovecot) if self.dovecot else 0,
            "postgres": self.backends.ticks() if self.backends else 0,
            "redis": tree_ticks(self.redis) if self.redis else 0,
            "bench": own_ticks(os.getpid()),
        }

    @staticmethod
    def since(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
        """CPU milliseconds per part between two snapshots."""
        return {part: (after[part] - before[part]) * 1000 / CLK_TCK for part in before}
