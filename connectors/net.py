"""Reaching a mail server: resolve, check the address, connect, speak TLS, classify what went wrong.

Every protocol client gets its socket from here, so that three rules hold for
IMAP, POP3 and SMTP alike:

* **The address guard.**  A server typed by a person must not be a way into
  the internal network.  The name is resolved once, *every* address it
  resolves to is checked against the :class:`connectors.addresses.AddressPolicy`, and the socket is
  connected to the checked address itself — never to the name, which a
  hostile DNS server could answer differently a second time.  TLS still uses
  the *name* for SNI and for the certificate check.
* **Bounded time.**  DNS runs in a helper thread joined with the timeout
  (``getaddrinfo`` has none of its own); the connection attempts share one
  deadline; every socket gets ``settings.timeout`` for each read.
* **Wrong TLS mode is named, not reported as a timeout.**  TLS spoken to a
  plain port fails fast with an SSL error that says so.  Plain text spoken to
  an implicit-TLS port just waits for a greeting that never comes; so if the
  greeting is late, :func:`await_greeting` probes the same address with a TLS
  handshake on a second connection, and a successful handshake means "this
  port wants TLS".
"""

from __future__ import annotations

import errno
import functools
import hashlib
import ipaddress
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from connectors.addresses import IPAddress
from connectors.errors import VARIANT_HINTS, Detail, ErrorClass, MailError, redact
from connectors.settings import WELL_KNOWN_PORTS, Protocol, Security, ServerSettings

Register = Callable[[socket.socket], None]

#: How long to wait for a greeting before probing for implicit TLS (capped at half the timeout).
PROBE_AFTER = 1.5
#: Longest a TLS probe may take.
PROBE_TIMEOUT = 3.0


# --- resolving and connecting ----------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One address a name resolved to, ready for ``socket.connect``."""

    family: int
    sockaddr: tuple
    ip: IPAddress


def _proto(settings: ServerSettings) -> str:
    return Protocol(settings.protocol).value


def _timeout(settings: ServerSettings) -> float:
    return max(float(settings.timeout or 0), 0.5)


def resolve(settings: ServerSettings, step: str = "connect") -> list[Candidate]:
    """The addresses of ``settings.host``, within the timeout; DNS failures become ``dns`` errors."""
    host, port, timeout = settings.host, settings.port, _timeout(settings)
    box: dict = {}

    def lookup() -> None:
        try:
            box["answer"] = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=lookup, name=f"mailroom-dns-{host}", daemon=True)
    worker.start()
    worker.join(timeout)
    proto = _proto(settings)
    if worker.is_alive():  # left to finish on its own; getaddrinfo cannot be interrupted
        raise MailError(
            ErrorClass.DNS, proto, step, detail=Detail.DNS_SLOW.format(host=host, timeout=timeout)
        )
    error = box.get("error")
    if isinstance(error, socket.gaierror):
        detail = Detail.DNS_TEMPORARY if error.errno == socket.EAI_AGAIN else Detail.DNS_MISSING
        raise MailError(ErrorClass.DNS, proto, step, raw=str(error), detail=detail.format(host=host))
    if isinstance(error, UnicodeError):
        raise MailError(
            ErrorClass.DNS, proto, step, raw=str(error), detail=Detail.DNS_MISSING.format(host=host)
        )
    if error is not None:
        raise error
    seen: dict[tuple, Candidate] = {}
    for family, _type, _proto_num, _name, sockaddr in box["answer"]:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        seen.setdefault(sockaddr, Candidate(family, sockaddr, ip))
    if not seen:
        raise MailError(ErrorClass.DNS, proto, step, detail=Detail.DNS_MISSING.format(host=host))
    return list(seen.values())


def check_addresses(settings: ServerSettings, candidates: list[Candidate], step: str = "connect") -> None:
    """Refuse the server when any address it resolves to is internal and not allowed.

    Every candidate is checked, not just the first: a name answering with a
    public and an internal address is refused as a whole, so which one a
    connection attempt happens to pick cannot matter.
    """
    policy = settings.address_policy
    if policy is None:
        return
    for c in candidates:
        reason = policy.refusal(settings.host, c.ip)
        if reason:
            literal = settings.host.strip("[]").lower() == str(c.ip)
            detail = Detail.FORBIDDEN_LITERAL if literal else Detail.FORBIDDEN
            raise MailError(
                ErrorClass.FORBIDDEN_ADDRESS,
                _proto(settings),
                step,
                raw=f"{settings.host} -> {c.ip}",
                detail=detail.format(host=settings.host, address=c.ip, reason=reason),
            )


