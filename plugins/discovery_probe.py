"""Discovery by probing: connect to the usual host names and ports and see who answers.

The last resort (``trylast``), as in Thunderbird: IMAP on ``imap.<domain>``,
``mail.<domain>`` and ``<domain>``, ports 993 (TLS) then 143 (STARTTLS); SMTP
on ``smtp.<domain>`` and ``mail.<domain>``, ports 465 (TLS) then 587
(STARTTLS).  All probes run in parallel; the preferred host and port that
worked wins.  A port counts only when the server greets properly and a TLS
handshake with a *valid certificate for that host name* succeeds: directly
on the TLS ports, after STARTTLS on the others, and STARTTLS is only tried
when the server advertises it.  Unencrypted servers are never suggested.

Every connection goes through the address guard (resolve with the context's
resolver, check every address, connect to the checked address).  Nothing is
sent but CAPABILITY/STARTTLS/LOGOUT or EHLO/STARTTLS/QUIT; no login.
"""

from __future__ import annotations

import socket
import ssl
import time

from connectors.discovery import (
    DiscoveryContext,
    DiscoveryError,
    connect_checked,
    first_in_order,
    remaining,
    run_all,
    wrap_tls,
)
from connectors.i18n import N_
from connectors.plugins import hookimpl
from connectors.presets import DiscoveredSettings, Endpoint
from connectors.settings import Security

DISCOVERY_SOURCE = "probe"

MAX_LINE = 8192

#: Why a probe found nothing (its note; stored in English, translated when shown).
WHY = {
    "lost": N_("{host}: connection lost ({error})"),
    "long_line": N_("{host}: a line longer than {limit} bytes"),
    "no_answer": N_("{host}: no answer in time"),
    "closed": N_("{host}: the server closed the connection"),
    "injected": N_("{host}: unexpected data before the TLS handshake"),
    "not_imap": N_("{host}: not an IMAP greeting: {text!r}"),
    "imap_plain": N_("{host}: IMAP without STARTTLS (not suggested: it would be unprotected)"),
    "starttls_refused": N_("{host}: STARTTLS refused: {text!r}"),
    "not_smtp": N_("{host}: not an SMTP reply: {text!r}"),
    "smtp_greeting": N_("{host}: SMTP greeting {code} {text}"),
    "ehlo": N_("{host}: EHLO answered {code}"),
    "smtp_plain": N_("{host}: SMTP without STARTTLS (not suggested: it would be unprotected)"),
    "starttls_answer": N_("{host}: STARTTLS answered {code} {text}"),
    "no_imap": N_("no IMAP server answered: {reasons}"),
    "no_smtp": N_("no SMTP server answered: {reasons}"),
    "timed_out": N_("timed out"),
}


class _Line:
    """Line-at-a-time reading on a socket, bounded by the probe's deadline."""

    def __init__(self, sock: socket.socket, host: str, deadline: float) -> None:
        self.sock = sock
        self.host = host
        self.deadline = deadline
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self._arm()
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise DiscoveryError(WHY["lost"].format(host=self.host, error=exc or type(exc).__name__)) from None

    def readline(self) -> str:
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE:
                raise DiscoveryError(WHY["long_line"].format(host=self.host, limit=MAX_LINE))
            self._arm()
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                raise DiscoveryError(WHY["no_answer"].format(host=self.host)) from None
            except OSError as exc:
                raise DiscoveryError(WHY["lost"].format(host=self.host, error=exc or type(exc).__name__)) from None
            if not chunk:
                raise DiscoveryError(WHY["closed"].format(host=self.host))
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def _arm(self) -> None:
        left = remaining(self.deadline)
        if left <= 0:
            raise DiscoveryError(WHY["no_answer"].format(host=self.host))
        self.sock.settimeout(left)

    def starttls(self, context: DiscoveryContext) -> None:
        if self.buffer:  # bytes after the "go ahead" would be injected plaintext
            raise DiscoveryError(WHY["injected"].format(host=self.host))
        self.sock = wrap_tls(context, self.sock, self.host, self.deadline)


def _imap(line: _Line, security: Security, context: DiscoveryContext) -> None:
    greeting = line.readline()
    if not greeting.upper().startswith(("* OK", "* PREAUTH")):
        raise DiscoveryError(WHY["not_imap"].format(host=line.host, text=greeting[:80]))
    if security is Security.TLS:
        line.send(b"a1 LOGOUT\r\n")
        return
    capabilities = ""
    upper = greeting.upper()
    if "[CAPABILITY " in upper:
        capabilities = upper.split("[CAPABILITY ", 1)[1].split("]", 1)[0]
    else:
        line.send(b"a1 CAPABILITY\r\n")
        while True:
            reply = line.readline()
            if reply.upper().startswith("* CAPABILITY "):
                capabilities = reply.upper()[len("* CAPABILITY ") :]
            elif reply.startswith("a1 "):
                break
    if "STARTTLS" not in capabilities.split():
        raise DiscoveryError(WHY["imap_plain"].format(host=line.host))
    line.send(b"a2 STARTTLS\r\n")
    while True:
        reply = line.readline()
        if reply.startswith("a2 "):
            break
    if not reply.upper().startswith("A2 OK"):
        raise DiscoveryError(WHY["starttls_refused"].format(host=line.host, text=reply[:80]))
    line.starttls(context)
    line.send(b"a3 LOGOUT\r\n")


