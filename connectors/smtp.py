"""SMTP submission through smtplib, on a socket Mailroom opened itself.

:class:`_SMTP` is an ``smtplib.SMTP`` created without a host (so it does not
connect) that is handed the guarded socket from :mod:`connectors.net`;
``send``/``getreply`` also feed the transcript.  ``_host`` stays the server
*name*, which smtplib's ``starttls()`` uses for SNI and the certificate check.

AUTH is driven here rather than by ``smtplib.login()``: that one tries every
mechanism in turn (two failed logins count double against rate limits) and
cannot send a non-ASCII password.
"""

from __future__ import annotations

import base64
import hmac
import smtplib
import socket
import ssl
from collections.abc import Callable
from email.message import EmailMessage

from connectors import net
from connectors.client import ProtocolClient
from connectors.errors import THROTTLE_WORDS, VARIANT_HINTS, Detail, ErrorClass, MailError
from connectors.settings import Security
from connectors.transcript import Transcript

#: The sentence for a recipient the server refused at RCPT TO.
REFUSED_RECIPIENT = "The server refused the recipient {recipient} ({reply})."

#: Mechanisms in the order Mailroom prefers them for a password.
PASSWORD_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")


class _SMTP(smtplib.SMTP):
    """smtplib on a ready socket, recording the conversation."""

    def __init__(
        self, host: str, sock: socket.socket, transcript: Transcript | None, local_hostname: str
    ) -> None:
        super().__init__(local_hostname=local_hostname, timeout=sock.gettimeout())  # no host: no connect
        self._host = host
        self.sock = sock
        self._transcript = transcript

    def send(self, s) -> None:
        if self._transcript is not None:
            self._transcript.sent(s)
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        code, msg = super().getreply()
        if self._transcript is not None:
            lines = msg.split(b"\n")
            for i, line in enumerate(lines):
                sep = " " if i == len(lines) - 1 else "-"
                self._transcript.received(f"{code}{sep}".encode() + line)
        return code, msg


