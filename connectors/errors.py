"""The error taxonomy: every failure is classified before it reaches a person.

A protocol client raises :class:`MailError` with one :class:`ErrorClass`; the
class carries one plain sentence, a generic fix hint and the field to correct.
Providers add their own hints through the ``mailroom_diagnosis_hints`` hook.
The raw server text is kept too, with secrets already removed.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from connectors.i18n import N_


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
    SERVER_ERROR = "server_error"


#: The server explicitly refused the credentials or the way to present them.  Only these make a
#: mailbox "Authentication error", which stops its periodic sync until someone fixes it.
AUTH_CLASSES = frozenset({ErrorClass.AUTH, ErrorClass.AUTH_METHOD})
#: Failures that may well be gone on the next try, unchanged: jobs retry them and the mailbox
#: stays due for its periodic sync.  ``server_error`` (the server failed or hung up, even in the
#: middle of a sign-in) is one of them: it says nothing about the password.
TRANSIENT_CLASSES = frozenset(
    {
        ErrorClass.TIMEOUT,
        ErrorClass.REFUSED,
        ErrorClass.UNREACHABLE,
        ErrorClass.THROTTLED,
        ErrorClass.SERVER_ERROR,
    }
)


#: The fix for a refused OAuth2 access token: there is no password to correct.
OAUTH2_HINT = (
    N_("Sign in again with the provider: the sign-in may have been revoked, or the OAuth2 application "
    "may lack the mail scope.")
)
OAUTH2_REFUSED = N_("The provider refused the OAuth2 access token.")
#: The fix when an SMTP server offers no AUTH at all while the mailbox signs in: it is a relay.
SMTP_NO_AUTH_HINT = (
    N_('If this server accepts mail without a login (a relay inside your network), untick '
    '"SMTP requires authentication"; otherwise check that this is the submission port.')
)
#: Hints of the fields that are not a server setting (``MailError.fix_field``).
FIELD_HINTS: dict[str, str] = {"oauth2": OAUTH2_HINT, "smtp_requires_auth": SMTP_NO_AUTH_HINT}

#: class -> (sentence, hint, field to correct)
DESCRIPTIONS: dict[ErrorClass, tuple[str, str, str]] = {
    ErrorClass.DNS: (
        N_("The host name could not be found."),
        N_("Check the spelling of the server name."),
        "host",
    ),
    ErrorClass.REFUSED: (
        N_("The connection was refused."),
        N_("The server is reachable but nothing listens on this port: check the port number."),
        "port",
    ),
    ErrorClass.UNREACHABLE: (
        N_("This host cannot be reached."),
        N_("Check the server name and that the network (firewall, VPN) lets this machine reach it."),
        "host",
    ),
    ErrorClass.TIMEOUT: (
        N_("The server did not answer in time."),
        N_("Check the host and port; a firewall may be dropping the connection."),
        "port",
    ),
    ErrorClass.TLS: (
        N_("A secure connection could not be set up. The connection protection does not match this port."),
        N_("Use TLS on ports 993, 995 and 465; STARTTLS on ports 143, 110, 587 and 25."),
        "security",
    ),
    ErrorClass.CERTIFICATE: (
        N_("The server's certificate is not trusted."),
        N_("Ask the administrator of the mail server to install a valid certificate, or check the host name."),
        "host",
    ),
    ErrorClass.STARTTLS_MISSING: (
        N_("The server does not offer STARTTLS, so the connection cannot be protected."),
        N_("Choose TLS on the TLS port of the server, or ask for STARTTLS to be enabled. "
        "Mailroom never falls back to an unprotected connection by itself."),
        "security",
    ),
    ErrorClass.AUTH: (
        N_("Authentication failed due to incorrect credentials."),
        N_("Check the login and password."),
        "password",
    ),
    ErrorClass.AUTH_METHOD: (
        N_("Authentication is not possible: the server does not offer a sign-in method Mailroom can use here."),
        N_("The server may allow password sign-in only over TLS, or only with OAuth2."),
        "security",
    ),
    ErrorClass.THROTTLED: (
        N_("The server is limiting connections from this account for now."),
        N_("Wait a few minutes and try again; check the number of clients using the mailbox."),
        "",
    ),
    ErrorClass.PROTOCOL: (
        N_("The server answered something unexpected."),
        N_("Check that this port serves the expected protocol (IMAP, POP3 or SMTP)."),
        "port",
    ),
    ErrorClass.FOLDER_MISSING: (
        N_("The folder no longer exists on the server."),
        N_("It was deleted or renamed on the server (or by another mail program): remove it from the "
        "synced folders on the mailbox's folder page, or, if it was the Sent or Trash folder, pick "
        "another one there."),
        "folder",
    ),
    ErrorClass.FORBIDDEN_ADDRESS: (
        N_("This server address is not allowed."),
        N_("The host resolves to an internal address. An administrator can allow it in the settings."),
        "host",
    ),
    ErrorClass.SERVER_ERROR: (
        N_("The mail server had a problem on its side and could not finish the request."),
        N_("This is usually temporary and Mailroom tries again by itself; if it lasts, ask the mail "
        "server's administrator to look at the server's log."),
        "",
    ),
}


class Detail:
    """Precise sentences for the variants of a class (``MailError.detail``).

    The class sentence stays general ("The server's certificate is not
    trusted."); these say which of the known situations it is, because the fix
    differs: an expired certificate is the server's problem, a self-signed one
    may need the company CA, a hostname mismatch usually means a typo.
    """

    DNS_MISSING = N_("The host name {host} could not be found.")
    DNS_SLOW = N_("The name server did not answer for {host} within {timeout:g} s.")
    DNS_TEMPORARY = N_("The name server could not answer for {host} right now (temporary failure).")
    FORBIDDEN = (
        N_("{host} resolves to {address}, a {reason} address, which manually entered servers may not use.")
    )
    FORBIDDEN_LITERAL = N_("{address} is a {reason} address, which manually entered servers may not use.")
    CONNECT_TIMEOUT = N_("The connection to {address} port {port} was not accepted within {timeout:g} s.")
    GREETING_TIMEOUT = N_("The server accepted the connection but sent no greeting within {timeout:g} s.")
    READ_TIMEOUT = N_("The server did not answer within {timeout:g} s ({step}).")
    BUDGET = N_("The whole test took longer than {budget:g} s and was stopped.")
    CLOSED = (
        N_("The server has closed the connection unexpectedly. Check configuration served on this port number.")
    )
    IMPLICIT_TLS_EXPECTED = (
        N_("This port expects TLS from the first byte (implicit TLS); choose TLS instead of {security}.")
    )
    PLAINTEXT_PORT = (
        N_("The server answered in plain text: this port does not use TLS from the first byte. "
        "Choose STARTTLS (or None) for port {port}, or use the TLS port{tls_port}.")
    )
    TLS_CLOSED = N_("The server closed the connection during the TLS handshake.")
    TLS_OLD = N_("The server offers only an outdated TLS version or cipher, which Mailroom refuses.")
    TLS_FAILED = N_("The TLS handshake failed ({reason}).")
    STARTTLS_FAILED = N_("The server offered STARTTLS but the TLS handshake after it failed ({reason}).")
    STARTTLS_REFUSED = N_("The server refused the STARTTLS command.")
    CERT_EXPIRED = N_("The server's certificate has expired.")
    CERT_NOT_YET_VALID = N_("The server's certificate is not valid yet (check this machine's clock too).")
    CERT_SELF_SIGNED = N_("The server's certificate is self-signed: no trusted authority vouches for it.")
    CERT_UNTRUSTED = N_("The server's certificate was issued by an authority that is not trusted here.")
    CERT_HOSTNAME = N_("The server's certificate is not valid for the name {host} (hostname mismatch).")
    CERT_REVOKED = N_("The server's certificate has been revoked.")
    CERT_OTHER = N_("The server's certificate could not be verified ({reason}).")
    LOGINDISABLED = N_("The server does not allow password sign-in on an unprotected connection (LOGINDISABLED).")
    PLAINTEXT_DISALLOWED = N_("The server does not allow password sign-in on an unprotected connection.")
    NO_USER_COMMAND = N_("The server does not offer USER/PASS sign-in on this connection.")
    NO_SMTP_AUTH = N_("The server offers no SMTP AUTH on this connection.")
    NO_SMTP_AUTH_PLAIN = (
        N_("The server offers SMTP AUTH only with methods Mailroom does not use here ({methods}).")
    )
    NO_OAUTH2 = N_("The server does not offer OAuth2 sign-in (XOAUTH2 or OAUTHBEARER).")
    NO_SECRET = N_("No password or token is stored for this login.")
    NOT_PROTOCOL = N_("The server on this port does not speak {protocol}: check the port number.")
    FOLDER_GONE = N_('The folder "{folder}" no longer exists on the server.')
    FOLDER_REFUSED = N_('The server refused to open the folder "{folder}" ({raw}).')
    LOGIN_CLOSED = N_("The server closed the connection during sign-in; this is not a password problem.")
    LOGIN_UNAVAILABLE = (
        N_("The server could not check the password right now (a temporary failure on its side); "
        "this is not a password problem.")
    )


#: Variant hints, added before the class hint.
VARIANT_HINTS: dict[str, str] = {
    "self_signed": N_("If the server uses a certificate from an internal authority, an administrator can "
    "add that authority's certificate; or disable certificate validation for this mailbox (not recommended)."),
    "untrusted": N_("If the server uses a certificate from an internal authority, an administrator can "
    "add that authority's certificate."),
    "hostname": N_("Use the host name the certificate is issued for (often the provider's name, not your "
    "own domain)."),
    "expired": N_("The server's administrator must renew the certificate."),
    "plaintext_auth": N_("Choose STARTTLS or TLS for this server."),
}

#: Words servers use when they are limiting a client rather than rejecting it.
THROTTLE_WORDS = re.compile(
    r"\[(LIMIT|IN-?USE|LOGIN-DELAY)\]|too many|rate.?limit|try again later|"
    r"throttl|slow down|exceeded|temporarily (blocked|locked|unavailable)",
    re.IGNORECASE,
)
#: Response codes for trouble on the server's side, not a verdict on the client (RFC 5530
#: UNAVAILABLE, SERVERBUG, CONTACTADMIN; RFC 3206 SYS/TEMP, SYS/PERM for POP3).
SERVER_TROUBLE_CODES = re.compile(r"\[(UNAVAILABLE|SERVERBUG|CONTACTADMIN|SYS/TEMP|SYS/PERM)\]", re.I)

#: A server's words for "no such folder" (RFC 5530 NONEXISTENT, RFC 3501 TRYCREATE, Dovecot,
#: Cyrus, Exchange, Courier spellings).
FOLDER_MISSING_WORDS = re.compile(
    r"\[(NONEXISTENT|TRYCREATE)\]|doesn'?t exist|does not exist|no such (mailbox|folder)|"
    r"unknown (mailbox|folder)|mailbox not found|folder not found",
    re.IGNORECASE,
)

#: Longest raw server text kept on an error.
RAW_LIMIT = 500


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret form replaced by ``***`` (longest forms first)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Server text made fit for ``MailError.raw``: scrubbed, trimmed, cut to RAW_LIMIT characters.

    A server that echoes the command it rejected must not put the password on
    the page, in the log or in a job result.
    """
    text = scrub(text, secrets).strip()
    return text if len(text) <= RAW_LIMIT else text[: RAW_LIMIT - 1] + "…"


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
    #: The field to correct when it is not the class's usual one (``oauth2``: sign in again).
    fix_field: str = ""

    def __post_init__(self):
        self.error_class = ErrorClass(self.error_class)
        self.protocol = str(getattr(self.protocol, "value", self.protocol))
        super().__init__(self.message)

    def __reduce__(self):
        # Exception pickling would rebuild from args (the message) only; RQ and
        # multiprocessing need the fields back.
        return (
            self.__class__,
            (
                self.error_class,
                self.protocol,
                self.step,
                self.raw,
                self.detail,
                list(self.hints),
                self.fix_field,
            ),
        )

    @property
    def message(self) -> str:
        return self.detail or DESCRIPTIONS[self.error_class][0]

    @property
    def hint(self) -> str:
        return FIELD_HINTS.get(self.fix_field) or DESCRIPTIONS[self.error_class][1]

    @property
    def field(self) -> str:
        name = self.fix_field or DESCRIPTIONS[self.error_class][2]
        return f"{self.protocol}.{name}" if name in ("host", "port", "security") else name

    def as_dict(self) -> dict:
        return {
            "class": self.error_class.value,
            "protocol": self.protocol,
            "step": self.step,
            "message": self.message,
            "sentence": DESCRIPTIONS[self.error_class][0],
            "detail": self.detail,
            "hints": [*self.hints, self.hint],
            "field": self.field,
            "raw": self.raw,
        }

    def __str__(self) -> str:
        return f"{self.protocol.upper()} {self.step}: {self.message}" + (f" ({self.raw})" if self.raw else "")


def folder_error(protocol: str, step: str, raw: str, folder: str) -> MailError:
    """A server's refusal of a folder command (STATUS, SELECT, APPEND) as a classified error.

    ``folder_missing`` with the folder's readable name when the server says it does not exist
    (deleted or renamed elsewhere); anything else is ``protocol`` with the server's words.
    """
    if FOLDER_MISSING_WORDS.search(raw):
        return MailError(
            ErrorClass.FOLDER_MISSING,
            protocol,
            step,
            raw=redact(raw),
            detail=Detail.FOLDER_GONE.format(folder=folder),
        )
    raw = redact(raw)
    return MailError(
        ErrorClass.PROTOCOL,
        protocol,
        step,
        raw=raw,
        detail=Detail.FOLDER_REFUSED.format(folder=folder, raw=raw),
    )
