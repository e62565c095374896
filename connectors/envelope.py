"""What Mailroom stores of a message: its envelope and a short preview, parsed from raw bytes.

Sync fetches only the header fields listed in :data:`HEADER_FIELDS` (plus the
first bytes of the body for the preview, which :func:`connectors.mime_text.preview`
makes from the decoded text part), so parsing must be cheap and must
never fail: a broken header gives an empty field, not an exception that would
stop a folder's sync.

Parsing is most of a first sync's CPU time (bench/sync.py), so the common
shapes take fast paths that give exactly what the stdlib gives (checked by
tests/test_envelope_fast.py): ASCII header blocks are split by hand instead of
the ``email`` feed parser, ``Name <addr>`` lists are matched by a regular
expression instead of ``getaddresses``' character-by-character tokenizer,
RFC 5322 dates are read by a regular expression, and values without ``=?``
skip ``decode_header``.  Anything unusual (8-bit header bytes, comments,
groups, obsolete dates) goes to the stdlib: the ``compat32`` parser,
``getaddresses``, ``parsedate_to_datetime`` and ``decode_header``.
"""

from __future__ import annotations

import email.header
import email.parser
import email.policy
import email.utils
import functools
import re
from datetime import UTC, datetime, timedelta

from connectors import mime_text

#: The header fields sync fetches (``BODY.PEEK[HEADER.FIELDS (...)]``); the two MIME ones say
#: how to read the body's first bytes for the preview (a multipart's boundary, base64, charset).
HEADER_FIELDS = (
    "MESSAGE-ID",
    "IN-REPLY-TO",
    "REFERENCES",
    "SUBJECT",
    "FROM",
    "TO",
    "CC",
    "DATE",
    "CONTENT-TYPE",
    "CONTENT-TRANSFER-ENCODING",
)

#: Column widths of the ``messages`` table; longer values are cut, never refused.
LIMITS = {"message_id": 998, "in_reply_to": 998, "thread_key": 998, "from_name": 320, "from_addr": 320}

_parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
_MSGID = re.compile(r"<[^<>\s]+>")
_SPACES = re.compile(r"\s+")
#: A header line's name (RFC 5322 ftext) and the rest of the line.
_FIELD_LINE = re.compile(r"([!-9;-~]+):(.*)", re.S)
#: Line breaks ``str.splitlines`` knows and the email parser does not.
_ODD_BREAKS = re.compile(r"[\x0b\x0c\x1c-\x1e]")
#: One element of an address list, commas inside quotes kept: ``"Rossi, M" <m@x>``.
_ADDR_ELEMENT = re.compile(r'(?:"(?:[^"\\]|\\.)*"|[^,"])+')
_NAME_ADDR = re.compile(r'\s*(?:"((?:[^"\\\r\n])*)"|([^<>"]*?))\s*<\s*([^<>\s"]+@[^<>\s"]+)\s*>\s*')
_BARE_ADDR = re.compile(r"\s*([^<>\s\"]+@[^<>\s\"]+)\s*")
_MONTHS = {m: i for i, m in enumerate(("jan feb mar apr may jun jul aug sep oct nov dec").split(), 1)}
_DATE = re.compile(
    r"\s*(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"\s+([+-])(\d{2})(\d{2})\s*(?:\([^()]*\))?\s*"
)


def decode_words(value: str | None) -> str:
    """An RFC 2047 header value as text (``=?utf-8?q?Caf=C3=A9?=`` → ``Café``)."""
    if not value:
        return ""
    if isinstance(value, str):
        if "=?" not in value:
            return _SPACES.sub(" ", value).strip()  # what decode_header gives without encoded words
        return _decode_encoded(value)
    return _decode_encoded.__wrapped__(value)


@functools.lru_cache(maxsize=8192)
def _decode_encoded(value) -> str:
    """decode_words for values with encoded words; cached, because names and subjects repeat a lot."""
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
    if isinstance(value, str):
        return list(_addresses_of_text(value))
    return _addresses_stdlib(value)


@functools.lru_cache(maxsize=8192)
def _addresses_of_text(value: str) -> tuple[tuple[str, str], ...]:
    """Cached: the same From and To lines come back message after message."""
    fast = _simple_addresses(value)
    return tuple(fast if fast is not None else _addresses_stdlib(value))


