"""Holding one IMAP folder in IDLE (RFC 2177) with asyncio, to hear of new mail in seconds.

One :class:`IdleWatcher` per mailbox: it connects, signs in (a password, or an
OAuth2 access token sent with XOAUTH2), EXAMINEs the folder (read-only: the
watcher never changes a flag), enters IDLE and calls ``on_event`` on every
untagged ``EXISTS``, ``EXPUNGE``, ``FETCH`` or ``VANISHED``.  Servers drop an
IDLE after 30 minutes, so it sends ``DONE`` and re-enters IDLE after
``reissue_after`` seconds (28 minutes by default).  Any drop — a closed
socket, a ``BYE``, a timeout, a refused login — ends the session; the watcher
then waits an exponentially growing delay with jitter and connects again, and
reports ``"reconnected"`` once it is back in IDLE so its owner can catch up
with what changed while it was away.

Why not aioimaplib: it connects to the host *name* (so the address guard of
:mod:`connectors.net`, which connects to the checked address and keeps the name
for SNI and the certificate, cannot hold), and it has no STARTTLS.  IDLE needs
five commands, so a small tagged/untagged reader over asyncio streams does it,
with the resolution, address check, TLS context and error classes of
:mod:`connectors.net` shared with the other clients.  Each watcher is one
coroutine, a stream pair and a few hundred bytes of state: a process holds
thousands (docs/scaling.md gives the measured memory per mailbox).

Nothing here imports Flask, SQLAlchemy, RQ or Redis (the connectors rule).
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import base64
import logging
import random
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from connectors import net
from connectors.errors import AUTH_CLASSES, ErrorClass, MailError
from connectors.settings import Credentials, Security, ServerSettings

log = logging.getLogger(__name__)

#: RFC 2177: clients re-issue IDLE at least every 29 minutes; a margin under it.
REISSUE_AFTER = 28 * 60.0
#: Untagged answers that mean the folder changed.
_CHANGE = re.compile(rb"^\* (?:\d+ (EXISTS|EXPUNGE|FETCH)|(VANISHED))\b", re.IGNORECASE)
_LITERAL = re.compile(rb"\{(\d+)\+?\}$")
#: The longest line (or literal) read from a server; longer is a protocol error.
MAX_LINE = 64 * 1024

#: Read buffer of each asyncio TLS connection in a process that holds many (see small_tls_buffers).
TLS_READ_BUFFER = 16 * 1024

Login = Callable[[], Awaitable[Credentials]]
OnEvent = Callable[[str], None]


def small_tls_buffers(size: int = TLS_READ_BUFFER) -> None:
    """Shrink the read buffer asyncio gives every TLS connection from 256 KiB to ``size``.

    ``asyncio.sslproto.SSLProtocol`` allocates (and zero-fills) ``max_size`` bytes per
    connection: 256 KiB each, which made a TLS watcher cost ~330 KB against ~14 KB in plain
    text (docs/scaling.md).  A TLS record carries at most 16 KiB, so 16 KiB reads lose nothing
    but a few extra calls on large answers, which IDLE does not get.  Process-wide, so only a
    process that holds many connections calls it (``mailroom idle``).
    """
    asyncio.sslproto.SSLProtocol.max_size = size


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: ``initial * 2**n`` capped at ``maximum``, then a random
    point in its upper half, so a server that restarts is not hit by every watcher at once."""

    initial: float = 1.0
    maximum: float = 300.0

    def delay(self, failures: int) -> float:
        ceiling = min(self.maximum, self.initial * (2 ** max(failures - 1, 0)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass
class IdleStats:
    """What a watcher did, for the operator's page and for tests."""

    connects: int = 0
    idles: int = 0
    events: int = 0
    failures: int = 0
    last_error: str = ""
    idling: bool = False
    #: Whether the current session got IDLE accepted (a drop after that restarts the backoff).
    idling_reached: bool = False


class _Connection:
    """One IMAP connection: tagged commands and the untagged lines between them."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, settings: ServerSettings):
        self.reader, self.writer, self.settings = reader, writer, settings
        self.timeout = max(float(settings.timeout or 0), 0.5)
        self._tag = 0

    def fail(self, error_class: ErrorClass, step: str, raw: bytes | str = "") -> MailError:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        return MailError(error_class, "imap", step, raw=text.strip()[:500])

    async def line(self, timeout: float | None = None) -> bytes:
        """One response line with its literals appended; EOF is a ``server_error``."""
        data = await asyncio.wait_for(self.reader.readline(), timeout or self.timeout)
        if not data:
            raise self.fail(ErrorClass.SERVER_ERROR, "idle", "the server closed the connection")
        while (m := _LITERAL.search(data.rstrip(b"\r\n"))) is not None:
            size = int(m.group(1))
            if size > MAX_LINE:
                raise self.fail(ErrorClass.PROTOCOL, "idle", f"literal of {size} bytes")
            data += await asyncio.wait_for(self.reader.readexactly(size), self.timeout)
            data += await asyncio.wait_for(self.reader.readline(), self.timeout)
        return data

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), self.timeout)

    async def command(self, text: bytes, step: str) -> list[bytes]:
        """Send ``TAG text``, return the untagged lines; a ``NO``/``BAD`` answer raises."""
        self._tag += 1
        tag = b"M%d" % self._tag
        await self.send(tag + b" " + text + b"\r\n")
        return await self.until_tagged(tag, step)

    async def until_tagged(
        self, tag: bytes, step: str, on_line: Callable[[bytes], None] | None = None
    ) -> list[bytes]:
        untagged = []
        while True:
            line = await self.line()
            if line.startswith(tag + b" "):
                status = line[len(tag) + 1 :].split(b" ", 1)[0].upper()
                if status != b"OK":
                    raise self.fail(_failure_class(step, line), step, line)
                return untagged
            if line.startswith(b"+"):
                raise self.fail(ErrorClass.PROTOCOL, step, line)  # a continuation nobody asked for
            _check_bye(self, line, step)
            if on_line is not None:
                on_line(line)
            untagged.append(line)

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:  # already gone; nothing to release
            pass


def _failure_class(step: str, line: bytes) -> ErrorClass:
    if b"[UNAVAILABLE]" in line.upper() or b"[LIMIT]" in line.upper():
        return ErrorClass.THROTTLED
    if step == "login":
        return ErrorClass.AUTH
    if step == "select":
        return ErrorClass.FOLDER_MISSING
    return ErrorClass.PROTOCOL


def _check_bye(conn: _Connection, line: bytes, step: str) -> None:
    if line[:6].upper() == b"* BYE ":
        raise conn.fail(ErrorClass.SERVER_ERROR, step, line)


def _report(line: bytes, on_event: OnEvent) -> bool:
    m = _CHANGE.match(line)
    if m is None:
        return False
    on_event((m.group(1) or m.group(2)).decode("ascii").lower())
    return True


def _quoted(text: str) -> bytes:
    return b'"' + text.replace("\\", "\\\\").replace('"', '\\"').encode("utf-8") + b'"'


async def open_connection(settings: ServerSettings, context: ssl.SSLContext | None = None) -> _Connection:
    """Connected to a checked address of the server (TLS from the first byte when configured),
    greeted and, for STARTTLS, upgraded; never falls back to plain text."""
    timeout = max(float(settings.timeout or 0), 0.5)
    candidates = await asyncio.to_thread(net.resolve, settings)
    net.check_addresses(settings, candidates)
    security = Security.parse(settings.security)
    if security is not Security.NONE and context is None:
        context = await asyncio.to_thread(net.tls_context, settings)  # loads CA files: off the loop
    tls = context if security is Security.TLS else None
    failures: list[tuple[net.Candidate, OSError]] = []
    for c in candidates:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    str(c.ip),
                    settings.port,
                    ssl=tls,
                    server_hostname=settings.host if tls else None,
                    limit=MAX_LINE,
                ),
                timeout,
            )
        except ssl.SSLError as exc:
            raise net.classify_exception(exc, settings, "tls") from None
        except (TimeoutError, OSError) as exc:
            failures.append((c, exc if isinstance(exc, OSError) else TimeoutError(str(exc))))
            continue
        conn = _Connection(reader, writer, settings)
        try:
            await _greet(conn, security, context)
        except BaseException:
            conn.close()
            raise
        return conn
    raise net._connect_failure(settings, "connect", failures, timeout)


async def _greet(conn: _Connection, security: Security, context: ssl.SSLContext | None) -> None:
    greeting = await conn.line()
    if not greeting.upper().startswith((b"* OK", b"* PREAUTH")):
        raise conn.fail(ErrorClass.SERVER_ERROR, "connect", greeting)
    if security is Security.STARTTLS:
        try:
            await conn.command(b"STARTTLS", "starttls")
        except MailError as exc:
            raise conn.fail(ErrorClass.STARTTLS_MISSING, "starttls", exc.raw) from None
        try:
            await asyncio.wait_for(
                conn.writer.start_tls(context, server_hostname=conn.settings.host), conn.timeout
            )
        except (ssl.SSLError, OSError) as exc:
            raise net.classify_exception(exc, conn.settings, "starttls") from None


async def login(conn: _Connection, credentials: Credentials) -> None:
    """LOGIN for an ASCII password, AUTHENTICATE PLAIN for another, XOAUTH2 for a token."""
    user = credentials.username
    if credentials.oauth2_token:
        blob = f"user={user}\1auth=Bearer {credentials.oauth2_token}\1\1"
        await _authenticate(conn, b"XOAUTH2", blob.encode("utf-8"))
    elif credentials.password and credentials.password.isascii() and user.isascii():
        await conn.command(b"LOGIN " + _quoted(user) + b" " + _quoted(credentials.password), "login")
    elif credentials.password:
        await _authenticate(conn, b"PLAIN", f"\0{user}\0{credentials.password}".encode())
    else:
        raise conn.fail(ErrorClass.AUTH, "login", "no password or token")


async def _authenticate(conn: _Connection, mechanism: bytes, blob: bytes) -> None:
    conn._tag += 1
    tag = b"M%d" % conn._tag
    await conn.send(tag + b" AUTHENTICATE " + mechanism + b"\r\n")
    line = await conn.line()
    if not line.startswith(b"+"):
        raise conn.fail(ErrorClass.AUTH_METHOD, "login", line.split(b" ", 2)[-1])
    await conn.send(base64.b64encode(blob) + b"\r\n")
    line = await conn.line()
    if line.startswith(b"+"):  # XOAUTH2's error challenge: an empty answer gets the tagged NO
        await conn.send(b"\r\n")
        line = await conn.line()
    if not line.startswith(tag + b" OK"):
        raise conn.fail(ErrorClass.AUTH, "login", line.split(b" ", 2)[-1] if line.startswith(tag) else line)


class IdleWatcher:
    """Keeps ``folder`` of one mailbox in IDLE until cancelled; see the module docstring.

    ``login`` is awaited on every connection (a fresh OAuth2 token each time); ``on_event`` is
    called, on the event loop, with ``"exists"``, ``"expunge"``, ``"fetch"``, ``"vanished"``,
    ``"reconnected"`` or ``"auth_failed"`` (the server refused the login) and must not block.
    """

    def __init__(
        self,
        settings: ServerSettings,
        login: Login,
        on_event: OnEvent,
        *,
        folder: str = "INBOX",
        reissue_after: float = REISSUE_AFTER,
        backoff: Backoff | None = None,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings, self._login, self.on_event, self.folder = settings, login, on_event, folder
        self.reissue_after = reissue_after
        self.backoff = backoff or Backoff()
        self.context = context
        self.stats = IdleStats()
        self._announce = False

    async def run(self) -> None:
        """Connect, IDLE, and after any drop wait (backoff with jitter) and connect again."""
        failures = 0
        while True:
            try:
                await self.session(reconnect=self.stats.failures > 0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every drop is the same to a watcher: wait and come back
                self.stats.failures += 1
                self.stats.last_error = _describe(exc)
                log.info("IDLE on %s dropped: %s", self.settings.host, self.stats.last_error)
                if isinstance(exc, MailError) and exc.error_class in AUTH_CLASSES:
                    self.on_event("auth_failed")  # the owner decides (a sync records it on the mailbox)
            finally:
                self.stats.idling = False
            failures = 1 if self.stats.idling_reached else failures + 1
            self.stats.idling_reached = False
            await asyncio.sleep(self.backoff.delay(failures))

    async def session(self, *, reconnect: bool = False) -> None:
        """One connection: sign in, EXAMINE, then IDLE cycles until something fails."""
        conn = await open_connection(self.settings, self.context)
        try:
            self.stats.connects += 1
            await login(conn, await self._login())
            caps = b" ".join(await conn.command(b"CAPABILITY", "capability")).upper()
            if b" IDLE" not in caps:
                raise conn.fail(ErrorClass.PROTOCOL, "idle", "the server does not offer IDLE")
            await conn.command(b"EXAMINE " + _quoted(self.folder), "select")
            self._announce = reconnect
            while True:
                await self._idle_once(conn)
        finally:
            conn.close()

    async def _idle_once(self, conn: _Connection) -> None:
        """IDLE until ``reissue_after`` has passed, reporting changes; then DONE and its OK."""
        conn._tag += 1
        tag = b"M%d" % conn._tag
        await conn.send(tag + b" IDLE\r\n")
        while not (line := await conn.line()).startswith(b"+"):
            if line.startswith(tag):
                raise conn.fail(ErrorClass.PROTOCOL, "idle", line)
            _check_bye(conn, line, "idle")
            self._event(line)
        self.stats.idles += 1
        self.stats.idling = self.stats.idling_reached = True
        if self._announce:  # back after a drop: what changed while away is for a sync to find
            self._announce = False
            self.on_event("reconnected")
        deadline = asyncio.get_running_loop().time() + self.reissue_after
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                line = await conn.line(timeout=left)
            except TimeoutError:
                break
            _check_bye(conn, line, "idle")
            self._event(line)
        await conn.send(b"DONE\r\n")
        await conn.until_tagged(tag, "idle", self._event)

    def _event(self, line: bytes) -> None:
        if _report(line, self.on_event):
            self.stats.events += 1


def _describe(exc: BaseException) -> str:
    if isinstance(exc, MailError):
        return f"{exc.error_class.value}: {exc.raw or exc.detail}"
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout: the server did not answer in time"
    return f"{type(exc).__name__}: {exc}"
