"""Loopback port helpers shared by the test servers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports that were free a moment ago (all bound at once, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_for_ports(
    host: str, ports: list[int], deadline: float, alive: Callable[[], bool] = lambda: True
) -> list[int]:
    """Poll until every port accepts a connection, ``deadline`` (monotonic) passes or ``alive()`` is false;
    return the ports still closed."""
    pending = list(ports)
    while pending and time.monotonic() < deadline and alive():
        for port in list(pending):
            try:
                socket.create_connection((host, port), timeout=0.5).close()
                pending.remove(port)
            except OSError:
                pass
        if pending:
            time.sleep(0.02)
    return pending