def _addresses_stdlib(value) -> list[tuple[str, str]]:
    out = []
    for name, addr in email.utils.getaddresses([value]):
        addr = addr.strip().lower()
        if addr or name:
            out.append((decode_words(name), addr))
    return out


def _simple_addresses(value: str) -> list[tuple[str, str]] | None:
    """``addresses()`` for plain ``addr`` / ``Name <addr>`` / ``"Name" <addr>`` lists; None for anything else."""
    if "(" in value or ":" in value or ";" in value or "\\" in value:
        return None  # comments, groups, quoted pairs: the stdlib tokenizer
    out = []
    for element in _ADDR_ELEMENT.findall(value):
        if not element.strip():
            continue
        m = _NAME_ADDR.fullmatch(element)
        if m is not None:
            quoted, plain, addr = m.groups()
            name = quoted if quoted is not None else plain
            if quoted is None and any(c in name for c in ".@,[]"):
                return None
            name = _SPACES.sub(" ", name).strip() if quoted is None else name
            out.append((decode_words(name), addr.lower()))
            continue
        m = _BARE_ADDR.fullmatch(element)
        if m is None:
            return None
        out.append(("", m.group(1).lower()))
    return out


def format_addresses(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(f"{name} <{addr}>" if name and addr else (addr or name) for name, addr in pairs)


def parse_date(value: str | None) -> datetime | None:
    """A Date header as naive UTC, or None when it cannot be read."""
    if not value:
        return None
    m = _DATE.fullmatch(value) if isinstance(value, str) else None
    if m is not None:  # "-0000" too: the stdlib's naive result is the same wall time
        day, mon, year, hour, minute, second, sign, oh, om = m.groups()
        month = _MONTHS.get(mon.lower())
        if month is not None:
            try:
                local = datetime(int(year), month, int(day), int(hour), int(minute), int(second or 0))
            except ValueError:
                return None  # what parsedate_to_datetime's ValueError gives below
            offset = timedelta(hours=int(oh), minutes=int(om))
            return local - offset if sign == "+" else local + offset
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


def _cut(key: str, value: str | None) -> str | None:
    limit = LIMITS.get(key)
    if value is None or limit is None:
        return value
    return value[:limit]


class _Fields:
    """The ``get``/``get_all`` of a compat32 Message, for a header block split by hand."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, list[str]]) -> None:
        self._values = values

    def get(self, name: str) -> str | None:
        found = self._values.get(name.lower())
        return found[0] if found else None

    def get_all(self, name: str) -> list[str] | None:
        return self._values.get(name.lower())


def _split_fields(raw: bytes) -> _Fields | None:
    """Header fields as the compat32 parser gives them (folds kept), or None when it must decide.

    Only for 7-bit header blocks whose every line is a field or a continuation;
    8-bit bytes, a first line that is not a field, or a line without a colon go to the stdlib.
    """
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    if _ODD_BREAKS.search(text):
        return None
    values: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines(keepends=True):
        if line in ("\r\n", "\n", "\r"):
            break  # the blank line that ends the header
        if line[0] in " \t":
            if current is None:
                return None
            current.append(line)
            continue
        m = _FIELD_LINE.match(line)
        if m is None or line.startswith("From "):
            return None
        name, rest = m.groups()
        current = [rest.lstrip(" \t")]
        values.setdefault(name.lower(), []).append(current)  # type: ignore[arg-type]
    return _Fields(
        {name: ["".join(parts).rstrip("\r\n") for parts in found] for name, found in values.items()}
    )


def parse_envelope(headers: bytes | None, body: bytes | str | None = None) -> dict:
    """The stored fields of a message from its header bytes (and its body or the body's first bytes).

    Returns a dict with ``message_id, in_reply_to, references_header,
    thread_key, subject, from_name, from_addr, to_addrs, cc_addrs,
    participants, date, preview``: the column names of ``webapp.models.Message``.
    """
    msg = _split_fields(headers or b"")
    if msg is None:
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
        "preview": mime_text.preview(body, msg.get("Content-Type"), msg.get("Content-Transfer-Encoding")),
    }
    for key, limit in LIMITS.items():  # only these columns have a width; a dict pass over all was 5%
        value = fields.get(key)
        if value is not None and len(value) > limit:
            fields[key] = value[:limit]
    return fields
