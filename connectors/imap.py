"""IMAP through imapclient, on a socket Mailroom opened itself.

imapclient (and imaplib below it) would resolve the host name and connect on
their own, which would skip the address guard and the TLS-mode probe.  So
:class:`_IMAP4` is an ``imaplib.IMAP4`` whose ``_create_socket`` returns the
socket :mod:`connectors.net` already connected (and, for implicit TLS, wrapped),
and :class:`_IMAPClient` is an ``IMAPClient`` whose ``_create_IMAP4`` builds
it.  Everything else — STARTTLS, LOGIN, LIST, FETCH — is imapclient's own.
The same subclass records every line in the transcript when one is given.
"""

from __future__ import annotations

import imaplib
import re
import socket

from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, IMAPClientError

from connectors import net
from connectors.client import ProtocolClient
from connectors.errors import (
    FOLDER_MISSING_WORDS,
    SERVER_TROUBLE_CODES,
    THROTTLE_WORDS,
    VARIANT_HINTS,
    Detail,
    ErrorClass,
    MailError,
)
from connectors.settings import Security
from connectors.transcript import Transcript

_AUTH_METHOD_WORDS = re.compile(
    r"\[PRIVACYREQUIRED\]|plaintext authentication disallowed|LOGINDISABLED", re.I
)


#: The commands whose tagged ``NO`` is the server's verdict on the credentials.
_SIGN_IN_COMMANDS = {"LOGIN", "AUTHENTICATE"}


class _IMAP4(imaplib.IMAP4):
    """imaplib on a ready socket, recording the conversation.

    ``last_answer`` is ``(command, "OK" | "NO")`` of the last command that got its tagged
    answer: imaplib raises the same ``error`` for a tagged NO as for its own complaints, and
    imapclient turns a dropped connection into a ``LoginError`` too, so only this tells the
    server's explicit refusal of a password from everything else.
    """

    def __init__(self, host: str, port: int, sock: socket.socket, transcript: Transcript | None) -> None:
        self._ready_socket = sock
        self._transcript = transcript
        self.last_answer: tuple[str, str] | None = None
        self._at_greeting = True
        super().__init__(host, port, timeout=None)

    def _get_capabilities(self):
        """At the greeting, read its ``[CAPABILITY ...]`` code (Dovecot, Cyrus, Gmail send it) instead
        of asking again: one round trip less per connection.  After STARTTLS, always ask (RFC 3501)."""
        at_greeting, self._at_greeting = self._at_greeting, False
        data = self.untagged_responses.pop("CAPABILITY", None) if at_greeting else None
        if data and data[-1]:
            self.capabilities = tuple(str(data[-1], self._encoding).upper().split())
            return
        super()._get_capabilities()

    def _command_complete(self, name, tag):  # imaplib's hook: BAD, BYE and EOF raise before return
        self.last_answer = None
        typ, data = super()._command_complete(name, tag)
        self.last_answer = (name, typ)
        return typ, data

    def _create_socket(self, timeout):  # imaplib's hook: no resolving, no connecting here
        sock, self._ready_socket = self._ready_socket, None
        return sock

    def send(self, data: bytes) -> None:
        if self._transcript is not None:
            self._transcript.sent(data)
        super().send(data)

    def readline(self) -> bytes:
        line = super().readline()
        if self._transcript is not None and line:
            self._transcript.received(line)
        return line

    def read(self, size: int) -> bytes:
        data = super().read(size)
        if self._transcript is not None:
            self._transcript.received_literal(len(data))
        return data


class _IMAPClient(IMAPClient):
    """IMAPClient that builds :class:`_IMAP4` around Mailroom's socket."""

    def __init__(self, sock: socket.socket, transcript: Transcript | None, **kwargs) -> None:
        self._mailroom_socket = sock
        self._mailroom_transcript = transcript
        super().__init__(**kwargs)

    def _create_IMAP4(self):
        return _IMAP4(self.host, self.port, self._mailroom_socket, self._mailroom_transcript)


def _server_text(exc: BaseException) -> str:
    """The server's words in an imaplib/imapclient error (they arrive as ``b'...'`` reprs)."""
    text = str(exc)
    return re.sub(r"b'((?:[^'\\]|\\.)*)'", r"\1", text).replace('b"', '"')


