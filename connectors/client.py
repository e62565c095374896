"""What the IMAP, POP3 and SMTP clients share: timed steps, classified errors, abort and close.

The contract every client class follows (also a third-party one returned by
the ``mailroom_protocol_clients`` hook):

* ``Client(settings, credentials, transcript=None)``;
* ``connect()`` — TCP, TLS (implicit or STARTTLS), greeting, capabilities;
* ``login()`` — authenticate with the credentials;
* ``close()`` — never raises, never hangs;
* as a context manager: ``connect()`` and, when the credentials carry a
  password or token, ``login()`` on entry, ``close()`` on exit;
* failures raise :class:`~connectors.errors.MailError` only.

Optional, used by the connection check when present: ``steps`` (a list of
:class:`Step`), ``capabilities``, ``info`` and ``abort()``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import ClassVar

from connectors import net
from connectors.errors import OAUTH2_REFUSED, Detail, ErrorClass, MailError, redact
from connectors.settings import Credentials, Security, ServerSettings
from connectors.transcript import Transcript


@dataclass
class Step:
    """One timed step of a conversation (``connect``, ``tls``, ``login``, ...)."""

    name: str
    ok: bool = False
    duration_ms: float = 0.0
    detail: str = ""

    def as_dict(self) -> dict:
        d = asdict(self)
        d["duration_ms"] = round(self.duration_ms, 2)
        return d


#: After these failures the conversation is still in order, so a polite LOGOUT/QUIT is sent.
_IN_STEP_AFTER = {
    ErrorClass.AUTH,
    ErrorClass.AUTH_METHOD,
    ErrorClass.STARTTLS_MISSING,
    ErrorClass.THROTTLED,
    ErrorClass.FOLDER_MISSING,
}
#: How long a polite goodbye may take.
CLOSE_TIMEOUT = 3.0


class ProtocolClient:
    """Base class of the built-in clients; see the module docstring for the contract."""

    protocol: ClassVar[str] = ""

    def __init__(
        self, settings: ServerSettings, credentials: Credentials | None, transcript: Transcript | None = None
    ) -> None:
        self.settings = settings
        self.credentials = credentials or Credentials(username="")
        self.transcript = transcript
        self.steps: list[Step] = []
        self.capabilities: list[str] = []
        #: Facts about the connection: ``address`` connected to, ``tls`` version, ``certificate_verified``.
        self.info: dict = {}
        self.error: MailError | None = None
        self._sockets: list[socket.socket] = []
        self._aborted: float | None = None
        self._secrets: tuple[str, ...] = tuple(self.credentials.secret_forms())
        if transcript is not None:
            transcript.add_secrets(self._secrets)

    # -- the contract ---------------------------------------------------------------------

    def connect(self) -> None:
        raise NotImplementedError

    def login(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        try:
            self.connect()
            if self.credentials.password or self.credentials.oauth2_token:
                self.login()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def abort(self, after: float | None = None) -> None:
        """Cut every socket of this client, from any thread (the check's watchdog).

        A read blocked in another thread returns at once; the step that was
        running fails with ``timeout`` ("the whole test took longer than ...").
        """
        self._aborted = after if after is not None else 0.0
        for sock in list(self._sockets):
            try:
                # The plain socket's shutdown, also for TLS sockets: SSLSocket.shutdown would
                # tear down the TLS object under the reading thread's feet.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    # -- steps and errors -----------------------------------------------------------------

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """Time a step, record it in ``steps`` and turn any failure into a MailError."""
        record = Step(name)
        start = time.monotonic()
        try:
            yield record
        except Exception as exc:
            error = self.classify(exc, name)
            record.duration_ms = (time.monotonic() - start) * 1000
            record.detail = error.message
            self.steps.append(record)
            self.error = error
            if self.transcript is not None:
                self.transcript.note(f"{name} failed: {error.error_class.value}: {error.message}")
            if error is exc:
                raise
            raise error from None
        record.ok = True
        record.duration_ms = (time.monotonic() - start) * 1000
        self.steps.append(record)

    def classify(self, exc: BaseException, step: str) -> MailError:
        """The MailError for ``exc`` raised during ``step`` (also for later sync code using ``.imap``)."""
        if isinstance(exc, MailError):
            if not exc.step:
                exc.step = step
            return self._oauth2_aware(exc)
        if self._aborted is not None:
            return MailError(
                ErrorClass.TIMEOUT, self.protocol, step, detail=Detail.BUDGET.format(budget=self._aborted)
            )
        error = self._classify_protocol(exc, step) or net.classify_exception(
            exc, self.settings, step, self._secrets
        )
        return self._oauth2_aware(error)

    def _oauth2_aware(self, error: MailError) -> MailError:
        """A refused token is not a wrong password: say so, and point at signing in again."""
        if error.error_class is ErrorClass.AUTH and self.credentials.oauth2_token and not error.fix_field:
            error.fix_field = "oauth2"
            error.detail = error.detail or OAUTH2_REFUSED
        return error

    def _classify_protocol(self, exc: BaseException, step: str) -> MailError | None:
        """Protocol knowledge (server replies); None leaves it to the network classifier."""
        return None

    def fail(
        self,
        error_class: ErrorClass,
        step: str,
        raw: str | bytes = "",
        detail: str = "",
        hints: list[str] | None = None,
        fix_field: str = "",
    ) -> MailError:
        """A MailError for this client, its raw text scrubbed of the credentials."""
        if isinstance(raw, bytes | bytearray):
            raw = bytes(raw).decode("utf-8", "replace")
        return MailError(
            error_class,
            self.protocol,
            step,
            raw=redact(str(raw), self._secrets),
            detail=detail,
            hints=list(hints or []),
            fix_field=fix_field,
        )

    def closed(self, step: str, raw: str = "") -> MailError:
        """The server hung up: during TLS set-up that is a TLS matter, during sign-in the server's
        trouble (never a wrong password: only an explicit answer says that), otherwise a port/protocol one."""
        if step == "tls":
            return self.fail(ErrorClass.TLS, step, raw=raw, detail=Detail.TLS_CLOSED)
        if step == "login":
            return self.fail(ErrorClass.SERVER_ERROR, step, raw=raw, detail=Detail.LOGIN_CLOSED)
        return self.fail(ErrorClass.PROTOCOL, step, raw=raw, detail=Detail.CLOSED)

    # -- helpers for subclasses -----------------------------------------------------------

    @property
    def security(self) -> Security:
        return Security.parse(self.settings.security)

    def _register(self, sock: socket.socket) -> None:
        self._sockets.append(sock)

    def _open(self, step: str = "connect") -> socket.socket:
        """A guarded TCP connection; for plain and STARTTLS, also wait for the greeting (TLS probe)."""
        if self.transcript is not None:
            self.transcript.begin(
                self.protocol,
                f"connecting to {self.settings.host} port {self.settings.port}, security {self.security.value}",
            )
        sock = net.open_connection(self.settings, step=step, register=self._register)
        address = sock.getpeername()[0]
        self.info["address"] = address
        if self.transcript is not None:
            self.transcript.note(f"connected to {address}")
        if self.security is not Security.TLS:
            net.await_greeting(sock, self.settings, step=step, register=self._register)
        return sock

    def _wrap(self, sock: socket.socket, step: str = "tls") -> socket.socket:
        tls = net.wrap_tls(sock, self.settings, step=step, context=self.tls_context())
        self._register(tls)
        return tls

    def tls_context(self):
        return net.tls_context(self.settings)

    def _tls_done(self, tls_sock) -> str:
        """Record the TLS version and whether the certificate was checked; return a step detail."""
        version = tls_sock.version() if hasattr(tls_sock, "version") else None
        self.info["tls"] = version
        self.info["certificate_verified"] = bool(self.settings.verify_certificate)
        detail = f"{version or 'TLS'}, certificate " + (
            "verified" if self.settings.verify_certificate else "NOT verified"
        )
        if self.transcript is not None:
            self.transcript.note(f"TLS established: {detail}")
        return detail

    def _polite(self) -> bool:
        """Is the conversation in a state where LOGOUT/QUIT makes sense?"""
        return self._aborted is None and (self.error is None or self.error.error_class in _IN_STEP_AFTER)

    def _goodbye_timeout(self, sock: socket.socket | None) -> None:
        if sock is not None:
            try:
                sock.settimeout(min(CLOSE_TIMEOUT, self.settings.timeout))
            except OSError:
                pass

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass
        self._sockets.clear()