class SmtpAuthFailed(smtplib.SMTPAuthenticationError):
    """AUTH got a final answer other than success."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _reply_text(code: int, msg: bytes | str) -> str:
    text = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
    return f"{code} {text}" if code and code > 0 else text


class SmtpClient(ProtocolClient):
    """An SMTP submission connection: ``connect()`` (greeting, EHLO, STARTTLS), ``login()``, ``close()``.

    Nothing is ever sent as mail by the connection check; ``.smtp`` is the
    smtplib object for sending code.
    """

    protocol = "smtp"

    def __init__(self, settings, credentials, transcript=None) -> None:
        super().__init__(settings, credentials, transcript)
        self.smtp: smtplib.SMTP | None = None

    # -- connect ----------------------------------------------------------------------------

    def connect(self) -> None:
        implicit = self.security is Security.TLS
        with self.step("connect") as st:
            sock = self._open()
            st.detail = self.info["address"]
            if not implicit:
                self._greeting(sock, "connect")
        if implicit:
            with self.step("tls") as st:
                sock = self._wrap(sock)
                st.detail = self._tls_done(sock)
                self._greeting(sock, "tls")
        with self.step("ehlo") as st:
            self._ehlo("ehlo")
            st.detail = f"{len(self.capabilities)} extensions"
        if self.security is Security.STARTTLS:
            with self.step("tls") as st:
                if not self.smtp.has_extn("starttls"):
                    raise self.fail(
                        ErrorClass.STARTTLS_MISSING, "tls", raw="EHLO: " + " ".join(self.capabilities)
                    )
                code, msg = self.smtp.starttls(context=self.tls_context())
                if code != 220:
                    raise self._reply_error(
                        "tls", code, msg, default=ErrorClass.TLS, detail=Detail.STARTTLS_REFUSED
                    )
                self._register(self.smtp.sock)
                st.detail = self._tls_done(self.smtp.sock)
                self._ehlo("tls")  # the extensions may differ once protected (AUTH often appears now)

    def _helo_name(self) -> str:
        """The EHLO name: configured, else this machine's name (never ``getfqdn``, which can block on DNS)."""
        if self.settings.helo_name:
            return self.settings.helo_name
        name = socket.gethostname() or "localhost"
        return name if "." in name else f"{name}.localdomain"

    def _greeting(self, sock: socket.socket, step: str) -> None:
        self.smtp = _SMTP(self.settings.host, sock, self.transcript, self._helo_name())
        code, msg = self.smtp.getreply()
        if code != 220:
            if code < 0:
                raise self.fail(
                    ErrorClass.PROTOCOL, step, raw=msg, detail=Detail.NOT_PROTOCOL.format(protocol="SMTP")
                )
            raise self._reply_error(step, code, msg)

    def _ehlo(self, step: str) -> None:
        code, msg = self.smtp.ehlo()
        if code != 250:
            raise self._reply_error(step, code, msg)
        features = self.smtp.esmtp_features
        self.capabilities = [" ".join(f"{k.upper()} {v}".split()) for k, v in features.items()]

    # -- login ------------------------------------------------------------------------------

    def auth_mechanisms(self) -> list[str]:
        return [m.upper() for m in self.smtp.esmtp_features.get("auth", "").split()] if self.smtp else []

    def login(self) -> None:
        with self.step("login") as st:
            offered = self.auth_mechanisms()
            user, token, password = (
                self.credentials.username,
                self.credentials.oauth2_token,
                self.credentials.password,
            )
            if not offered:
                hints = [VARIANT_HINTS["plaintext_auth"]] if self.security is Security.NONE else []
                raise self.fail(
                    ErrorClass.AUTH_METHOD,
                    "login",
                    raw="EHLO: " + " ".join(self.capabilities),
                    detail=Detail.NO_SMTP_AUTH,
                    hints=hints,
                    fix_field="smtp_requires_auth",
                )
            if token:
                if "XOAUTH2" in offered:
                    blob = f"user={user}\1auth=Bearer {token}\1\1".encode()
                    self._sasl("XOAUTH2", blob, lambda challenge: b"")
                elif "OAUTHBEARER" in offered:
                    blob = f"n,a={user},\1auth=Bearer {token}\1\1".encode()
                    self._sasl("OAUTHBEARER", blob, lambda challenge: b"\1")
                else:
                    raise self.fail(ErrorClass.AUTH_METHOD, "login", detail=Detail.NO_OAUTH2)
            else:
                if not password:
                    raise self.fail(ErrorClass.AUTH, "login", detail=Detail.NO_SECRET)
                mechanism = next((m for m in PASSWORD_MECHANISMS if m in offered), None)
                if mechanism is None:
                    raise self.fail(
                        ErrorClass.AUTH_METHOD,
                        "login",
                        raw="AUTH " + " ".join(offered),
                        detail=Detail.NO_SMTP_AUTH_PLAIN.format(methods=", ".join(offered)),
                    )
                self._password_auth(mechanism, user, password)
            st.detail = f"as {user}"

    def _password_auth(self, mechanism: str, user: str, password: str) -> None:
        u, p = user.encode("utf-8"), password.encode("utf-8")
        if mechanism == "PLAIN":
            self._sasl("PLAIN", b"\0" + u + b"\0" + p, lambda challenge: b"")
        elif mechanism == "LOGIN":
            answers = iter((u, p))

            def login_step(challenge: bytes) -> bytes:
                if challenge.lower().startswith(b"user"):
                    return u
                if challenge.lower().startswith(b"pass"):
                    return p
                return next(answers, b"")

            self._sasl("LOGIN", None, login_step)
        else:  # CRAM-MD5
            self._sasl("CRAM-MD5", None, lambda c: u + b" " + hmac.new(p, c, "md5").hexdigest().encode())

    def _sasl(self, mechanism: str, initial: bytes | None, respond: Callable[[bytes], bytes]) -> None:
        """RFC 4954 AUTH: initial response if any, then answer each 334 challenge."""
        if initial is not None:
            code, msg = self.smtp.docmd("AUTH", f"{mechanism} {_b64(initial) or '='}")
        else:
            code, msg = self.smtp.docmd("AUTH", mechanism)
        rounds = 0
        while code == 334 and rounds < 5:
            rounds += 1
            try:
                challenge = base64.b64decode(msg, validate=False)
            except ValueError:
                challenge = b""
            code, msg = self.smtp.docmd(_b64(respond(challenge)))
        if code not in (235, 503):
            raise SmtpAuthFailed(code, msg)

    # -- send -------------------------------------------------------------------------------

    def send_message(self, msg: bytes | EmailMessage, from_addr: str, recipients: list[str]) -> str:
        """MAIL FROM, RCPT TO each recipient, DATA; return the server's final answer.

        A recipient the server refuses stops the send before DATA (RSET), with an
        error naming it, so nobody gets a copy of a message that failed for someone
        else.  Once DATA is answered 250 the message is the server's: the caller
        records that before anything else (the goodbye may still fail, harmlessly).
        """
        if self.smtp is None:
            raise self.fail(ErrorClass.PROTOCOL, "mail", detail="Not connected.")
        data = msg.as_bytes() if isinstance(msg, EmailMessage) else msg
        if not recipients:
            raise self.fail(ErrorClass.PROTOCOL, "rcpt", detail="The message has no recipient.")
        with self.step("mail") as st:
            options = ["BODY=8BITMIME"] if self.smtp.has_extn("8bitmime") and not data.isascii() else []
            if self.smtp.has_extn("size"):
                options.append(f"SIZE={len(data)}")
            code, reply = self.smtp.mail(from_addr, options)
            if code != 250:
                raise self._reply_error("mail", code, reply)
            st.detail = from_addr
        with self.step("rcpt") as st:
            for rcpt in recipients:
                code, reply = self.smtp.rcpt(rcpt)
                if code not in (250, 251):
                    text = _reply_text(code, reply)
                    try:
                        self.smtp.rset()
                    except (smtplib.SMTPException, OSError):
                        pass
                    error = self._reply_error("rcpt", code, reply)
                    if error.error_class is ErrorClass.PROTOCOL:
                        error.detail = REFUSED_RECIPIENT.format(recipient=rcpt, reply=text)
                    raise error
            st.detail = f"{len(recipients)} recipient{'s' * (len(recipients) != 1)}"
        with self.step("data") as st:
            code, reply = self.smtp.data(data)  # raises SMTPDataError for a non-250 answer
            st.detail = _reply_text(code, reply)
        return st.detail

    # -- close ------------------------------------------------------------------------------

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            if self._polite() and smtp.sock is not None:
                try:
                    self._goodbye_timeout(smtp.sock)
                    smtp.quit()
                except Exception:
                    pass
            try:
                smtp.close()
            except Exception:
                pass
        self._close_sockets()

    # -- errors -----------------------------------------------------------------------------

    def _reply_error(
        self,
        step: str,
        code: int,
        msg: bytes | str,
        default: ErrorClass = ErrorClass.PROTOCOL,
        detail: str = "",
    ) -> MailError:
        text = _reply_text(code, msg)
        if code in (421, 450, 451, 452, 454, 554) and THROTTLE_WORDS.search(text):
            return self.fail(ErrorClass.THROTTLED, step, raw=text)
        if code == 421:
            return self.fail(ErrorClass.THROTTLED, step, raw=text)
        return self.fail(default, step, raw=text, detail=detail)

    def _login_failure(self, code: int, text: str) -> MailError:
        """A final answer to AUTH: 5xx is the server's refusal (535, 534: ``auth``; 530, 538 and an
        unknown mechanism: ``auth_method``); 4xx (454 "temporary authentication failure") is a
        temporary failure on its side, never a wrong password."""
        if 400 <= code < 500:
            return self.fail(ErrorClass.SERVER_ERROR, "login", raw=text, detail=Detail.LOGIN_UNAVAILABLE)
        if code in (530, 538) or (code == 504 and "mechanism" in text.lower()):
            return self.fail(ErrorClass.AUTH_METHOD, "login", raw=text)
        if not 500 <= code < 600:  # smtplib's -1 (not a reply line) or nonsense: no verdict
            return self.fail(ErrorClass.PROTOCOL, "login", raw=text)
        return self.fail(ErrorClass.AUTH, "login", raw=text)

    def _classify_protocol(self, exc: BaseException, step: str) -> MailError | None:
        if isinstance(exc, smtplib.SMTPResponseException):
            code, text = exc.smtp_code, _reply_text(exc.smtp_code, exc.smtp_error)
            if THROTTLE_WORDS.search(text) and 400 <= code < 500 or code == 421:
                return self.fail(ErrorClass.THROTTLED, step, raw=text)
            if step == "login":
                return self._login_failure(code, text)
            if step == "tls" and self.security is Security.STARTTLS:  # smtplib raises for a non-220 STARTTLS
                return self._reply_error(step, code, exc.smtp_error, ErrorClass.TLS, Detail.STARTTLS_REFUSED)
            return self._reply_error(step, code, exc.smtp_error)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            if net.find_cause(exc, (TimeoutError, ssl.SSLError)) is not None:
                return None  # a timeout or a TLS failure underneath: the network classifier says which
            return self.closed(step, str(exc))
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return self.fail(
                ErrorClass.AUTH_METHOD if step == "login" else ErrorClass.PROTOCOL, step, raw=str(exc)
            )
        return None
