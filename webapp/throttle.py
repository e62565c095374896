"""Sign-in throttling in Redis: failure counters per account and per client address, and lockouts.

Redis, not the database, so the limits hold across every web process and machine and
cost one round trip.  Only *failures* count: a person who signs in correctly is never
slowed down.  Each counter is a fixed window that starts at its first failure
(``SET NX EX`` then ``INCR``, which
keeps the expiry; Redis 6.2, the embedded one, has no ``EXPIRE NX``).  An account that reaches its limit gets a lock key with
its own expiry, so the lock lasts its full time even if the window ends first.

Flask-Limiter was considered: it limits *requests* per key, starts its storage from a
URI at start-up (the embedded Redis is started lazily) and has no lockout list or
unlock; the whole need here is three Redis keys, so this module is shorter than the
glue would be.

If Redis cannot be reached, every check answers "not throttled" and logs a warning:
sign-in keeps working (fail open) rather than answering 500.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from flask import current_app

from .errors import DomainError
from .queue import redis_url

log = logging.getLogger(__name__)

PREFIX = "mailroom:signin:"
# Redis unreachable, or (embedded default) its server could not be started (a DomainError, 503).
UNAVAILABLE = (redis.RedisError, OSError, DomainError)
# Keys hold the name as typed; a bound keeps a pasted novel from becoming a huge key.
MAX_NAME = 200


class ThrottleUnavailable(DomainError):
    """Redis is down: locks cannot be listed or lifted now (checks fail open instead)."""

    status = 503

    def __init__(self) -> None:
        super().__init__("Sign-in locks are kept in Redis, which cannot be reached now; try again later.")


@dataclass(frozen=True)
class Lock:
    """A locked account name and the seconds its lock has left."""

    username: str
    seconds_left: int


def get_redis() -> redis.Redis:
    """A client of the app's Redis with short timeouts of its own: an unreachable Redis (even a
    silent one, dropping packets) must cost sign-in a second, not the queue's patience."""
    conn = current_app.extensions.get("mailroom.throttle_redis")
    if conn is None:
        conn = redis.Redis.from_url(redis_url(), socket_connect_timeout=1, socket_timeout=1)
        current_app.extensions["mailroom.throttle_redis"] = conn
    return conn


def _key(kind: str, value: str) -> str:
    return f"{PREFIX}{kind}:{value[:MAX_NAME]}"


def _seconds(name: str) -> int:
    return int(current_app.config[name]) * 60


def _warn(exc: Exception) -> None:
    log.warning("sign-in throttling is off for this request: Redis is unavailable (%s)", exc)


def address_retry_after(address: str) -> int | None:
    """Seconds until ``address`` may try again, or None when it is not over its limit."""
    try:
        conn = get_redis()
        key = _key("addr", address)
        count = conn.get(key)
        if count is None or int(count) < int(current_app.config["SIGN_IN_ADDRESS_FAILURES"]):
            return None
        return max(1, int(conn.ttl(key)))
    except UNAVAILABLE as exc:
        _warn(exc)
        return None


def account_locked_for(username: str) -> int | None:
    """Seconds left on ``username``'s lock, or None when it is not locked."""
    try:
        ttl = int(get_redis().ttl(_key("lock", username)))
    except UNAVAILABLE as exc:
        _warn(exc)
        return None
    return ttl if ttl > 0 else None


def _count(pipe, key: str, window: int) -> None:
    pipe.set(key, 0, ex=window, nx=True)
    pipe.incr(key)


def record_failure(username: str, address: str, count_account: bool = True) -> int | None:
    """Count one failed sign-in; return the lock's seconds when this failure locked the account.

    ``count_account`` is False for attempts on an account that is already locked: they
    count against the address only, so hammering a lock does not lengthen it.
    """
    config = current_app.config
    try:
        pipe = get_redis().pipeline()
        _count(pipe, _key("addr", address), _seconds("SIGN_IN_ADDRESS_WINDOW_MINUTES"))
        if count_account:
            _count(pipe, _key("acct", username), _seconds("SIGN_IN_ACCOUNT_WINDOW_MINUTES"))
        results = pipe.execute()
        if not count_account or int(results[3]) < int(config["SIGN_IN_ACCOUNT_FAILURES"]):
            return None
        lock_seconds = _seconds("SIGN_IN_LOCK_MINUTES")
        pipe = get_redis().pipeline()
        pipe.set(_key("lock", username), "1", ex=lock_seconds, nx=True)
        pipe.delete(_key("acct", username))
        locked, _ = pipe.execute()
        return lock_seconds if locked else None
    except UNAVAILABLE as exc:
        _warn(exc)
        return None


def record_success(username: str) -> None:
    """A correct sign-in forgets the account's earlier failures (not the address's)."""
    try:
        get_redis().delete(_key("acct", username))
    except UNAVAILABLE as exc:
        _warn(exc)


def unlock(username: str) -> bool:
    """Lift ``username``'s lock and forget its failures; True if it was locked."""
    try:
        removed = get_redis().delete(_key("lock", username), _key("acct", username))
    except UNAVAILABLE as exc:
        raise ThrottleUnavailable() from exc
    return removed > 0


def locked_accounts() -> list[Lock]:
    """Every account name locked now, with the time each lock has left, by name."""
    prefix = _key("lock", "")
    locks = []
    try:
        conn = get_redis()
        for key in conn.scan_iter(match=prefix + "*", count=500):
            ttl = int(conn.ttl(key))
            if ttl > 0:
                locks.append(Lock(key.decode("utf-8", "replace")[len(prefix) :], ttl))
    except UNAVAILABLE as exc:
        raise ThrottleUnavailable() from exc
    return sorted(locks, key=lambda lock: lock.username)
