"""connectors.idle against the real Dovecot: IDLE reports new mail, is re-issued, survives a restart."""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import threading
import time

import pytest

from connectors.idle import Backoff, IdleWatcher, small_tls_buffers
from connectors.settings import Credentials, Protocol, Security, ServerSettings
from tests.servers.dovecot import Dovecot


def run_loop(coro):
    """``asyncio.run`` in a thread of its own: the browser tests' Playwright (sync API) keeps an
    event loop running in the main thread for the whole session, where ``asyncio.run`` refuses."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _settings(server: Dovecot, tls: bool, certs) -> ServerSettings:
    return ServerSettings(
        protocol=Protocol.IMAP,
        host=server.host if not tls else "localhost",
        port=server.imaps_port if tls else server.imap_port,
        security=Security.TLS if tls else Security.NONE,
        timeout=5,
        ca_file=str(certs.ca_cert) if tls else None,
    )


async def _until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


def _watch(settings: ServerSettings, user: str, password: str, **kwargs):
    events: list[str] = []

    async def login() -> Credentials:
        return Credentials(username=user, password=password)

    watcher = IdleWatcher(settings, login, events.append, **kwargs)
    return watcher, events


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_new_mail_is_reported_while_idling(clean_dovecot, certs, tls, monkeypatch):
    server = clean_dovecot
    if tls:  # as mailroom idle runs it: 16 KiB TLS read buffers (restored after the test)
        monkeypatch.setattr(asyncio.sslproto.SSLProtocol, "max_size", asyncio.sslproto.SSLProtocol.max_size)
        small_tls_buffers()
    watcher, events = _watch(_settings(server, tls, certs), "alice", server.users["alice"])

    async def scenario():
        task = asyncio.create_task(watcher.run())
        try:
            assert await _until(lambda: watcher.stats.idling, 10), watcher.stats
            started = time.monotonic()
            server.add_messages("alice", 1)
            assert await _until(lambda: "exists" in events, 5), (events, watcher.stats)
            return time.monotonic() - started
        finally:
            task.cancel()

    assert run_loop(scenario()) < 5


def test_idle_is_reissued_and_still_reports(clean_dovecot, certs):
    server = clean_dovecot
    watcher, events = _watch(_settings(server, False, certs), "bob", server.users["bob"], reissue_after=0.3)

    async def scenario():
        task = asyncio.create_task(watcher.run())
        try:
            assert await _until(lambda: watcher.stats.idles >= 4, 10), watcher.stats
            server.add_messages("bob", 1)
            assert await _until(lambda: "exists" in events, 5), (events, watcher.stats)
        finally:
            task.cancel()

    run_loop(scenario())
    assert watcher.stats.connects == 1  # re-issued on the same connection (DONE, then IDLE again)
    assert watcher.stats.failures == 0


def test_reconnects_after_the_server_restarts(dovecot_factory, certs):
    server = dovecot_factory(ssl=False)
    watcher, events = _watch(
        _settings(server, False, certs), "alice", server.users["alice"], backoff=Backoff(0.2, 1.0)
    )

    async def scenario():
        task = asyncio.create_task(watcher.run())
        try:
            assert await _until(lambda: watcher.stats.idling, 10), watcher.stats
            await asyncio.to_thread(server.restart, 1.0)
            assert await _until(lambda: watcher.stats.connects >= 2 and watcher.stats.idling, 15), (
                watcher.stats
            )
            assert "reconnected" in events  # the owner hears it, to catch up with what it missed
            server.add_messages("alice", 1)
            assert await _until(lambda: "exists" in events, 5), (events, watcher.stats)
        finally:
            task.cancel()

    run_loop(scenario())
    assert watcher.stats.failures >= 1


def test_a_refused_login_backs_off(clean_dovecot, certs):
    server = clean_dovecot
    watcher, _events = _watch(_settings(server, False, certs), "alice", "wrong", backoff=Backoff(0.1, 0.4))

    async def scenario():
        task = asyncio.create_task(watcher.run())
        await asyncio.sleep(1.5)
        task.cancel()

    run_loop(scenario())
    assert 2 <= watcher.stats.failures <= 12
    assert watcher.stats.last_error.startswith("auth:")
    assert "wrong" not in watcher.stats.last_error
