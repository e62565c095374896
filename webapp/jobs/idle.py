"""``mailroom idle``: INBOX of every push-enabled mailbox held in IMAP IDLE, a sync on each change.

One asyncio loop holds all of this process's mailboxes (one :class:`connectors.idle.IdleWatcher`
each); the database and Redis are reached from worker threads (``asyncio.to_thread``) so a slow
query never stalls the connections.

**Leases.**  Several ``mailroom idle`` processes, on any machines, share the mailboxes through
one Redis key per mailbox, ``mailroom:idle:lease:<id>``, whose value names the holding process:

* every ``lease / 3`` seconds a process renews its keys (one script call: ``PEXPIRE`` only where
  the value is still its own name) and drops the watchers whose key it lost;
* in the same round it claims unleased push-enabled mailboxes with ``SET NX PX lease``, up to
  its cap (``--max-mailboxes``), and drops the mailboxes that no longer qualify (push turned
  off, disabled, removed service, a sign-in needed);
* a process that dies stops renewing: its keys expire within ``lease`` seconds and the next
  claim round of any other process takes them; a mailbox claimed after the first round (a
  takeover, or push just turned on) gets one catch-up sync, as does a watcher that reconnects
  after a drop, for what changed while nobody listened.
* A clean stop (SIGTERM, SIGINT) deletes its own keys, so others take over at once.

**Syncs.**  A change (``EXISTS``, ``EXPUNGE``, ``FETCH``, ``VANISHED``) marks the mailbox
pending; one task enqueues the pending mailboxes' syncs on the interactive lane through
:func:`webapp.jobs.sync.start`, which refuses a second queued or running sync of a mailbox:
a change while a sync is *queued* is already covered (debounced), one while a sync is *running*
may have come after it read the INBOX, so it is retried a moment later.  A login the server
refuses also enqueues a sync: the sync job is the one that records ``auth_error`` on the mailbox
(:mod:`webapp.jobs.outcome`), which takes it out of IDLE at the next lease round, so a wrong
password is not retried every few minutes until the provider locks the account.

**Secrets** are read from the database inside this process on every connection (a fresh OAuth2
token each time), decrypted with the app's SecretBox by :mod:`webapp.jobs.session`; they never
leave it and are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from rq.job import Job

from connectors.idle import REISSUE_AFTER, Backoff, IdleWatcher, small_tls_buffers
from connectors.settings import Credentials, ServerSettings

from ..errors import DomainError, MailboxUnavailable, QueueUnavailable
from ..extensions import db
from ..models import Account, AccountState
from ..queue import INTERACTIVE, get_redis
from ..users import owner_enabled
from . import sync
from .session import credentials, server_settings

log = logging.getLogger(__name__)

LEASE_KEY = "mailroom:idle:lease:{}"
PROCESS_KEY = "mailroom:idle:process:{}"
#: Seconds a lease lives without renewal: the longest a dead process's mailboxes go unheard.
LEASE = 30.0
#: Mailboxes one process holds at most.
MAX_MAILBOXES = 1000
#: Seconds before a change seen during a running sync is tried again.
RETRY_AFTER = 1.0
#: States that keep a mailbox out of IDLE (its owner or an administrator must act first).
_NOT_WATCHED = (
    AccountState.SERVICE_REMOVED.value,
    AccountState.AUTH_ERROR.value,
    AccountState.NEEDS_SIGN_IN.value,
    AccountState.DISABLED.value,
)
#: Renew the caller's own leases: PEXPIRE where the value is still ARGV[1]; 1/0 per key.
_RENEW = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""
#: Delete the caller's own leases (never another process's).
_RELEASE = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 1
"""


@dataclass
class IdleOptions:
    lease: float = LEASE
    max_mailboxes: int = MAX_MAILBOXES
    reissue_after: float = REISSUE_AFTER
    backoff: Backoff = field(default_factory=Backoff)


