"""A real SMTP submission server (aiosmtpd) that records what it receives.

Three listeners on free loopback ports, like a real provider:

* ``starttls_port`` (587-style): STARTTLS offered and required before any
  other command, AUTH only after it;
* ``smtps_port`` (465-style): implicit TLS, AUTH right away;
* ``plain_port`` (optional): no TLS at all, AUTH offered in clear text, so a
  client can be tested for refusing to send a password when STARTTLS is missing.

MAIL FROM needs a login on the TLS ports (``auth_required``) but not on the plain one.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .dovecot import DEFAULT_USERS
from .net import free_ports

HOST = "127.0.0.1"

#: aiosmtpd's authenticator signature: (server, session, envelope, mechanism, auth_data) -> AuthResult.
Authenticator = Callable[[SMTP, Session, Envelope, str, Any], AuthResult]


@dataclass(frozen=True)
class ReceivedMessage:
    """One accepted message, as the server saw it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None
    port: int
    tls: bool


def _login_name(auth_data: Any) -> str | None:
    if isinstance(auth_data, LoginPassword):
        return auth_data.login.decode("utf-8", "replace")
    return None if auth_data is None else str(auth_data)


class _Handler:
    """Enforces login before MAIL where required and appends every message to the server's list.

    The login check lives here rather than in aiosmtpd's ``auth_required``, which on
    the implicit-TLS port (where it sees no STARTTLS layer) warns on every connection.
    """

    def __init__(self, server: SMTPServer, port_name: str, auth_required: bool) -> None:
        self.server, self.port_name, self.auth_required = server, port_name, auth_required

    async def handle_MAIL(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.auth_required and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        port = getattr(self.server, self.port_name)
        message = ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            data=envelope.original_content or b"",
            login=_login_name(session.auth_data) if session.authenticated else None,
            port=port,
            tls=smtp.transport is not None and smtp.transport.get_extra_info("ssl_object") is not None,
        )
        with self.server._lock:
            self.server.messages.append(message)
        return "250 2.0.0 Message accepted"


class SMTPServer:
    """aiosmtpd controllers sharing one user table and one ``messages`` list.

    ``users`` maps login to password (AUTH PLAIN and LOGIN); pass ``authenticator``
    to replace the check entirely (aiosmtpd's callback; return
    ``AuthResult(success=True, auth_data=login)``).
    """

    def __init__(
        self,
        cert: tuple[str | Path, str | Path],
        users: dict[str, str] | None = None,
        *,
        plain: bool = True,
        auth_required: bool = True,
        authenticator: Authenticator | None = None,
        hostname: str = "localhost",
    ) -> None:
        self.cert = (Path(cert[0]), Path(cert[1]))
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.plain = plain
        self.auth_required = auth_required
        self.authenticator = authenticator or self._check_password
        self.hostname = hostname
        self.host = HOST
        self.messages: list[ReceivedMessage] = []
        self.starttls_port = self.smtps_port = self.plain_port = None
        self._lock = threading.Lock()
        self._controllers: list[Controller] = []

    def _check_password(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode("utf-8", "replace")
            if login in self.users and self.users[login].encode() == auth_data.password:
                return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)

    @property
    def ports(self) -> dict[str, int | None]:
        return {"starttls": self.starttls_port, "smtps": self.smtps_port, "plain": self.plain_port}

    def start(self) -> SMTPServer:
        """Bind the listeners; aiosmtpd's Controller waits until each answers."""
        if self._controllers:
            return self
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(str(self.cert[0]), str(self.cert[1]))
        ports = free_ports(3 if self.plain else 2, self.host)
        self.starttls_port, self.smtps_port = ports[:2]
        self.plain_port = ports[2] if self.plain else None
        common = dict(hostname=self.host, server_hostname=self.hostname, authenticator=self.authenticator)
        try:
            self._add(
                Controller(
                    _Handler(self, "starttls_port", self.auth_required),
                    port=self.starttls_port,
                    tls_context=tls,
                    require_starttls=True,
                    **common,
                )
            )
            # With implicit TLS aiosmtpd sees no STARTTLS layer, so it must not demand one for AUTH.
            self._add(
                Controller(
                    _Handler(self, "smtps_port", self.auth_required),
                    port=self.smtps_port,
                    ssl_context=tls,
                    auth_require_tls=False,
                    **common,
                )
            )
            if self.plain:
                self._add(
                    Controller(
                        _Handler(self, "plain_port", False),
                        port=self.plain_port,
                        auth_require_tls=False,
                        **common,
                    )
                )
        except BaseException:
            self.stop()
            raise
        return self

    def _add(self, controller: Controller) -> None:
        controller.start()
        self._controllers.append(controller)

    def stop(self) -> None:
        """Stop every listener; safe to call twice."""
        while self._controllers:
            self._controllers.pop().stop()

    def clear(self) -> None:
        """Forget received messages (between tests)."""
        with self._lock:
            self.messages.clear()

    def __enter__(self) -> SMTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
