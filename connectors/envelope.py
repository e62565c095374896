"""What Mailroom stores of a message: its envelope and a short preview, parsed from raw bytes.

Sync fetches only the header fields listed in :data:`HEADER_FIELDS` (plus a
few hundred bytes of text for the preview), so parsing must be cheap and must
never fail: a broken header gives an empty field, not an exception that would
stop a folder's sync.  The stdlib ``email`` parser with the ``compat32``
policy is the fast path; RFC 2047 words are decoded with ``decode_header``.
"""

from __future__ import annotations

import email.header
import email.parser
import email.policy
import email.utils
import html
import quopri
import re
from datetime import UTC, datetime

#: The header fields sync fetches (``BODY.PEEK[HEADER.FIELDS (...)]``).
HEADER_FIELDS = ("MESSAGE-ID", "IN-REPLY-TO", "REFERENCES", "SUBJECT", "FROM", "TO", "CC", "DATE")

#: Characters of preview text kept per message.
PREVIEW_CHARS = 200

#: Column widths of the ``messages`` table; longer values are cut, never refused.
LIMITS = {"message_id": 998, "in_reply_to": 998, "thread_key": 998, "from_name": 320, "from_addr": 320}

_parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
_MSGID = re.compile(r"<[^<>\s]+>")
_SPACES = re.compile(r"\s+")
_TAGS = re.compile(r"<[^>]*>")


def decode_words(value: str | None) -> str:
    """An RFC 2047 header value as text (``=?utf-8?q?Caf=C3=A9?=`` → ``Café``)."""
    if not value:
        return ""
    try:
        parts = email.header.decode_header(value)
    except Exception:
        return _SPACES.sub(" ", str(value)).strip()
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            try:
                chunk = chunk.decode(charset or "ascii", "replace")
            except LookupError:
                chunk = chunk.decode("utf-8", "replace")
        out.append(chunk)
    return _SPACES.sub(" ", "".join(out)).strip()


def message_ids(value: str | None) -> list[str]:
    """The ``<id@host>`` tokens of a Message-ID, In-Reply-To or References header."""
    return _MSGID.findall(value or "")


def addresses(value: str | None) -> list[tuple[str, str]]:
    """``[(name, address), ...]`` with names decoded and addresses lower-cased."""
    if not value:
        return []
    out = []
    for name, addr in email.utils.getaddresses([value]):
        addr = addr.strip().lower()
        if addr or name:
            out.append((decode_words(name), addr))
    return out


def format_addresses(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(f"{name} <{addr}>" if name and addr else (addr or name) for name, addr in pairs)


def parse_date(value: str | None) -> datetime | None:
    """A Date header as naive UTC, or None when it cannot be read."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def thread_key(message_id: str | None, in_reply_to: str | None, references: str | None) -> str | None:
    """The thread a message belongs to: the first Message-ID of References, else In-Reply-To, else its own."""
    refs = message_ids(references)
    if refs:
        return refs[0]
    parents = message_ids(in_reply_to)
    if parents:
        return parents[0]
    own = message_ids(message_id)
    return own[0] if own else None


def preview_text(raw: bytes | None, content_type: str | None = None) -> str:
    """A short plain-text preview from the first bytes of a message's text.

    ``raw`` is what ``BODY.PEEK[TEXT]<0.N>`` (or a server's PREVIEW) gave.
    MIME boundaries, part headers, quoted-printable and HTML tags are dropped
    as well as can be done on a fragment; this is a hint, not the body.
    """
    if not raw:
        return ""
    if isinstance(raw, str):
        text = raw
    else:
        if b"=\r\n" in raw or b"=3D" in raw or b"=20" in raw:
            try:
                raw = quopri.decodestring(raw)
            except ValueError:
                pass
        text = raw.decode("utf-8", "replace")
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("--") and len(stripped) > 10 and " " not in stripped:
            continue  # a MIME boundary
        if re.match(r"^[A-Za-z-]+:\s", stripped) and not lines:
            continue  # a part's headers before its text
        lines.append(stripped)
    text = " ".join(lines)
    if "<" in text and ">" in text:
        text = html.unescape(_TAGS.sub(" ", text))
    return _SPACES.sub(" ", text).strip()[:PREVIEW_CHARS]


def _cut(key: str, value: str | None) -> str | None:
    limit = LIMITS.get(key)
    if value is None or limit is None:
        return value
    return value[:limit]


def parse_envelope(headers: bytes | None, preview: bytes | str | None = None) -> dict:
    """The stored fields of a message from its header bytes (and preview source).

    Returns a dict with ``message_id, in_reply_to, references_header,
    thread_key, subject, from_name, from_addr, to_addrs, cc_addrs,
    participants, date, preview``: the column names of ``webapp.models.Message``.
    """
    msg = _parser.parsebytes(headers or b"")
    message_id = (message_ids(msg.get("Message-ID")) or [None])[0]
    in_reply_to = (message_ids(msg.get("In-Reply-To")) or [None])[0]
    references = " ".join(message_ids(msg.get("References"))) or None
    sender = addresses(msg.get("From"))
    to = addresses(", ".join(msg.get_all("To") or []))
    cc = addresses(", ".join(msg.get_all("Cc") or []))
    everyone = {addr for _, addr in sender + to + cc if addr}
    from_name, from_addr = sender[0] if sender else ("", "")
    fields = {
        "message_id": message_id,
        "in_reply_to": in_reply_to,
        "references_header": references,
        "thread_key": thread_key(message_id, in_reply_to, references),
        "subject": decode_words(msg.get("Subject")),
        "from_name": from_name,
        "from_addr": from_addr,
        "to_addrs": format_addresses(to),
        "cc_addrs": format_addresses(cc),
        "participants": (" " + " ".join(sorted(everyone)) + " ") if everyone else "",
        "date": parse_date(msg.get("Date")),
        "preview": preview_text(preview),
    }
    return {key: _cut(key, value) for key, value in fields.items()}