def process_name() -> str:
    """``host:pid:random``: unique even when a pid is reused after a crash."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def watched_ids() -> list[int]:
    """Ids of the mailboxes that should be in IDLE: active, push on, IMAP, nothing to fix first."""
    rows = db.session.execute(
        db.select(Account.id)
        .where(
            Account.push.is_(True),
            Account.active.is_(True),
            owner_enabled(),  # not for a disabled user (webapp/users.py)
            Account.incoming_protocol == "imap",
            Account.state.notin_(_NOT_WATCHED),
        )
        .order_by(Account.id)
    )
    return [row[0] for row in rows]


def holders(redis, account_ids: list[int]) -> dict[int, str | None]:
    """Which process holds each mailbox's lease (None: nobody); for tests and the operator."""
    values = redis.mget([LEASE_KEY.format(i) for i in account_ids]) if account_ids else []
    return {i: (v.decode() if v else None) for i, v in zip(account_ids, values, strict=True)}


def processes(redis) -> list[dict]:
    """The running ``mailroom idle`` processes and what each holds (expire with their lease)."""
    out = []
    for key in redis.scan_iter(PROCESS_KEY.format("*"), count=200):
        raw = redis.get(key)
        if raw:
            out.append(json.loads(raw))
    return sorted(out, key=lambda p: p["name"])


