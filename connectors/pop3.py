"""POP3 through poplib, on a socket Mailroom opened itself.

:class:`_POP3` is a ``poplib.POP3`` whose ``_create_socket`` returns the
guarded (and, for implicit TLS, already wrapped) socket from
:mod:`connectors.net`; ``_putline``/``_getline`` also feed the transcript.
"""

from __future__ import annotations

import base64
import poplib
import re
import socket

from connectors.client import ProtocolClient
from connectors.errors import (
    SERVER_TROUBLE_CODES,
    THROTTLE_WORDS,
    VARIANT_HINTS,
    Detail,
    ErrorClass,
    MailError,
)
from connectors.settings import Security
from connectors.transcript import Transcript

_PLAINTEXT_WORDS = re.compile(
    r"plaintext authentication disallowed|\[PRIVACYREQUIRED\]|not allowed.*(secure|tls)", re.I
)
#: The longest line a downloaded message may have (poplib's own limit, 2048 bytes, refuses real mail).
MAX_MESSAGE_LINE = 16 * 1024 * 1024
#: Said when a server cannot give stable message ids: downloading would risk duplicates.
NO_UIDL = (
    "The POP3 server does not support UIDL (unique message ids), so Mailroom cannot tell which "
    "messages it has already downloaded; use IMAP for this mailbox."
)


class _POP3(poplib.POP3):
    """poplib on a ready socket, recording the conversation."""

    def __init__(self, host: str, port: int, sock: socket.socket, transcript: Transcript | None) -> None:
        self._ready_socket = sock
        self._transcript = transcript
        super().__init__(host, port, timeout=sock.gettimeout())

    def _create_socket(self, timeout):  # poplib's hook: no resolving, no connecting here
        sock, self._ready_socket = self._ready_socket, None
        return sock

    def _putline(self, line: bytes) -> None:
        if self._transcript is not None:
            self._transcript.sent(line + b"\r\n")
        super()._putline(line)

    def _getline(self):
        line, octets = super()._getline()
        if self._transcript is not None:
            self._transcript.received(line)
        return line, octets

    def read_message(self) -> bytes:
        """The body of a multi-line answer exactly as sent, dot-unstuffed, line ends kept.

        poplib's own reader drops line ends and refuses lines over 2048 bytes; a
        downloaded message must come back byte for byte. Not fed to the transcript:
        message text does not belong in the email log.
        """
        out = []
        readline = self.file.readline
        while True:
            line = readline(MAX_MESSAGE_LINE + 1)
            if not line:
                raise poplib.error_proto("-ERR EOF")
            if len(line) > MAX_MESSAGE_LINE:
                raise poplib.error_proto("message line too long")
            if line[:1] == b".":
                if line in (b".\r\n", b".\n"):
                    return b"".join(out)
                line = line[1:]
            out.append(line)