def _smtp_reply(line: _Line) -> tuple[int, list[str]]:
    lines = []
    while True:
        text = line.readline()
        if len(text) < 3 or not text[:3].isdigit():
            raise DiscoveryError(WHY["not_smtp"].format(host=line.host, text=text[:80]))
        lines.append(text[4:])
        if text[3:4] != "-":
            return int(text[:3]), lines


def _smtp(line: _Line, security: Security, context: DiscoveryContext) -> None:
    code, text = _smtp_reply(line)
    if code != 220:
        raise DiscoveryError(WHY["smtp_greeting"].format(host=line.host, code=code, text=" ".join(text)[:80]))
    if security is Security.TLS:
        line.send(b"QUIT\r\n")
        return
    line.send(f"EHLO {context.helo_name}\r\n".encode("ascii", "replace"))
    code, extensions = _smtp_reply(line)
    if code != 250:
        raise DiscoveryError(WHY["ehlo"].format(host=line.host, code=code))
    if not any(e.upper().split()[:1] == ["STARTTLS"] for e in extensions[1:]):
        raise DiscoveryError(WHY["smtp_plain"].format(host=line.host))
    line.send(b"STARTTLS\r\n")
    code, text = _smtp_reply(line)
    if code != 220:
        raise DiscoveryError(WHY["starttls_answer"].format(host=line.host, code=code, text=" ".join(text)[:80]))
    line.starttls(context)
    line.send(b"QUIT\r\n")


def probe(
    context: DiscoveryContext, protocol: str, host: str, port: int, security: Security, deadline: float
) -> Endpoint:
    """Check that ``host:port`` speaks ``protocol`` with ``security`` and a valid certificate."""
    deadline = min(deadline, time.monotonic() + context.connect_timeout * 2)
    sock = connect_checked(context, host, port, min(deadline, time.monotonic() + context.connect_timeout))
    try:
        if security is Security.TLS:
            sock = wrap_tls(context, sock, host, deadline)
        line = _Line(sock, host, deadline)
        (_imap if protocol == "imap" else _smtp)(line, security, context)
        sock = line.sock
    finally:
        try:
            sock.close()
        except OSError:
            pass
    return Endpoint(host, port, security)


def _candidates(context: DiscoveryContext, domain: str, protocol: str) -> list[tuple[str, int, Security]]:
    hosts = context.probe_imap_hosts if protocol == "imap" else context.probe_smtp_hosts
    ports = context.probe_imap_ports if protocol == "imap" else context.probe_smtp_ports
    names = list(dict.fromkeys(h.format(domain=domain).lower() for h in hosts))
    return [(host, port, security) for host in names for port, security in ports]


@hookimpl(trylast=True)
def mailroom_discover_settings(
    email: str, domain: str, timeout: float, context: DiscoveryContext
) -> DiscoveredSettings | None:
    deadline = time.monotonic() + timeout
    reasons: dict[str, list[str]] = {"imap": [], "smtp": []}

    def search(protocol: str) -> Endpoint | None:
        def on_error(exc: BaseException) -> None:
            if isinstance(exc, ssl.SSLError | OSError | DiscoveryError):
                reasons[protocol].append(str(exc))
            else:
                reasons[protocol].append(f"{type(exc).__name__}: {exc}")

        calls = [
            (lambda h=h, p=p, s=s: probe(context, protocol, h, p, s, deadline))
            for h, p, s in _candidates(context, domain, protocol)
        ]
        return first_in_order(calls, deadline, on_error)

    imap_task, smtp_task = run_all([lambda: search("imap"), lambda: search("smtp")], deadline)
    imap = imap_task.value if imap_task.done and imap_task.error is None else None
    smtp = smtp_task.value if smtp_task.done and smtp_task.error is None else None
    if imap is None:
        context.note(WHY["no_imap"].format(reasons="; ".join(dict.fromkeys(reasons["imap"])) or WHY["timed_out"]))
        return None
    verified = {"imap": f"{imap.host}:{imap.port} {imap.security.value}"}
    if smtp is not None:
        verified["smtp"] = f"{smtp.host}:{smtp.port} {smtp.security.value}"
    else:
        context.note(WHY["no_smtp"].format(reasons="; ".join(dict.fromkeys(reasons["smtp"])) or WHY["timed_out"]))
    return DiscoveredSettings(
        imap=imap, smtp=smtp, source="probe", username_hint=email, extra={"verified": verified}
    )
