"""The connection test: walk a server through connect, TLS, login and one harmless command.

``check_incoming`` (IMAP: connect, TLS, capabilities, login, LIST; POP3:
connect, TLS, capabilities, login, STAT) and ``check_outgoing`` (SMTP: connect,
EHLO, STARTTLS, AUTH — no mail is sent) never raise for a mail-server
problem: they return a :class:`CheckReport` whose ``error`` is the classified
:class:`~connectors.errors.MailError`, with the providers' hints from the
``mailroom_diagnosis_hints`` hook added.

Client classes come from the ``mailroom_protocol_clients`` hook, so a plugin
can replace one.  A watchdog bounds the whole check (``2 × timeout + 5`` s
by default): each read already has ``settings.timeout``, but a server that
trickles one byte at a time could otherwise hold a worker for ever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from connectors import plugins
from connectors.client import Step
from connectors.errors import ErrorClass, MailError, redact
from connectors.imap import ImapClient
from connectors.pop3 import Pop3Client
from connectors.settings import Credentials, Protocol, ServerSettings
from connectors.smtp import SmtpClient
from connectors.transcript import Transcript

log = logging.getLogger(__name__)

__all__ = ["CheckReport", "Step", "check_incoming", "check_outgoing", "client_class", "default_budget"]


@dataclass
class CheckReport:
    """The outcome of one connection test; ``as_dict()`` is what the web app stores and shows."""

    protocol: str
    ok: bool = False
    steps: list[Step] = field(default_factory=list)
    error: MailError | None = None
    capabilities: list[str] = field(default_factory=list)
    #: ``address`` connected to, ``tls`` version, ``certificate_verified``, ``folders``/``messages``.
    info: dict = field(default_factory=dict)
    server: dict = field(default_factory=dict)
    duration_ms: float = 0.0

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "protocol": self.protocol,
            "server": dict(self.server),
            "steps": [s.as_dict() if hasattr(s, "as_dict") else dict(vars(s)) for s in self.steps],
            "error": self.error.as_dict() if self.error is not None else None,
            "capabilities": list(self.capabilities),
            "info": dict(self.info),
            "duration_ms": round(self.duration_ms, 1),
        }


#: The clients shipped with Mailroom; ``plugins.protocols`` offers them through the
#: ``mailroom_protocol_clients`` hook, and :func:`client_class` falls back to them
#: when that built-in plugin is disabled.
BUILTIN_CLIENTS: dict[str, type] = {"imap": ImapClient, "pop3": Pop3Client, "smtp": SmtpClient}


def default_budget(settings: ServerSettings) -> float:
    """Longest a whole check may take: connect and greeting may each use the timeout, plus slack."""
    return 2 * float(settings.timeout) + 5


def client_class(protocol: Protocol | str) -> type:
    """The client class for ``protocol`` from the plugins, or the built-in one if no plugin gives it."""
    protocol = Protocol(protocol).value
    cls = plugins.protocol_clients().get(protocol)
    if cls is None:  # the built-in plugin was disabled
        cls = BUILTIN_CLIENTS[protocol]
    return cls


def check_incoming(
    settings: ServerSettings,
    credentials: Credentials,
    service_key: str | None = None,
    transcript: Transcript | None = None,
    *,
    budget: float | None = None,
) -> CheckReport:
    """Test an IMAP or POP3 server: connect, TLS, capabilities, login, then LIST (IMAP) or STAT (POP3)."""
    protocol = Protocol(settings.protocol)
    if protocol not in (Protocol.IMAP, Protocol.POP3):
        raise ValueError(f"check_incoming needs IMAP or POP3 settings, not {protocol.value}")

    def run(client) -> None:
        _call(client, "connect", client.connect)
        _call(client, "login", client.login)
        if protocol is Protocol.IMAP:
            _call(client, "list", client.list_folders)
        else:
            _call(client, "stat", client.stat)

    return _run(settings, credentials, service_key, transcript, budget, run)


def check_outgoing(
    settings: ServerSettings,
    credentials: Credentials | None,
    requires_auth: bool = True,
    service_key: str | None = None,
    transcript: Transcript | None = None,
    *,
    budget: float | None = None,
) -> CheckReport:
    """Test an SMTP server: connect, EHLO, STARTTLS, AUTH (skipped when ``requires_auth`` is False).

    No MAIL FROM, no RCPT TO, no DATA: nothing can be sent by accident.
    """
    if Protocol(settings.protocol) is not Protocol.SMTP:
        raise ValueError("check_outgoing needs SMTP settings")

    def run(client) -> None:
        _call(client, "connect", client.connect)
        if requires_auth:
            _call(client, "login", client.login)

    return _run(settings, credentials, service_key, transcript, budget, run)


def _call(client, name: str, fn: Callable[[], object]) -> None:
    """Run one client call; time it here only for clients that do not record their own steps."""
    if hasattr(client, "steps"):
        fn()
        return
    own = client.__dict__.setdefault("_check_steps", [])
    start = time.monotonic()
    try:
        fn()
    except MailError as err:
        own.append(Step(name, False, (time.monotonic() - start) * 1000, err.message))
        raise
    own.append(Step(name, True, (time.monotonic() - start) * 1000))


def _run(settings, credentials, service_key, transcript, budget, run) -> CheckReport:
    protocol = Protocol(settings.protocol).value
    credentials = credentials or Credentials(username="")
    report = CheckReport(
        protocol=protocol,
        server={
            "host": settings.host,
            "port": settings.port,
            "security": getattr(settings.security, "value", settings.security),
            "verify_certificate": settings.verify_certificate,
        },
    )
    budget = default_budget(settings) if budget is None else budget
    start = time.monotonic()
    client = None
    watchdog = None
    try:
        client = client_class(protocol)(settings, credentials, transcript=transcript)
        if hasattr(client, "abort"):
            watchdog = threading.Timer(budget, client.abort, kwargs={"after": budget})
            watchdog.daemon = True
            watchdog.start()
        run(client)
    except MailError as err:
        report.error = err
    except Exception as exc:  # a bug must still give a report, never a hung or crashed job
        log.exception("Unexpected failure in the %s connection check", protocol)
        report.error = MailError(
            ErrorClass.PROTOCOL,
            protocol,
            raw=redact(f"{type(exc).__name__}: {exc}", credentials.secret_forms()),
            detail="The test stopped on an unexpected error.",
        )
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if client is not None:
            try:
                client.close()
            except Exception:
                log.exception("Closing the %s client failed", protocol)
    report.duration_ms = (time.monotonic() - start) * 1000
    if client is not None:
        report.steps = list(getattr(client, "steps", None) or client.__dict__.get("_check_steps", []))
        report.capabilities = list(getattr(client, "capabilities", None) or [])
        report.info = dict(getattr(client, "info", None) or {})
    report.ok = report.error is None
    if report.error is not None:
        extra = plugins.diagnosis_hints(report.error.error_class.value, protocol, service_key, settings)
        report.error.hints = [*extra, *(h for h in report.error.hints if h not in extra)]
    return report
