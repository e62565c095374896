"""One settings type shared by the IMAP, POP3 and SMTP clients.

Server addresses come from people as free text (``smtp.example.com:465``,
``ssl://smtps.aruba.it``, ``[2001:db8::1]:993``).  :func:`parse_server` turns
that text into a host, a port and the security it implies, or raises
:class:`ServerParseError` naming what is wrong, so that nothing half-parsed is
ever stored.
"""

from __future__ import annotations

import base64
import enum
import ipaddress
import re
from dataclasses import asdict, dataclass, field

from connectors.addresses import AddressPolicy
from connectors.i18n import N_


class Security(str, enum.Enum):
    """How a connection is protected: nothing, upgraded with STARTTLS, or TLS from the first byte."""

    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"

    @classmethod
    def parse(cls, value: str | Security) -> Security:
        try:
            return cls(value.value if isinstance(value, Security) else str(value).strip().lower())
        except ValueError:
            raise ValueError("must be one of none, starttls, tls") from None


class Protocol(str, enum.Enum):
    IMAP = "imap"
    POP3 = "pop3"
    SMTP = "smtp"


#: The ports people use, and what each one means.  The forms show these.
WELL_KNOWN_PORTS: dict[Protocol, dict[int, Security]] = {
    Protocol.IMAP: {143: Security.STARTTLS, 993: Security.TLS},
    Protocol.POP3: {110: Security.STARTTLS, 995: Security.TLS},
    Protocol.SMTP: {25: Security.STARTTLS, 587: Security.STARTTLS, 465: Security.TLS},
}

#: URL-like prefixes people paste from provider help pages, and what they mean.
_SCHEMES: dict[str, tuple[Security, Protocol | None]] = {
    "ssl": (Security.TLS, None),
    "tls": (Security.TLS, None),
    "imaps": (Security.TLS, Protocol.IMAP),
    "pop3s": (Security.TLS, Protocol.POP3),
    "smtps": (Security.TLS, Protocol.SMTP),
    "starttls": (Security.STARTTLS, None),
    "imap": (Security.STARTTLS, Protocol.IMAP),
    "pop3": (Security.STARTTLS, Protocol.POP3),
    "smtp": (Security.STARTTLS, Protocol.SMTP),
    "submission": (Security.STARTTLS, Protocol.SMTP),
}

_DEFAULT_PORT: dict[tuple[Protocol, Security], int] = {
    (Protocol.IMAP, Security.TLS): 993,
    (Protocol.IMAP, Security.STARTTLS): 143,
    (Protocol.IMAP, Security.NONE): 143,
    (Protocol.POP3, Security.TLS): 995,
    (Protocol.POP3, Security.STARTTLS): 110,
    (Protocol.POP3, Security.NONE): 110,
    (Protocol.SMTP, Security.TLS): 465,
    (Protocol.SMTP, Security.STARTTLS): 587,
    (Protocol.SMTP, Security.NONE): 25,
}

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class ServerParseError(ValueError):
    """The text given for a server is not a usable ``host:port``."""


@dataclass(frozen=True)
class ParsedServer:
    host: str
    port: int
    #: The security the text itself implies (``ssl://`` means TLS), if any.
    implied_security: Security | None = None


def normalize_host(host: str) -> str:
    """Return ``host`` lower-cased and IDNA-encoded, or raise ServerParseError."""
    host = host.strip().rstrip(".")
    if not host:
        raise ServerParseError(N_("Enter a host name, e.g. imap.example.com."))
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:  # IPv6 literal
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ServerParseError(N_("{host!r} is not a valid IPv6 address.").format(host=host)) from None
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ServerParseError(N_("{host!r} is not a valid host name.").format(host=host)) from None
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in ascii_host.split(".")):
        raise ServerParseError(N_("{host!r} is not a valid host name.").format(host=host))
    return ascii_host