def _send_once(blob: str, then: str):
    """A SASL responder that sends the token ``blob`` once; a further challenge is the server's
    error (base64 JSON), answered with ``then`` (XOAUTH2: empty, OAUTHBEARER: ``\\1``) to get
    its NO.  imapclient's ``oauth2_login`` would send the token a second time there."""
    sent = False

    def respond(challenge: bytes) -> str:
        nonlocal sent
        if sent:
            return then
        sent = True
        return blob

    return respond


class ImapClient(ProtocolClient):
    """An IMAP connection: ``connect()``, ``login()``, ``list_folders()``, ``close()``.

    After ``login()``, ``.imap`` is the imapclient ``IMAPClient`` for sync
    code; wrap its calls with ``client.step(name)`` (or use
    ``client.classify(exc, name)``) to get classified errors.
    """

    protocol = "imap"

    def __init__(self, settings, credentials, transcript=None) -> None:
        super().__init__(settings, credentials, transcript)
        self.imap: IMAPClient | None = None

    def connect(self) -> None:
        implicit = self.security is Security.TLS
        with self.step("connect") as st:
            sock = self._open()
            st.detail = self.info["address"]
            if not implicit:
                self.imap = self._client(sock)
        if implicit:
            with self.step("tls") as st:
                sock = self._wrap(sock)
                st.detail = self._tls_done(sock)
                self.imap = self._client(sock)
        elif self.security is Security.STARTTLS:
            with self.step("tls") as st:
                caps = self._raw_capabilities()
                if "STARTTLS" not in caps:
                    raise self.fail(
                        ErrorClass.STARTTLS_MISSING, "tls", raw="CAPABILITY " + " ".join(sorted(caps))
                    )
                self.imap.starttls(self.tls_context())
                self._register(self.imap.socket())
                st.detail = self._tls_done(self.imap.socket())
        with self.step("capabilities") as st:
            self.capabilities = [c.decode("ascii", "replace") for c in self.imap.capabilities()]
            st.detail = f"{len(self.capabilities)} capabilities"

    def _client(self, sock: socket.socket) -> IMAPClient:
        timeout = self.settings.timeout
        return _IMAPClient(
            sock,
            self.transcript,
            host=self.settings.host,
            port=self.settings.port,
            ssl=self.security is Security.TLS,
            # No context for a plain or STARTTLS start: building one is the costly part of a connect.
            ssl_context=self.tls_context() if self.security is Security.TLS else None,
            timeout=timeout,
        )

    def _raw_capabilities(self) -> set[str]:
        """imaplib's capabilities from the greeting (before TLS nothing is cached by imapclient)."""
        return {c.upper() for c in self.imap._imap.capabilities}

    def login(self) -> None:
        with self.step("login") as st:
            caps = {c.upper() for c in self.capabilities}
            user = self.credentials.username
            token, password = self.credentials.oauth2_token, self.credentials.password
            if self.imap._imap.state == "AUTH":  # a PREAUTH greeting: already signed in
                st.detail = "pre-authenticated by the server"
                return
            if token:
                if "AUTH=XOAUTH2" in caps:
                    blob = f"user={user}\1auth=Bearer {token}\1\1"
                    self.imap._imap.authenticate("XOAUTH2", _send_once(blob, ""))
                elif "AUTH=OAUTHBEARER" in caps:
                    gs2 = "n,a=" + user.replace("=", "=3D").replace(",", "=2C") + ","
                    blob = f"{gs2}\1auth=Bearer {token}\1\1"
                    self.imap._imap.authenticate("OAUTHBEARER", _send_once(blob, "\1"))
                else:
                    raise self.fail(ErrorClass.AUTH_METHOD, "login", detail=Detail.NO_OAUTH2)
            else:
                if "LOGINDISABLED" in caps:
                    raise self.fail(
                        ErrorClass.AUTH_METHOD,
                        "login",
                        raw="CAPABILITY ... LOGINDISABLED",
                        detail=Detail.LOGINDISABLED,
                        hints=[VARIANT_HINTS["plaintext_auth"]],
                    )
                if not password:
                    raise self.fail(ErrorClass.AUTH, "login", detail=Detail.NO_SECRET)
                if not password.isascii() and "AUTH=PLAIN" in caps:
                    self.imap.plain_login(user, password)  # LOGIN cannot carry non-ASCII in imaplib
                else:
                    self.imap.login(user, password)
            st.detail = f"as {user}"
            # Servers announce more after login (CONDSTORE, QRESYNC...): forget the cached list.
            self.imap._cached_capabilities = None
            self.capabilities = [c.decode("ascii", "replace") for c in self.imap.capabilities()]

    def list_folders(self) -> list[tuple]:
        """LIST: ``[(flags, delimiter, name), ...]``."""
        with self.step("list") as st:
            folders = self.imap.list_folders()
            st.detail = f"{len(folders)} folders"
            self.info["folders"] = len(folders)
            return folders

    def close(self) -> None:
        imap, self.imap = self.imap, None
        if imap is not None:
            if self._polite():
                try:
                    self._goodbye_timeout(imap.socket())
                    imap.logout()
                except Exception:
                    pass
            try:
                imap.shutdown()
            except Exception:
                pass
        self._close_sockets()

    def _classify_protocol(self, exc: BaseException, step: str) -> MailError | None:
        if not isinstance(exc, (imaplib.IMAP4.error, IMAPClientError)):
            return None
        text = _server_text(exc)
        if step == "login":
            return self._login_failure(exc, text)
        if isinstance(exc, imaplib.IMAP4.abort) and "EOF" in text:
            return self.closed(step, text)
        if THROTTLE_WORDS.search(text):
            return self.fail(ErrorClass.THROTTLED, step, raw=text)
        if SERVER_TROUBLE_CODES.search(text):
            return self.fail(ErrorClass.SERVER_ERROR, step, raw=text)
        if FOLDER_MISSING_WORDS.search(text):  # SELECT/STATUS/APPEND of a folder deleted elsewhere
            return self.fail(ErrorClass.FOLDER_MISSING, step, raw=text)
        if isinstance(exc, CapabilityError) and "STARTTLS" in text:
            return self.fail(ErrorClass.STARTTLS_MISSING, step, raw=text)
        if step == "tls" and self.security is Security.STARTTLS:  # the STARTTLS command itself failed
            return self.fail(ErrorClass.TLS, step, raw=text, detail=Detail.STARTTLS_REFUSED)
        if step in ("connect", "tls"):
            return self.fail(
                ErrorClass.PROTOCOL, step, raw=text, detail=Detail.NOT_PROTOCOL.format(protocol="IMAP")
            )
        return self.fail(ErrorClass.PROTOCOL, step, raw=text)

    def _login_failure(self, exc: BaseException, text: str) -> MailError:
        """``auth`` only for a tagged NO to LOGIN/AUTHENTICATE without a server-trouble code.

        A BYE, an end of stream or a reset during or after the command (imapclient wraps
        imaplib's ``abort`` in a ``LoginError``: look down the chain) is the server's trouble:
        retrying later is right, marking the password wrong is not.
        """
        answer = self.imap._imap.last_answer if self.imap is not None else None
        refused = answer is not None and answer[0] in _SIGN_IN_COMMANDS and answer[1] == "NO"
        if THROTTLE_WORDS.search(text):
            return self.fail(ErrorClass.THROTTLED, "login", raw=text)
        if net.find_cause(exc, imaplib.IMAP4.abort) is not None:
            return self.closed("login", text)
        if SERVER_TROUBLE_CODES.search(text):
            return self.fail(ErrorClass.SERVER_ERROR, "login", raw=text, detail=Detail.LOGIN_UNAVAILABLE)
        if not refused:  # a BAD, or a command after the sign-in that failed
            return self.fail(ErrorClass.PROTOCOL, "login", raw=text)
        if _AUTH_METHOD_WORDS.search(text):
            return self.fail(
                ErrorClass.AUTH_METHOD,
                "login",
                raw=text,
                detail=Detail.PLAINTEXT_DISALLOWED,
                hints=[VARIANT_HINTS["plaintext_auth"]],
            )
        return self.fail(ErrorClass.AUTH, "login", raw=text)
