"""At most K connections at once to a mail server, counted in Redis across workers and machines.

A counting semaphore per server (or per mailbox on that server, when the provider counts per
account): a sorted set whose members are the holders' random tokens and whose scores are the
moments their hold expires.  Taking a slot is one Lua script (drop expired holders, count, add),
so two workers on two machines can never both take the last slot; giving it back is ``ZREM``.
A holder extends its expiry from a thread while its connection is open, so a worker killed
mid-sync (SIGKILL, a lost machine) frees its slot within :data:`SLOT_TTL` seconds.  Times are the
Redis server's (``TIME`` inside the script), so machines with skewed clocks agree.

The limit is the service's ``max_connections`` (the administrator's word, per host), else the
provider plugin's ``mailroom_connection_limit`` (e.g. Gmail: 15 per account), else none.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import current_app

from connectors import plugins
from connectors.errors import ErrorClass, MailError

from ..models import Account
from ..queue import get_redis

KEY = "mailroom:connections:{}"
#: Seconds a slot outlives its holder's last sign of life (config ``CONNECTION_SLOT_TTL``).
SLOT_TTL = 60
#: Seconds a job other than a sync (a folder list, a body fetch, a Sent copy: a person waits for
#: them) waits for a slot before failing fast as ``throttled``, a transient class with a clear
#: sentence (config ``CONNECTION_SLOT_WAIT``); a sync waits 0 and is re-enqueued instead.
SLOT_WAIT = 1

#: KEYS[1] the set; ARGV: limit, ttl, token.  1 = taken, 0 = all slots held.
_ACQUIRE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], t + tonumber(ARGV[2]), ARGV[3])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
  return 1
end
return 0
"""
#: Extend a held slot (XX: never re-adds one that expired and was given to someone else).
_EXTEND = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local n = redis.call('ZADD', KEYS[1], 'XX', 'CH', t + tonumber(ARGV[1]), ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1])) + 1)
return n
"""


class NoFreeConnection(MailError):
    """Every connection the server allows us is in use; classified ``throttled`` (transient)."""


@dataclass(frozen=True)
class Limit:
    """The Redis key counted and how many holders it allows."""

    key: str
    max_connections: int
    host: str
    #: The provider counts per mailbox (Gmail): the cap does not bound a batch's concurrency.
    per_account: bool = False


def limit_for(account: Account, host: str) -> Limit | None:
    """The service's ``max_connections`` (per host) wins; else the plugin's default; else None."""
    host = host.lower()
    service = None if account.manual else account.service
    if service is not None and service.max_connections:
        return Limit(KEY.format(host), service.max_connections, host)
    plugin = plugins.connection_limit(host)
    if plugin is None:
        return None
    key = KEY.format(f"{host}:account:{account.id}" if plugin.per_account else host)
    return Limit(key, plugin.max_connections, host, per_account=bool(plugin.per_account))


def slot_ttl() -> float:
    return float(current_app.config.get("CONNECTION_SLOT_TTL", SLOT_TTL))


def try_acquire(limit: Limit, token: str, ttl: float) -> bool:
    """One atomic attempt: True if the slot was taken for ``token``."""
    return bool(get_redis().eval(_ACQUIRE, 1, limit.key, limit.max_connections, ttl, token))


def release(limit: Limit, token: str) -> None:
    get_redis().zrem(limit.key, token)


def held(key: str) -> int:
    """How many slots of ``key`` are held now (expired holders not counted)."""
    redis = get_redis()
    seconds, micros = redis.time()
    return int(redis.zcount(key, f"({seconds + micros / 1e6}", "+inf"))


class _Keeper:
    """Extends the slot every ttl/3 seconds while the connection is open."""

    def __init__(self, limit: Limit, token: str, ttl: float) -> None:
        self.redis = get_redis()
        self.args = (limit, token, ttl)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        limit, token, ttl = self.args
        while not self._stop.wait(max(0.5, ttl / 3)):
            try:
                self.redis.eval(_EXTEND, 1, limit.key, ttl, token)
            except Exception:
                return  # Redis gone: the slot expires on its own

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@contextmanager
def connection_slot(account: Account, host: str, protocol: str, wait: float | None = None) -> Iterator[None]:
    """Hold one of the server's connection slots for the block; without a limit, a no-op.

    Waits up to ``wait`` seconds (config ``CONNECTION_SLOT_WAIT`` by default) for a slot, then
    raises :class:`NoFreeConnection`.
    """
    with hold(limit_for(account, host), protocol, wait):
        yield


@contextmanager
def hold(limit: Limit | None, protocol: str, wait: float | None = None) -> Iterator[None]:
    """:func:`connection_slot` for a :class:`Limit` found beforehand (the batch job finds its
    mailboxes' limits in its main thread and holds the slots from its connection threads)."""
    if limit is None:
        yield
        return
    ttl = slot_ttl()
    token = os.urandom(12).hex()
    if wait is None:
        wait = float(current_app.config.get("CONNECTION_SLOT_WAIT", SLOT_WAIT))
    _acquire(limit, token, ttl, protocol, wait)
    keeper = _Keeper(limit, token, ttl)
    try:
        yield
    finally:
        keeper.stop()
        release(limit, token)


def _acquire(limit: Limit, token: str, ttl: float, protocol: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while not try_acquire(limit, token, ttl):
        if time.monotonic() >= deadline:
            raise NoFreeConnection(
                ErrorClass.THROTTLED,
                protocol,
                "connect",
                detail=(
                    f"All {limit.max_connections} connection(s) Mailroom may hold at once to {limit.host} "
                    "are in use; waiting for one to free."
                ),
            )
        time.sleep(min(0.2, max(0.02, wait / 10)))
