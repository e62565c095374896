"""The error taxonomy: every failure is classified before it reaches a person.

A protocol client raises :class:`MailError` with one :class:`ErrorClass`; the
class carries one plain sentence, a generic fix hint and the field to correct.
Providers add their own hints through the ``mailroom_diagnosis_hints`` hook.
The raw server text is kept too, with secrets already removed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ErrorClass(str, enum.Enum):
    DNS = "dns"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    TLS = "tls"
    CERTIFICATE = "certificate"
    STARTTLS_MISSING = "starttls_missing"
    AUTH = "auth"
    AUTH_METHOD = "auth_method"
    THROTTLED = "throttled"
    PROTOCOL = "protocol"
    FOLDER_MISSING = "folder_missing"
    FORBIDDEN_ADDRESS = "forbidden_address"


#: class -> (sentence, hint, field to correct)
DESCRIPTIONS: dict[ErrorClass, tuple[str, str, str]] = {
    ErrorClass.DNS: (
        "The host name could not be found.",
        "Check the spelling of the server name.",
        "host",
    ),
    ErrorClass.REFUSED: (
        "The connection was refused.",
        "The server is reachable but nothing listens on this port: check the port number.",
        "port",
    ),
    ErrorClass.UNREACHABLE: (
        "This host cannot be reached.",
        "Check the server name and that the network (firewall, VPN) lets this machine reach it.",
        "host",
    ),
    ErrorClass.TIMEOUT: (
        "The server did not answer in time.",
        "Check the host and port; a firewall may be dropping the connection.",
        "port",
    ),
    ErrorClass.TLS: (
        "A secure connection could not be set up. The connection protection does not match this port.",
        "Use TLS on ports 993, 995 and 465; STARTTLS on ports 143, 110, 587 and 25.",
        "security",
    ),
    ErrorClass.CERTIFICATE: (
        "The server's certificate is not trusted.",
        "Ask the administrator of the mail server to install a valid certificate, or check the host name.",
        "host",
    ),
    ErrorClass.STARTTLS_MISSING: (
        "The server does not offer STARTTLS, so the connection cannot be protected.",
        "Choose TLS on the TLS port of the server, or ask for STARTTLS to be enabled. "
        "Mailroom never falls back to an unprotected connection by itself.",
        "security",
    ),
    ErrorClass.AUTH: (
        "Authentication failed due to incorrect credentials.",
        "Check the login and password.",
        "password",
    ),
    ErrorClass.AUTH_METHOD: (
        "Authentication is not possible: the server does not offer a sign-in method Mailroom can use here.",
        "The server may allow password sign-in only over TLS, or only with OAuth2.",
        "security",
    ),
    ErrorClass.THROTTLED: (
        "The server is limiting connections from this account for now.",
        "Wait a few minutes and try again; check the number of clients using the mailbox.",
        "",
    ),
    ErrorClass.PROTOCOL: (
        "The server answered something unexpected.",
        "Check that this port serves the expected protocol (IMAP, POP3 or SMTP).",
        "port",
    ),
    ErrorClass.FOLDER_MISSING: (
        "A folder does not exist on the server.",
        "Refresh the folder list and check the folder mapping.",
        "folder",
    ),
    ErrorClass.FORBIDDEN_ADDRESS: (
        "This server address is not allowed.",
        "The host resolves to an internal address. An administrator can allow it in the settings.",
        "host",
    ),
}


@dataclass
class MailError(Exception):
    """A classified failure of one protocol step."""

    error_class: ErrorClass
    protocol: str
    step: str = ""
    raw: str = ""
    #: A more precise sentence when the class has variants (expired vs untrusted certificate).
    detail: str = ""
    hints: list[str] = field(default_factory=list)

    def __post_init__(self):
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return self.detail or DESCRIPTIONS[self.error_class][0]

    @property
    def hint(self) -> str:
        return DESCRIPTIONS[self.error_class][1]

    @property
    def field(self) -> str:
        name = DESCRIPTIONS[self.error_class][2]
        return f"{self.protocol}.{name}" if name in ("host", "port", "security") else name

    def as_dict(self) -> dict:
        return {
            "class": self.error_class.value,
            "protocol": self.protocol,
            "step": self.step,
            "message": self.message,
            "hints": [*self.hints, self.hint],
            "field": self.field,
            "raw": self.raw,
        }

    def __str__(self) -> str:
        return f"{self.protocol.upper()} {self.step}: {self.message}" + (f" ({self.raw})" if self.raw else "")
