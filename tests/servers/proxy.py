"""A TCP proxy for tests that cuts the connection after K bytes, as a flaky network would.

``CuttingProxy(upstream_host, upstream_port, cut_after=K)`` listens on a free loopback port;
each accepted connection is relayed to the upstream server, and once ``cut_after`` bytes have
travelled from the server to the client, both sides are closed abruptly (RST where possible).
``cut_after=None`` relays without cutting.  ``cuts`` counts the connections it has cut.
``bytes_per_second=N`` makes it a slow link instead: the server's answers reach the client at
about N bytes a second, so a job lasts long enough for a page to show its progress.

``cut_on=rb"..."`` (a regular expression) cuts instead when the *client* sends a command that
matches it, before the server sees that command: ``cut_on=rb"^\\S+ LOGIN "`` hangs up on an IMAP
LOGIN, as a server dying during sign-in would.  ``reset=False`` ends those connections with a
plain close (the client reads EOF) instead of a reset.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time


class CuttingProxy:
    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        cut_after: int | None = None,
        bytes_per_second: int | None = None,
        *,
        cut_on: bytes | None = None,
        reset: bool = True,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.cut_after = cut_after
        self.bytes_per_second = bytes_per_second
        self.cut_on = re.compile(cut_on, re.MULTILINE | re.IGNORECASE) if cut_on else None
        self.reset = reset
        self.cuts = 0
        self.connections = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.host, self.port = self._listener.getsockname()
        self._stopped = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def start(self) -> CuttingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() alone does not
        except OSError:
            pass
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            for sock in self._sockets:
                _hard_close(sock)
            self._sockets.clear()
        self._thread.join(timeout=5)

    def __enter__(self) -> CuttingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                _hard_close(client)
                continue
            with self._lock:
                self.connections += 1
                self._sockets += [client, server]
            budget = {"left": self.cut_after}
            pair = (client, server)
            up = self._watch if self.cut_on is not None else self._pump
            threading.Thread(target=up, args=(client, server, None, pair), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, budget, pair), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, budget: dict | None, pair) -> None:
        try:
            while True:
                data = src.recv(4096 if self.bytes_per_second else 65536)
                if not data:
                    break
                if budget is not None and budget["left"] is not None:
                    if len(data) >= budget["left"]:
                        dst.sendall(data[: budget["left"]])
                        budget["left"] = 0
                        with self._lock:
                            self.cuts += 1
                        break
                    budget["left"] -= len(data)
                dst.sendall(data)
                if budget is not None and self.bytes_per_second:
                    time.sleep(len(data) / self.bytes_per_second)
        except OSError:
            pass
        for sock in pair:
            _hard_close(sock)

    def _watch(self, src: socket.socket, dst: socket.socket, budget: None, pair) -> None:
        """Client to server, line by line: hang up on the first command ``cut_on`` matches."""
        reader = src.makefile("rb")
        try:
            for line in reader:
                if self.cut_on.search(line):
                    with self._lock:
                        self.cuts += 1
                    break
                dst.sendall(line)
        except OSError:
            pass
        reader.close()  # else the socket's file descriptor outlives close() and no reset is sent
        for sock in pair:
            if self.reset:
                _hard_close(sock)
            else:
                _close(sock)


def _close(sock: socket.socket) -> None:
    """A polite close: the peer reads end of stream."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _hard_close(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0) so the peer sees a reset, not a polite end of stream."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RD)  # wakes a thread blocked in recv() on it
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