class Pop3Client(ProtocolClient):
    """A POP3 connection: ``connect()``, ``login()``, ``stat()``, ``close()``; ``.pop`` is the poplib object."""

    protocol = "pop3"

    def __init__(self, settings, credentials, transcript=None) -> None:
        super().__init__(settings, credentials, transcript)
        self.pop: poplib.POP3 | None = None
        #: CAPA answer (None when the server does not support CAPA).
        self.capa: dict[str, list[str]] | None = None

    def connect(self) -> None:
        implicit = self.security is Security.TLS
        with self.step("connect") as st:
            sock = self._open()
            st.detail = self.info["address"]
            if not implicit:
                self.pop = _POP3(self.settings.host, self.settings.port, sock, self.transcript)
        if implicit:
            with self.step("tls") as st:
                sock = self._wrap(sock)
                st.detail = self._tls_done(sock)
                self.pop = _POP3(self.settings.host, self.settings.port, sock, self.transcript)
        elif self.security is Security.STARTTLS:
            with self.step("tls") as st:
                capa = self._capa()
                if capa is None or "STLS" not in capa:
                    raw = "CAPA " + " ".join(sorted(capa)) if capa is not None else "CAPA not supported"
                    raise self.fail(ErrorClass.STARTTLS_MISSING, "tls", raw=raw)
                self.pop._putcmd("STLS")  # poplib.stls() would send CAPA again first
                self.pop._getresp()
                self.pop.sock = self.tls_context().wrap_socket(
                    self.pop.sock, server_hostname=self.settings.host
                )
                self.pop.file = self.pop.sock.makefile("rb")
                self.pop._tls_established = True
                self._register(self.pop.sock)
                st.detail = self._tls_done(self.pop.sock)
        with self.step("capabilities") as st:
            self.capa = self._capa()
            self.capabilities = sorted(self.capa or {})
            st.detail = (
                f"{len(self.capabilities)} capabilities" if self.capa is not None else "CAPA not supported"
            )

    def _capa(self) -> dict[str, list[str]] | None:
        try:
            return {k.upper(): v for k, v in self.pop.capa().items()}
        except poplib.error_proto as exc:
            if str(exc).startswith(("b'-ERR", "-ERR")) and "EOF" not in str(exc):
                return None  # an old server without CAPA
            raise

    def login(self) -> None:
        with self.step("login") as st:
            user, token, password = (
                self.credentials.username,
                self.credentials.oauth2_token,
                self.credentials.password,
            )
            if token:
                sasl = (self.capa or {}).get("SASL", [])
                if "XOAUTH2" not in [m.upper() for m in sasl]:
                    raise self.fail(ErrorClass.AUTH_METHOD, "login", detail=Detail.NO_OAUTH2)
                blob = f"user={user}\1auth=Bearer {token}\1\1".encode()
                answer = self.pop._shortcmd("AUTH XOAUTH2 " + base64.b64encode(blob).decode("ascii"))
                if not answer.startswith(b"+OK"):
                    # "+ <base64 JSON>" is the refused token's error challenge (Dovecot, Gmail), not a
                    # success: answer it empty to get the server's real -ERR (raised, classified auth).
                    self.pop._shortcmd("")
            else:
                if self.capa is not None and "USER" not in self.capa:
                    raise self.fail(
                        ErrorClass.AUTH_METHOD,
                        "login",
                        raw="CAPA " + " ".join(sorted(self.capa)),
                        detail=Detail.NO_USER_COMMAND,
                        hints=[VARIANT_HINTS["plaintext_auth"]],
                    )
                if not password:
                    raise self.fail(ErrorClass.AUTH, "login", detail=Detail.NO_SECRET)
                self.pop.user(user)
                self.pop.pass_(password)
            st.detail = f"as {user}"

    def stat(self) -> tuple[int, int]:
        """STAT: (number of messages, total size in octets)."""
        with self.step("stat") as st:
            count, size = self.pop.stat()
            st.detail = f"{count} messages, {size} octets"
            self.info["messages"] = count
            return count, size

    # -- download (UIDL, RETR, TOP, DELE) --------------------------------------------------

    def uidl(self) -> list[tuple[int, str]]:
        """UIDL: ``[(message number, unique id), ...]``; a server without UIDL fails with a clear error."""
        with self.step("uidl") as st:
            if self.capa is not None and "UIDL" not in self.capa:
                raise self.fail(
                    ErrorClass.PROTOCOL, "uidl", raw="CAPA " + " ".join(sorted(self.capa)), detail=NO_UIDL
                )
            try:
                _, lines, _ = self.pop.uidl()
            except poplib.error_proto as exc:
                text = str(exc.args[0] if exc.args else "")
                if "-ERR" in text and "EOF" not in text:
                    raise self.fail(ErrorClass.PROTOCOL, "uidl", raw=exc.args[0], detail=NO_UIDL) from None
                raise
            out = []
            for line in lines:
                number, _, uid = line.decode("ascii", "replace").strip().partition(" ")
                out.append((int(number), uid.strip()))
            st.detail = f"{len(out)} messages"
            return out

    def retr(self, number: int) -> bytes:
        """RETR: the whole message ``number`` as the server stores it."""
        with self.step("retr") as st:
            self.pop._putcmd(f"RETR {int(number)}")
            self.pop._getresp()
            raw = self.pop.read_message()
            st.detail = f"message {number}, {len(raw)} octets"
            if self.transcript is not None:
                self.transcript.note(f"({len(raw)} octets of message text not recorded)")
            return raw

    def top(self, number: int, lines: int = 0) -> bytes:
        """TOP: the header of message ``number`` and its first ``lines`` body lines."""
        with self.step("top") as st:
            self.pop._putcmd(f"TOP {int(number)} {int(lines)}")
            self.pop._getresp()
            raw = self.pop.read_message()
            st.detail = f"message {number}, {len(raw)} octets"
            return raw

    def dele(self, number: int) -> None:
        """DELE: mark message ``number`` deleted; the server removes it only at a clean QUIT."""
        with self.step("dele") as st:
            self.pop.dele(int(number))
            st.detail = f"message {number}"

    def quit(self) -> None:
        """QUIT now (the server applies DELE marks); failures are classified, unlike ``close()``'s."""
        with self.step("quit"):
            pop, self.pop = self.pop, None
            try:
                pop.quit()
            finally:
                try:
                    pop.close()
                except Exception:
                    pass
        self._close_sockets()

    def close(self) -> None:
        pop, self.pop = self.pop, None
        if pop is not None:
            if self._polite():
                try:
                    self._goodbye_timeout(pop.sock)
                    pop.quit()
                except Exception:
                    pass
            try:
                pop.close()
            except Exception:
                pass
        self._close_sockets()

    def _classify_protocol(self, exc: BaseException, step: str) -> MailError | None:
        if not isinstance(exc, poplib.error_proto):
            return None
        raw = exc.args[0] if exc.args else b""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        if text == "-ERR EOF":  # poplib's own words (a str) for the end of the stream
            return self.closed(step, "connection closed")
        if THROTTLE_WORDS.search(text):
            return self.fail(ErrorClass.THROTTLED, step, raw=text)
        if SERVER_TROUBLE_CODES.search(text):  # [SYS/TEMP], [SYS/PERM]: not a verdict on the password
            detail = Detail.LOGIN_UNAVAILABLE if step == "login" else ""
            return self.fail(ErrorClass.SERVER_ERROR, step, raw=text, detail=detail)
        if step == "login":
            if not (isinstance(raw, bytes) and text.startswith("-ERR")):  # poplib's complaint, no answer
                return self.fail(ErrorClass.PROTOCOL, step, raw=text)
            if _PLAINTEXT_WORDS.search(text):
                return self.fail(
                    ErrorClass.AUTH_METHOD,
                    step,
                    raw=text,
                    detail=Detail.PLAINTEXT_DISALLOWED,
                    hints=[VARIANT_HINTS["plaintext_auth"]],
                )
            return self.fail(ErrorClass.AUTH, step, raw=text)
        if step == "tls" and self.security is Security.STARTTLS:  # STLS itself failed
            return self.fail(ErrorClass.TLS, step, raw=text, detail=Detail.STARTTLS_REFUSED)
        if step in ("connect", "tls") and not text.startswith("-ERR"):
            return self.fail(
                ErrorClass.PROTOCOL, step, raw=text, detail=Detail.NOT_PROTOCOL.format(protocol="POP3")
            )
        return self.fail(ErrorClass.PROTOCOL, step, raw=text)
