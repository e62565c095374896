"""The protocol conversation of one connection test or sync, for mailboxes with "Enable debug".

People debugging a mailbox need to see what the server said, line by line,
but a transcript ends up in the email log, in the database and on a web
page, so nothing secret may ever enter it.  Two independent defences:

1. *Structural masking*: the client lines that carry secrets are recognised
   per protocol and their secret part replaced by ``***`` — IMAP ``LOGIN`` and
   ``AUTHENTICATE`` (and every continuation line until the server's tagged
   answer), POP3 ``PASS``/``APOP``/``AUTH``, SMTP ``AUTH`` and every line sent
   after a ``334`` challenge.
2. *Scrubbing*: every known form of the secrets (the password, the token, their
   base64 forms, the base64 PLAIN and XOAUTH2 blobs; see
   :meth:`connectors.settings.Credentials.secret_forms`) is replaced by
   ``***`` in every line, sent or received, in case a server echoes it.

Client data is buffered until CRLF so that a command sent in pieces (imapclient
sends the line and its CRLF separately) is masked as one line.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from connectors.errors import scrub

MASK = "***"

SENT = "sent"
RECEIVED = "received"
NOTE = "note"

_IMAP_LOGIN = re.compile(
    r'^(?P<head>\S+\s+LOGIN\s+)(?P<user>"(?:[^"\\]|\\.)*"|\{\d+\+?\}|\S+)(?P<rest>.*)$', re.IGNORECASE
)
_IMAP_AUTH = re.compile(r"^(?P<head>\S+\s+AUTHENTICATE\s+\S+)(?P<rest>.*)$", re.IGNORECASE)
_LITERAL_AT_END = re.compile(r"\{\d+\+?\}$")
_POP3_PASS = re.compile(r"^(?P<head>PASS)(?P<rest>\s.*)?$", re.IGNORECASE)
_POP3_APOP = re.compile(r"^(?P<head>APOP\s+\S+)(?P<rest>\s.*)?$", re.IGNORECASE)
_SASL = re.compile(r"^(?P<head>AUTH\s+\S+)(?P<rest>\s.*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    """One line of the conversation."""

    at: float  #: wall-clock time (epoch seconds)
    elapsed_ms: float  #: since the transcript started
    direction: str  #: ``sent``, ``received`` or ``note``
    text: str

    def as_dict(self) -> dict:
        return {
            "at": dt.datetime.fromtimestamp(self.at, dt.UTC).isoformat(timespec="milliseconds"),
            "elapsed_ms": round(self.elapsed_ms, 1),
            "direction": self.direction,
            "text": self.text,
        }


class Transcript:
    """Collects masked protocol lines; give one to a client as ``transcript=``."""

    def __init__(self, max_entries: int = 2000, max_line: int = 1000) -> None:
        self.entries: list[Entry] = []
        self.max_entries = max_entries
        self.max_line = max_line
        self.truncated = False
        self._start = time.monotonic()
        self._secrets: set[str] = set()
        self._protocol = ""
        self._buffer = b""
        #: True while an authentication exchange is running: every client line is masked.
        self._in_auth = False

    # -- set-up -------------------------------------------------------------------------

    def add_secrets(self, values: Iterable[str | None]) -> None:
        """Remember values to scrub from every line (see the module docstring)."""
        self._secrets.update(v for v in values if v)

    def begin(self, protocol: str, description: str) -> None:
        """Start a new connection (``imap``, ``pop3`` or ``smtp``): resets the masking state."""
        self._flush()
        self._protocol = str(getattr(protocol, "value", protocol)).lower()
        self._in_auth = False
        self.note(description)

    # -- recording ----------------------------------------------------------------------

    def note(self, text: str) -> None:
        """A line from Mailroom itself (connected to, TLS established, ...)."""
        self._flush()
        self._add(NOTE, self._scrub(text))

    def sent(self, data: bytes | str) -> None:
        """Bytes the client wrote; recorded per CRLF-terminated line, masked."""
        if isinstance(data, str):
            data = data.encode("utf-8", "replace")
        self._buffer += data
        while b"\r\n" in self._buffer or b"\n" in self._buffer:
            cut = self._buffer.find(b"\n")
            line, self._buffer = self._buffer[: cut + 1], self._buffer[cut + 1 :]
            self._client_line(_text(line))
        if len(self._buffer) > 65536:  # a big literal without CRLF: record its size only
            self._add(SENT, f"<{len(self._buffer)} bytes>")
            self._buffer = b""

    def received(self, data: bytes | str) -> None:
        """One line the server sent."""
        self._flush()
        text = _text(data)
        if self._in_auth and not self._continues_auth(text):
            self._in_auth = False
        self._add(RECEIVED, self._scrub(text))

    def received_literal(self, size: int) -> None:
        """An IMAP literal (message data, long names): only its size is worth keeping."""
        self._flush()
        self._add(RECEIVED, f"<literal {size} bytes>")

    # -- reading ------------------------------------------------------------------------

    def as_list(self) -> list[dict]:
        """JSON-able entries, for the email log."""
        self._flush()
        rows = [e.as_dict() for e in self.entries]
        if self.truncated:
            rows.append({"direction": NOTE, "text": f"(transcript cut at {self.max_entries} lines)"})
        return rows

    def as_text(self) -> str:
        self._flush()
        marks = {SENT: "C:", RECEIVED: "S:", NOTE: "--"}
        return "\n".join(f"{e.elapsed_ms:8.1f} {marks[e.direction]} {e.text}" for e in self.entries)

    def __iter__(self):
        self._flush()
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    # -- internals ----------------------------------------------------------------------

    def _flush(self) -> None:
        if self._buffer:
            line, self._buffer = self._buffer, b""
            self._client_line(_text(line))

    def _client_line(self, line: str) -> None:
        if line == "":
            return
        self._add(SENT, self._scrub(self._mask(line)))

    def _mask(self, line: str) -> str:
        """Hide the secret part of a client line, by protocol; switch auth mode on or off."""
        if self._in_auth:
            return MASK
        if self._protocol == "imap":
            m = _IMAP_LOGIN.match(line)
            if m:
                self._in_auth = bool(_LITERAL_AT_END.search(line))
                return m["head"] + m["user"] + (" " + MASK if m["rest"].strip() else "")
            m = _IMAP_AUTH.match(line)
            if m:
                self._in_auth = True
                return m["head"] + (" " + MASK if m["rest"].strip() else "")
        elif self._protocol == "pop3":
            for pattern in (_POP3_PASS, _POP3_APOP):
                m = pattern.match(line)
                if m:
                    return m["head"] + (" " + MASK if m["rest"] else "")
            m = _SASL.match(line)
            if m:
                self._in_auth = True
                return m["head"] + (" " + MASK if m["rest"] and m["rest"].strip() else "")
        elif self._protocol == "smtp":
            m = _SASL.match(line)
            if m:
                self._in_auth = True
                return m["head"] + (" " + MASK if m["rest"] and m["rest"].strip() else "")
        return line

    def _continues_auth(self, server_line: str) -> bool:
        """Does this server line ask for more authentication data?"""
        if self._protocol == "smtp":
            return server_line.startswith("334")
        return server_line.startswith("+") and not server_line.startswith("+OK")

    def _scrub(self, text: str) -> str:
        text = scrub(text, self._secrets) if self._secrets else text
        return text if len(text) <= self.max_line else text[: self.max_line] + f"… ({len(text)} chars)"

    def _add(self, direction: str, text: str) -> None:
        if len(self.entries) >= self.max_entries:
            self.truncated = True
            return
        now = time.monotonic()
        self.entries.append(Entry(time.time(), (now - self._start) * 1000, direction, text))


def _text(data: bytes | str) -> str:
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    return data.rstrip("\r\n")
