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

import asyncio
import base64
import json
import ssl
import threading
import urllib.parse
import urllib.request
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
        # Not ``self.auth_required``: aiosmtpd offers every handler attribute named ``auth_*`` as
        # a SASL mechanism (it advertised "AUTH LOGIN PLAIN required").
        self.server, self.port_name, self.login_required = server, port_name, auth_required

    async def handle_MAIL(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.login_required and not session.authenticated:
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


def introspect(introspection_url: str, token: str, timeout: float = 10.0) -> dict:
    """RFC 7662: POST the token to ``introspection_url`` (``http://id:secret@host/...``, Basic auth)."""
    parts = urllib.parse.urlsplit(introspection_url)
    url = urllib.parse.urlunsplit(
        (parts.scheme, f"{parts.hostname}:{parts.port}", parts.path, parts.query, "")
    )
    req = urllib.request.Request(url, data=urllib.parse.urlencode({"token": token}).encode(), method="POST")
    if parts.username:
        pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        req.add_header("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def _sasl_fields(blob: bytes) -> tuple[str | None, str | None]:
    """(user, bearer token) from an XOAUTH2 (``user=U^Aauth=Bearer T^A^A``) or OAUTHBEARER
    (``n,a=U,^Aauth=Bearer T^A^A``) initial response."""
    text = blob.decode("utf-8", "replace")
    user = token = None
    head, _, rest = text.partition("\1")
    if head.startswith(("n,", "y,", "p=")):  # OAUTHBEARER: GS2 header first
        for part in head.split(","):
            if part.startswith("a="):
                user = part[2:].replace("=2C", ",").replace("=3D", "=")
        pairs = rest
    else:
        pairs = text
    for pair in pairs.split("\1"):
        key, _, value = pair.partition("=")
        if key == "user":
            user = value
        elif key == "auth" and value[:7].lower() == "bearer ":
            token = value[7:]
    return user, token


class _OAuthHandler(_Handler):
    """Adds XOAUTH2 and OAUTHBEARER (aiosmtpd picks up handler ``auth_<MECH>`` methods),
    checked against the server's introspection endpoint: the token must be active and its
    ``email`` must equal the user named in the SASL message.  A refused token gets the
    providers' error challenge (base64 JSON), then 535 once the client answers it."""

    async def auth_XOAUTH2(self, smtp: SMTP, args: list[str]) -> AuthResult:
        return await self._oauth(smtp, args, "XOAUTH2")

    async def auth_OAUTHBEARER(self, smtp: SMTP, args: list[str]) -> AuthResult:
        return await self._oauth(smtp, args, "OAUTHBEARER")

    async def _oauth(self, smtp: SMTP, args: list[str], mechanism: str) -> AuthResult:
        if len(args) > 1:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except ValueError:
                await smtp.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            blob = await smtp.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)
        user, token = _sasl_fields(blob)
        ok = False
        if user and token:
            loop = asyncio.get_running_loop()
            try:
                info = await loop.run_in_executor(
                    None, introspect, self.server.oauth2_introspection_url, token
                )
                ok = info.get("active") is True and info.get("email") == user
            except OSError:
                ok = False
        self.server._record_auth(mechanism, user, ok)
        if ok:
            return AuthResult(success=True, auth_data=user)
        if mechanism == "XOAUTH2":
            error = {"status": "401", "schemes": "bearer", "scope": "mail"}
        else:
            error = {"status": "invalid_token", "schemes": "bearer", "scope": "mail"}
        answer = await smtp.challenge_auth(json.dumps(error))
        if not isinstance(answer, bytes):
            return AuthResult(success=False, handled=True)  # the client aborted with '*': 501 sent
        return AuthResult(success=False, handled=False, message="535 5.7.8 Username and token not accepted")


class SMTPServer:
    """aiosmtpd controllers sharing one user table and one ``messages`` list.

    ``users`` maps login to password (AUTH PLAIN and LOGIN); pass ``authenticator``
    to replace the check entirely (aiosmtpd's callback; return
    ``AuthResult(success=True, auth_data=login)``).  ``oauth2_introspection_url`` adds
    XOAUTH2 and OAUTHBEARER (limit them with ``oauth2_mechanisms``), tokens checked there;
    ``auth_attempts`` records ``(mechanism, user, success)`` for each OAuth2 login.
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
        oauth2_introspection_url: str | None = None,
        oauth2_mechanisms: tuple[str, ...] = ("XOAUTH2", "OAUTHBEARER"),
        offer_auth: bool = True,
    ) -> None:
        self.cert = (Path(cert[0]), Path(cert[1]))
        #: False: the implicit-TLS port is a relay that offers no AUTH at all and takes mail
        #: without a login (aiosmtpd never advertises AUTH there when it "requires TLS" for it).
        self.offer_auth = offer_auth
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.plain = plain
        self.auth_required = auth_required
        self.authenticator = authenticator or self._check_password
        self.hostname = hostname
        self.oauth2_introspection_url = oauth2_introspection_url
        unknown = set(oauth2_mechanisms) - {"XOAUTH2", "OAUTHBEARER"}
        if unknown:
            raise ValueError(f"unknown OAuth2 mechanisms {sorted(unknown)}")
        self.oauth2_mechanisms = tuple(oauth2_mechanisms)
        self.auth_attempts: list[tuple[str, str | None, bool]] = []
        self.host = HOST
        self.messages: list[ReceivedMessage] = []
        self.starttls_port = self.smtps_port = self.plain_port = None
        self._lock = threading.Lock()
        self._controllers: list[Controller] = []

    def _record_auth(self, mechanism: str, user: str | None, success: bool) -> None:
        with self._lock:
            self.auth_attempts.append((mechanism, user, success))

    def _handler(self, port_name: str, auth_required: bool) -> _Handler:
        if self.oauth2_introspection_url:
            return _OAuthHandler(self, port_name, auth_required)
        return _Handler(self, port_name, auth_required)

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
        if self.oauth2_introspection_url:
            off = [m for m in ("XOAUTH2", "OAUTHBEARER") if m not in self.oauth2_mechanisms]
            if off:
                common["auth_exclude_mechanism"] = off
        try:
            self._add(
                Controller(
                    self._handler("starttls_port", self.auth_required),
                    port=self.starttls_port,
                    tls_context=tls,
                    require_starttls=True,
                    **common,
                )
            )
            # With implicit TLS aiosmtpd sees no STARTTLS layer, so it must not demand one for AUTH.
            self._add(
                Controller(
                    self._handler("smtps_port", self.auth_required and self.offer_auth),
                    port=self.smtps_port,
                    ssl_context=tls,
                    auth_require_tls=not self.offer_auth,
                    **common,
                )
            )
            if self.plain:
                self._add(
                    Controller(
                        self._handler("plain_port", False),
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
            self.auth_attempts.clear()

    def __enter__(self) -> SMTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