def parse_server(text: str, protocol: Protocol | str) -> ParsedServer:
    """Parse ``host:port`` (or ``scheme://host[:port]``) typed for ``protocol``.

    A port may be left out only when a scheme says which one is meant
    (``ssl://smtps.aruba.it`` is port 465 for SMTP); otherwise the text is
    refused, because guessing between 143 and 993 is how people end up with a
    TLS mode that does not match the port.
    """
    protocol = Protocol(protocol)
    raw = (text or "").strip()
    if not raw:
        raise ServerParseError(N_("Enter the server as host:port, e.g. {protocol}.").format(protocol=example(protocol)))
    implied: Security | None = None
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$", raw)
    if m:
        scheme, raw = m.group(1).lower(), m.group(2)
        if scheme not in _SCHEMES:
            raise ServerParseError(N_("Unknown prefix {scheme}://; use host:port, e.g. {protocol}.").format(scheme=scheme, protocol=example(protocol)))
        implied, scheme_protocol = _SCHEMES[scheme]
        if scheme_protocol is not None and scheme_protocol != protocol:
            raise ServerParseError(
                N_("{scheme}:// is a {value} address, not {value2}.").format(scheme=scheme, value=scheme_protocol.value.upper(), value2=protocol.value.upper())
            )
        raw = raw.rstrip("/")
    if "/" in raw or " " in raw or "@" in raw:
        raise ServerParseError(N_("{text!r} is not host:port, e.g. {protocol}.").format(text=text.strip(), protocol=example(protocol)))
    port_text: str | None = None
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0:
            raise ServerParseError(N_("An IPv6 address must be written as [address]:port."))
        host_part, rest = raw[: end + 1], raw[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ServerParseError(N_("An IPv6 address must be written as [address]:port."))
            port_text = rest[1:]
    elif raw.count(":") == 1:
        host_part, port_text = raw.split(":")
    elif raw.count(":") > 1:
        raise ServerParseError(N_("Write an IPv6 address in brackets: [address]:port."))
    else:
        host_part = raw
    host = normalize_host(host_part)
    if port_text is None or port_text == "":
        if implied is None:
            raise ServerParseError(N_("Add the port, e.g. {host}:{TLS}.").format(host=host, TLS=_DEFAULT_PORT[(protocol, Security.TLS)]))
        port = _DEFAULT_PORT[(protocol, implied)]
    else:
        if port_text[:1] in "+-" and port_text[1:].isdigit():  # a number, but a port is never signed
            raise ServerParseError(N_("The port must be between 1 and 65535."))
        if not port_text.isdigit():
            raise ServerParseError(N_("The port {port_text!r} is not a number.").format(port_text=port_text))
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise ServerParseError(N_("The port must be between 1 and 65535."))
    return ParsedServer(host=host, port=port, implied_security=implied)


def example(protocol: Protocol | str) -> str:
    protocol = Protocol(protocol)
    return {"imap": "imap.example.com:993", "pop3": "pop.example.com:995", "smtp": "smtp.example.com:465"}[
        protocol.value
    ]


def format_server(host: str, port: int) -> str:
    """The inverse of :func:`parse_server` for display and for edit forms."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_server_with_security(
    protocol: Protocol | str, host: str, port: int, security: Security | str
) -> str:
    """``host:port`` for an edit form whose only TLS control is a "Use TLS" box (SMTP).

    Such a box cannot tell TLS from STARTTLS, so the port decides; when the
    stored mode is not the one the port implies (implicit TLS on 2525, say),
    the text carries it as a prefix (``ssl://``, ``starttls://``) and saving
    the form unchanged keeps the mode instead of silently switching it.
    """
    text = format_server(host, port)
    security = Security.parse(security)
    implied = WELL_KNOWN_PORTS[Protocol(protocol)].get(port, Security.STARTTLS)
    if security == Security.NONE or security == implied:
        return text
    return ("ssl://" if security == Security.TLS else "starttls://") + text


def port_mismatch(protocol: Protocol | str, port: int, security: Security | str) -> str | None:
    """A warning when a well-known port is paired with the other TLS mode, else None."""
    expected = WELL_KNOWN_PORTS[Protocol(protocol)].get(port)
    security = Security.parse(security)
    if expected is None or security == Security.NONE or expected == security:
        return None
    return f"Port {port} normally uses {expected.value.upper()}, not {security.value.upper()}."


@dataclass(frozen=True)
class ServerSettings:
    """Everything a protocol client needs to reach one server (no credentials)."""

    protocol: Protocol
    host: str
    port: int
    security: Security = Security.TLS
    #: On by default; turning it off is shown as a standing warning by the web app.
    verify_certificate: bool = True
    #: Seconds for the connection and for every single read; also bounds DNS.
    timeout: float = 15.0
    #: Extra CA file for certificate checks, e.g. an internal CA (added to the system CAs).
    ca_file: str | None = None
    #: Extra CA certificates as PEM text (a corporate service's own trust), added the same way.
    ca_data: str | None = None
    extra: dict = field(default_factory=dict)
    #: Set for servers typed by a person: internal addresses are refused unless allowed.
    #: None for servers an administrator defined.
    address_policy: AddressPolicy | None = None
    #: The name Mailroom gives in SMTP EHLO; None means this machine's host name.
    helo_name: str | None = None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["protocol"] = Protocol(self.protocol).value
        d["security"] = Security.parse(self.security).value
        d["address_policy"] = self.address_policy.as_dict() if self.address_policy is not None else None
        return d


@dataclass(frozen=True)
class Credentials:
    """A login for one server: a password or an OAuth2 access token (or neither, for SMTP without AUTH).

    The secrets are left out of ``repr`` so that a logged object never shows them.
    """

    username: str
    password: str | None = field(default=None, repr=False)
    oauth2_token: str | None = field(default=None, repr=False)

    def secret_forms(self) -> list[str]:
        """Every form the secrets take on the wire, longest first, for scrubbing text.

        Structural masking of a transcript (``PASS ***``) is the first line of
        defence; this list is the second, for servers that echo what they got
        and for AUTH payloads (base64 of ``\\0user\\0password``, XOAUTH2 blobs).
        """
        forms: set[str] = set()
        user = self.username or ""
        for secret in (self.password, self.oauth2_token):
            if not secret:
                continue
            forms.add(secret)
            forms.add(secret.replace("\\", "\\\\").replace('"', '\\"'))  # IMAP quoted string
            forms.add(_b64(secret))
        if self.password:
            for blob in (f"\0{user}\0{self.password}", f"{user}\0{user}\0{self.password}"):
                forms.add(_b64(blob))
        if self.oauth2_token:
            forms.add(_b64(f"user={user}\1auth=Bearer {self.oauth2_token}\1\1"))
            forms.add(_b64(f"n,a={user},\1auth=Bearer {self.oauth2_token}\1\1"))
            forms.add(_b64("n,,\1auth=Bearer " + self.oauth2_token + "\1\1"))
        forms.update({f.rstrip("=") for f in list(forms) if f.endswith("=")})
        # Very short values would blank out ordinary words; structural masking covers them.
        return sorted((f for f in forms if len(f) >= 3), key=len, reverse=True)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")