class IdleProcess:
    """The leases, watchers and sync requests of one ``mailroom idle`` process."""

    def __init__(self, app: Flask, options: IdleOptions | None = None) -> None:
        self.app = app
        self.options = options or IdleOptions()
        self.name = process_name()
        self.watchers: dict[int, tuple[IdleWatcher, asyncio.Task]] = {}
        self.pending: set[int] = set()
        self._wake = asyncio.Event()
        self._rounds = 0
        with app.app_context():
            self.redis = get_redis()
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)

    # --- running -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set: lease rounds every ``lease / 3`` seconds and the sync requests."""
        requests = asyncio.create_task(self._request_syncs())
        try:
            while not stop.is_set():
                try:
                    await self.lease_round()
                except Exception:  # Redis or the database away: keep the watchers, try again
                    log.exception("mailroom idle: lease round failed")
                try:
                    await asyncio.wait_for(stop.wait(), self.options.lease / 3)
                except TimeoutError:
                    pass
        finally:
            requests.cancel()
            await self.shutdown()

    async def shutdown(self) -> None:
        ids = list(self.watchers)
        for account_id in ids:
            self._drop(account_id)
        if ids:
            await asyncio.to_thread(self._release, keys=[LEASE_KEY.format(i) for i in ids], args=[self.name])
        await asyncio.to_thread(self.redis.delete, PROCESS_KEY.format(self.name))

    async def lease_round(self) -> None:
        """Renew what is held, drop what was lost or no longer qualifies, claim up to the cap."""
        wanted = set(await asyncio.to_thread(self._in_app, watched_ids))
        held = list(self.watchers)
        if held:
            kept = await asyncio.to_thread(
                self._renew,
                keys=[LEASE_KEY.format(i) for i in held],
                args=[self.name, int(self.options.lease * 1000)],
            )
            release = []
            for account_id, ok in zip(held, kept, strict=True):
                if not ok or account_id not in wanted:
                    self._drop(account_id)
                    if ok:
                        release.append(LEASE_KEY.format(account_id))
            if release:  # push turned off, mailbox disabled...: free at once, not after a lease
                await asyncio.to_thread(self._release, keys=release, args=[self.name])
        room = self.options.max_mailboxes - len(self.watchers)
        candidates = [i for i in sorted(wanted) if i not in self.watchers]
        if room > 0 and candidates:
            for account_id in await asyncio.to_thread(self._claim, candidates, room):
                await self._watch(account_id, catch_up=self._rounds > 0)
        self._rounds += 1
        await asyncio.to_thread(self._heartbeat)

    # --- leases ------------------------------------------------------------------------------

    def _claim(self, candidates: list[int], room: int) -> list[int]:
        """``SET NX PX`` in pipelined batches until ``room`` mailboxes are claimed."""
        claimed: list[int] = []
        px = int(self.options.lease * 1000)
        for start in range(0, len(candidates), 500):
            batch = candidates[start : start + 500][: room - len(claimed)]
            if not batch:
                break
            pipe = self.redis.pipeline(transaction=False)
            for account_id in batch:
                pipe.set(LEASE_KEY.format(account_id), self.name, nx=True, px=px)
            claimed += [i for i, ok in zip(batch, pipe.execute(), strict=True) if ok]
        return claimed

    def _heartbeat(self) -> None:
        stats = [w.stats for w, _t in self.watchers.values()]
        info = {
            "name": self.name,
            "mailboxes": len(stats),
            "idling": sum(1 for s in stats if s.idling),
            "idles": sum(s.idles for s in stats),  # IDLE commands accepted (re-issues included)
            "at": time.time(),
        }
        self.redis.set(PROCESS_KEY.format(self.name), json.dumps(info), px=int(self.options.lease * 1000))

    # --- watchers ----------------------------------------------------------------------------

    async def _watch(self, account_id: int, *, catch_up: bool) -> None:
        try:
            settings = await asyncio.to_thread(self._in_app, _imap_settings, account_id)
        except (MailboxUnavailable, LookupError) as exc:
            log.info("mailroom idle: mailbox %s not watched: %s", account_id, exc)
            await asyncio.to_thread(self._release, keys=[LEASE_KEY.format(account_id)], args=[self.name])
            return
        watcher = IdleWatcher(
            settings,
            lambda: asyncio.to_thread(self._in_app, _imap_credentials, account_id),
            lambda event: self._changed(account_id, event),
            reissue_after=self.options.reissue_after,
            backoff=self.options.backoff,
        )
        self.watchers[account_id] = (watcher, asyncio.create_task(watcher.run(), name=f"idle-{account_id}"))
        if catch_up:
            self._changed(account_id, "claimed")

    def _drop(self, account_id: int) -> None:
        _watcher, task = self.watchers.pop(account_id)
        task.cancel()

    # --- syncs -------------------------------------------------------------------------------

    def _changed(self, account_id: int, event: str) -> None:
        log.info("mailroom idle: mailbox %s: %s", account_id, event)
        self.pending.add(account_id)
        self._wake.set()

    async def _request_syncs(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self.pending = self.pending, set()
            try:
                retry = await asyncio.to_thread(self._in_app, _start_syncs, batch)
            except Exception:  # the database or Redis away: keep them pending, try again
                log.exception("mailroom idle: could not enqueue syncs")
                retry = batch
            if retry:
                asyncio.get_running_loop().call_later(RETRY_AFTER, self._retry, retry)

    def _retry(self, account_ids: set[int]) -> None:
        self.pending |= {i for i in account_ids if i in self.watchers}
        self._wake.set()

    def _in_app(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` in an app context of this thread, its session closed afterwards."""
        with self.app.app_context():
            try:
                return fn(*args)
            finally:
                db.session.remove()


# --- what runs in worker threads, inside an app context ----------------------------------------


def _account(account_id: int) -> Account:
    account = db.session.get(Account, account_id)
    if account is None:
        raise LookupError(f"mailbox {account_id} was deleted")
    return account


def _imap_settings(account_id: int) -> ServerSettings:
    return server_settings(_account(account_id), "imap")


def _imap_credentials(account_id: int) -> Credentials:
    return credentials(_account(account_id), "imap")


def _start_syncs(account_ids: set[int]) -> set[int]:
    """Enqueue each mailbox's sync (interactive lane); return those to try again shortly."""
    retry = set()
    for account_id in sorted(account_ids):
        account = db.session.get(Account, account_id)
        if account is None:
            continue
        try:
            sync.start(account, lane=INTERACTIVE)
        except sync.SyncRunning as exc:
            if _status(exc.job_id) == "started":
                retry.add(account_id)  # it may have read INBOX before this change
        except QueueUnavailable:
            retry.add(account_id)
        except DomainError as exc:  # cannot sync now (disabled, removed service...)
            log.info("mailroom idle: mailbox %s not synced: %s", account_id, exc)
    return retry


def _status(job_id: str) -> str | None:
    try:
        status = Job.fetch(job_id, connection=get_redis()).get_status(refresh=True)
    except Exception:  # gone meanwhile: nothing running
        return None
    return getattr(status, "value", status)


def serve(app: Flask, options: IdleOptions | None = None) -> None:
    """Run one ``mailroom idle`` process until SIGTERM or SIGINT (then its leases are released)."""

    small_tls_buffers()  # 16 KiB instead of 256 KiB per TLS connection: this process holds 1,000

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        process = IdleProcess(app, options)
        log.info(
            "mailroom idle %s: lease %ss, up to %s mailboxes",
            process.name,
            process.options.lease,
            process.options.max_mailboxes,
        )
        await process.run(stop)

    asyncio.run(main())