def open_connection(
    settings: ServerSettings, *, step: str = "connect", register: Register | None = None
) -> socket.socket:
    """A TCP socket connected to a checked address of the server, with ``settings.timeout`` set.

    Resolution and all connection attempts share one deadline of
    ``settings.timeout``; with several addresses each attempt gets an equal
    share of what is left, so an unreachable IPv6 address cannot use up the
    time of a working IPv4 one.
    """
    timeout = _timeout(settings)
    deadline = time.monotonic() + timeout
    candidates = resolve(settings, step)
    check_addresses(settings, candidates, step)
    failures: list[tuple[Candidate, OSError]] = []
    for i, c in enumerate(candidates):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock = socket.socket(c.family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        if register is not None:
            register(sock)
        sock.settimeout(remaining / (len(candidates) - i))
        try:
            sock.connect(c.sockaddr)  # the checked address itself, never the name
        except OSError as exc:
            sock.close()
            failures.append((c, exc))
            continue
        sock.settimeout(timeout)
        return sock
    raise _connect_failure(settings, step, failures, timeout)


def _connect_failure(
    settings: ServerSettings, step: str, failures: list[tuple[Candidate, OSError]], timeout: float
) -> MailError:
    """One error for all attempts: refused beats timeout beats unreachable (the most telling first)."""
    proto = _proto(settings)
    raw = "; ".join(f"{c.ip} port {settings.port}: {exc}" for c, exc in failures) or "no time left to connect"
    if any(isinstance(e, ConnectionRefusedError) or e.errno == errno.ECONNREFUSED for _, e in failures):
        return MailError(ErrorClass.REFUSED, proto, step, raw=raw)
    slow = [c for c, e in failures if isinstance(e, TimeoutError)]
    if slow or not failures:  # no failures: DNS used up the time before any attempt
        address = slow[0].ip if slow else settings.host
        detail = Detail.CONNECT_TIMEOUT.format(address=address, port=settings.port, timeout=timeout)
        return MailError(ErrorClass.TIMEOUT, proto, step, raw=raw, detail=detail)
    return MailError(ErrorClass.UNREACHABLE, proto, step, raw=raw)


# --- TLS -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Trust:
    """A trust setting as a cache key: the CA file (and its change time), a digest of the CA
    text and the verify flag; the CA text rides along without taking part in the key."""

    ca_file: str | None
    ca_file_changed: int | None
    ca_digest: str | None
    verify: bool
    ca_data: str | None = field(default=None, compare=False, hash=False, repr=False)


def _trust(settings: ServerSettings) -> _Trust:
    changed = None
    if settings.ca_file:
        try:
            changed = os.stat(settings.ca_file).st_mtime_ns  # a replaced CA file gets a new context
        except OSError:
            changed = None  # load_verify_locations names the missing file
    digest = hashlib.sha256(settings.ca_data.encode()).hexdigest() if settings.ca_data else None
    return _Trust(settings.ca_file, changed, digest, bool(settings.verify_certificate), settings.ca_data)


def tls_context(settings: ServerSettings) -> ssl.SSLContext:
    """The client context: system CAs plus ``ca_file`` and ``ca_data``; no checks at all when
    verification is off.

    Built once per trust setting and shared: loading the system CA store costs 30-300 ms, far
    more than the rest of an unchanged sync.  An ``SSLContext`` may wrap sockets from many
    threads at once; callers must not change a context they are given.
    """
    return _context(_trust(settings))


@functools.lru_cache(maxsize=64)
def _context(trust: _Trust) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if trust.ca_file:
        ctx.load_verify_locations(cafile=trust.ca_file)
    if trust.ca_data:
        ctx.load_verify_locations(cadata=trust.ca_data)
    if not trust.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def wrap_tls(
    sock: socket.socket, settings: ServerSettings, *, step: str = "tls", context: ssl.SSLContext | None = None
) -> ssl.SSLSocket:
    """Implicit TLS on a connected socket; the handshake is bounded by the socket's timeout.

    The server *name* is used for SNI and the certificate check even though
    the socket was connected to an address.
    """
    ctx = context or tls_context(settings)
    try:
        return ctx.wrap_socket(sock, server_hostname=settings.host)
    except Exception as exc:
        sock.close()
        raise classify_exception(exc, settings, step) from None


_PLAINTEXT_REASONS = {
    "WRONG_VERSION_NUMBER",
    "HTTP_REQUEST",
    "UNKNOWN_PROTOCOL",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "UNEXPECTED_RECORD",
    "RECORD_TOO_LARGE",
}
_OLD_TLS_REASONS = {
    "UNSUPPORTED_PROTOCOL",
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "NO_PROTOCOLS_AVAILABLE",
    "NO_SHARED_CIPHER",
    "SSLV3_ALERT_HANDSHAKE_FAILURE",
    "DH_KEY_TOO_SMALL",
    "EE_KEY_TOO_SMALL",
}

# OpenSSL X509_V_ERR_* codes, as in ssl.SSLCertVerificationError.verify_code.
_CERT_CODES: dict[int, tuple[str, str | None]] = {
    9: (Detail.CERT_NOT_YET_VALID, None),
    10: (Detail.CERT_EXPIRED, "expired"),
    18: (Detail.CERT_SELF_SIGNED, "self_signed"),
    19: (Detail.CERT_SELF_SIGNED, "self_signed"),
    2: (Detail.CERT_UNTRUSTED, "untrusted"),
    20: (Detail.CERT_UNTRUSTED, "untrusted"),
    21: (Detail.CERT_UNTRUSTED, "untrusted"),
    23: (Detail.CERT_REVOKED, None),
    62: (Detail.CERT_HOSTNAME, "hostname"),
    64: (Detail.CERT_HOSTNAME, "hostname"),
}


def certificate_error(exc: ssl.SSLCertVerificationError, settings: ServerSettings, step: str) -> MailError:
    """One ``certificate`` error, with a detail per reason: expired, self-signed, untrusted, wrong name."""
    code = getattr(exc, "verify_code", None)
    message = getattr(exc, "verify_message", None) or str(exc)
    detail, variant = _CERT_CODES.get(code, (Detail.CERT_OTHER, None))
    hints = [VARIANT_HINTS[variant]] if variant else []
    return MailError(
        ErrorClass.CERTIFICATE,
        _proto(settings),
        step,
        raw=f"{message} (X509 error {code})",
        detail=detail.format(host=settings.host, reason=message),
        hints=hints,
    )


def _tls_port(settings: ServerSettings) -> str:
    ports = [p for p, sec in WELL_KNOWN_PORTS[Protocol(settings.protocol)].items() if sec is Security.TLS]
    return f" ({ports[0]})" if ports and settings.port not in ports else ""


def tls_error(exc: ssl.SSLError | OSError, settings: ServerSettings, step: str) -> MailError:
    """A failed handshake: plain text on the port, an outdated server, or the server hanging up."""
    proto = _proto(settings)
    reason = getattr(exc, "reason", None) or type(exc).__name__
    starttls = Security.parse(settings.security) is Security.STARTTLS
    if (
        isinstance(exc, ssl.SSLEOFError)
        or isinstance(exc, ConnectionError)
        or reason == "UNEXPECTED_EOF_WHILE_READING"
    ):
        detail = Detail.TLS_CLOSED
    elif reason in _OLD_TLS_REASONS:
        detail = Detail.TLS_OLD
    elif starttls:
        detail = Detail.STARTTLS_FAILED.format(reason=reason)
    elif reason in _PLAINTEXT_REASONS:
        detail = Detail.PLAINTEXT_PORT.format(port=settings.port, tls_port=_tls_port(settings))
    else:
        detail = Detail.TLS_FAILED.format(reason=reason)
    return MailError(ErrorClass.TLS, proto, step, raw=str(exc), detail=detail)


# --- the greeting and the implicit-TLS probe -------------------------------------------


def speaks_tls(
    family: int, sockaddr: tuple, host: str, timeout: float, register: Register | None = None
) -> bool:
    """Does the server at ``sockaddr`` complete (or at least answer) a TLS handshake?

    Used only to explain a missing greeting, so the certificate is not
    checked and a TLS alert counts as "speaks TLS" too.
    """
    if timeout <= 0:
        return False
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    if register is not None:
        register(sock)
    sock.settimeout(timeout)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        sock.connect(sockaddr)
        with ctx.wrap_socket(sock, server_hostname=host):
            return True
    except ssl.SSLError as exc:
        reason = str(getattr(exc, "reason", "") or "")
        return reason.startswith(("TLSV1_ALERT", "SSLV3_ALERT", "TLSV13_ALERT")) or reason in _OLD_TLS_REASONS
    except OSError:
        return False
    finally:
        sock.close()


def await_greeting(
    sock: socket.socket, settings: ServerSettings, *, step: str = "connect", register: Register | None = None
) -> None:
    """Wait (up to ``settings.timeout``) until the server's first bytes arrive, without reading them.

    If nothing came after a short wait the port may expect implicit TLS: a
    second connection to the same address tries a TLS handshake, and if that
    works the error is ``tls`` with the fix, not a ``timeout``.  Port 25 is
    never probed: it is never implicit TLS, and anti-spam filters there
    (postscreen) punish clients that talk before the greeting.
    """
    timeout = _timeout(settings)
    deadline = time.monotonic() + timeout
    probe_at = min(PROBE_AFTER, timeout / 2)
    probed = Protocol(settings.protocol) is Protocol.SMTP and settings.port == 25
    proto = _proto(settings)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise MailError(
                ErrorClass.TIMEOUT, proto, step, detail=Detail.GREETING_TIMEOUT.format(timeout=timeout)
            )
        sock.settimeout(remaining if probed else min(remaining, probe_at))
        try:
            first = sock.recv(1, socket.MSG_PEEK)
        except TimeoutError:
            if not probed:
                probed = True
                budget = min(PROBE_TIMEOUT, deadline - time.monotonic())
                if speaks_tls(sock.family, sock.getpeername(), settings.host, budget, register):
                    security = Security.parse(settings.security)
                    name = "STARTTLS" if security is Security.STARTTLS else "None"
                    raise MailError(
                        ErrorClass.TLS,
                        proto,
                        step,
                        raw=f"no greeting; a TLS handshake on port {settings.port} succeeded",
                        detail=Detail.IMPLICIT_TLS_EXPECTED.format(security=name),
                    ) from None
            continue
        except OSError as exc:
            raise classify_exception(exc, settings, step) from None
        if not first:
            raise MailError(
                ErrorClass.PROTOCOL,
                proto,
                step,
                raw="connection closed before the greeting",
                detail=Detail.CLOSED,
            )
        sock.settimeout(timeout)
        return


# --- classification --------------------------------------------------------------------


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it (libraries wrap socket errors in their own)."""
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 8:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def find_cause(exc: BaseException, kind: type | tuple[type, ...]) -> BaseException | None:
    return next((e for e in _chain(exc) if isinstance(e, kind)), None)


def classify_exception(
    exc: BaseException, settings: ServerSettings, step: str, secrets: list[str] | tuple = ()
) -> MailError:
    """The taxonomy class of a network-level failure (TLS, certificate, timeout, reset, ...).

    Protocol clients first try their own protocol knowledge (a ``NO`` to
    LOGIN is ``auth``), then fall back to this; a reset or end of stream during
    ``login`` is ``server_error``, never ``auth``.
    """
    proto = _proto(settings)
    if isinstance(exc, MailError):
        return exc
    cert = find_cause(exc, ssl.SSLCertVerificationError)
    if cert is not None:
        return certificate_error(cert, settings, step)
    tls = find_cause(exc, ssl.SSLError)
    if tls is not None and not isinstance(tls, ssl.SSLZeroReturnError):
        return tls_error(tls, settings, step)
    if find_cause(exc, TimeoutError) is not None or find_cause(exc, socket.timeout) is not None:
        return MailError(
            ErrorClass.TIMEOUT,
            proto,
            step,
            detail=Detail.READ_TIMEOUT.format(timeout=_timeout(settings), step=step),
        )
    if step == "tls" and find_cause(exc, (ConnectionError, EOFError)) is not None:
        return MailError(ErrorClass.TLS, proto, step, raw=redact(str(exc), secrets), detail=Detail.TLS_CLOSED)
    if step == "login" and find_cause(exc, (ConnectionError, EOFError)) is not None:
        # A server that hangs up on a sign-in has not said the password is wrong.
        return MailError(
            ErrorClass.SERVER_ERROR, proto, step, raw=redact(str(exc), secrets), detail=Detail.LOGIN_CLOSED
        )
    if find_cause(exc, (ConnectionError, EOFError)) is not None:
        return MailError(
            ErrorClass.PROTOCOL, proto, step, raw=redact(str(exc), secrets), detail=Detail.CLOSED
        )
    os_error = find_cause(exc, OSError)
    if os_error is not None and os_error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return MailError(ErrorClass.UNREACHABLE, proto, step, raw=str(os_error))
    if os_error is not None and os_error.errno == errno.ECONNREFUSED:
        return MailError(ErrorClass.REFUSED, proto, step, raw=str(os_error))
    text = redact(str(exc) or type(exc).__name__, secrets)
    return MailError(ErrorClass.PROTOCOL, proto, step, raw=text)
