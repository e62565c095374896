"""Each pytest-xdist worker gets a database and a Redis database of its own.

``make test`` runs the suite on two xdist workers (``-n 2``).  On the embedded default nothing
is shared between them: each worker has its own temporary folder, hence its own SQLite file and
embedded Redis.  With ``DATABASE_URL`` / ``REDIS_URL`` set (CI's PostgreSQL run) every worker
would otherwise empty the same tables and flush the same Redis database under the other's
feet, so :func:`isolate_worker` rewrites both variables in the worker's environment before any
fixture reads them (and before any child process inherits them):

- worker ``gw0`` keeps the given ones;
- worker ``gwN`` uses database ``<name>_gwN`` on the same PostgreSQL server (created when
  missing) and Redis database number ``<given> - N`` on the same Redis server.

So a run with ``REDIS_URL=redis://127.0.0.1:6379/15`` on two workers uses Redis databases 15
and 14.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import psycopg


def worker_index() -> int:
    """0 without xdist and on worker ``gw0``; N on worker ``gwN``."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) if name.startswith("gw") else 0


def worker_database_url(url: str, index: int) -> str:
    """``…/name`` -> ``…/name_gwN`` (created on the same server when missing); unchanged for gw0."""
    if index == 0 or url.startswith("sqlite"):
        return url
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/')}_gw{index}"
    server = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(server, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path="/" + name))


def worker_redis_url(url: str, index: int) -> str:
    """``redis://host:port/D`` -> ``redis://host:port/(D - N)``; unchanged for gw0."""
    if index == 0:
        return url
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0) - index
    if number < 0:
        raise ValueError(f"REDIS_URL {url}: no Redis database number left for xdist worker gw{index}")
    return urlunsplit(parts._replace(path=f"/{number}"))


def isolate_worker() -> None:
    """Point ``DATABASE_URL`` and ``REDIS_URL`` (when set) at this worker's own databases."""
    index = worker_index()
    if os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = worker_database_url(os.environ["DATABASE_URL"], index)
    if os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = worker_redis_url(os.environ["REDIS_URL"], index)
