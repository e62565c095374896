"""The text a person reads of a message: its text part decoded, HTML turned into text.

One function, :func:`preview`, makes every stored preview, whatever the message came through:
a sync (which fetches only the top-level ``Content-Type`` and ``Content-Transfer-Encoding``
headers and the first bytes of the body, ``BODY.PEEK[TEXT]<0.n>``), a POP3 download, a body
fetched on demand, a message Mailroom sent.  The first text/plain part that is not an
attachment is preferred, else the first text/html part as text; its transfer encoding
(base64, quoted-printable) and charset are decoded, so a message with attachments never shows
``Content-Transfer-Encoding: base64`` or a MIME boundary.  A fragment cut anywhere is fine:
the MIME parser reads what is there, a cut base64 quantum or UTF-8 sequence is dropped.
"""

from __future__ import annotations

import base64
import binascii
import email.message
import email.parser
import email.policy
import quopri
import re
from html.parser import HTMLParser

#: Characters of preview text kept per message.
PREVIEW_CHARS = 200

_SPACES = re.compile(r"\s+")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
_parser = email.parser.BytesParser(policy=email.policy.compat32)
_header_parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
#: Transfer encodings whose bytes are the text itself.
_IDENTITY = {"", "7bit", "8bit", "binary"}


def preview(body: bytes | str | None, content_type: str | None, transfer_encoding: str | None = None) -> str:
    """A short plain-text preview from a message's body (or its first bytes).

    ``content_type`` and ``transfer_encoding`` are the message's top-level header values
    (None when absent: RFC 2045's default, 7-bit text/plain).  A ``str`` body is text already.
    """
    if not body:
        return ""
    if isinstance(body, str):
        return squeeze(body)
    found = text_part(body, content_type, transfer_encoding)
    if found is None:
        return ""
    subtype, text = found
    return squeeze(html_to_text(text) if subtype == "html" else text)


def preview_of_message(raw: bytes) -> str:
    """:func:`preview` of a whole message (headers and body), e.g. a POP3 download or a cached body."""
    header, body = split_message(raw)
    fields = _header_parser.parsebytes(header)
    return preview(body, fields.get("Content-Type"), fields.get("Content-Transfer-Encoding"))


def split_message(raw: bytes) -> tuple[bytes, bytes]:
    """(header block, body) of raw RFC 5322 bytes; a message without a blank line is all header."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        at = raw.find(sep)
        if at >= 0:
            return raw[: at + len(sep)], raw[at + len(sep) :]
    return raw, b""


def squeeze(text: str) -> str:
    """Whitespace runs as one space, cut to PREVIEW_CHARS."""
    return _SPACES.sub(" ", text).strip()[:PREVIEW_CHARS]


def text_part(
    body: bytes, content_type: str | None, transfer_encoding: str | None = None
) -> tuple[str, str] | None:
    """``("plain" | "html", decoded text)`` of the part a person reads first, or None (no text)."""
    top = email.message.Message()
    top["Content-Type"] = content_type or "text/plain"
    maintype, subtype = top.get_content_maintype(), top.get_content_subtype()
    if maintype == "text" and subtype in ("plain", "html"):
        return subtype, decode(body, transfer_encoding, top.get_content_charset())
    if maintype != "multipart":
        return None  # a message that is a single attachment (application/pdf, image/png, ...)
    tree = _parser.parsebytes(
        b"Content-Type: " + top["Content-Type"].encode("ascii", "replace") + b"\r\n\r\n" + body
    )
    html_part = None
    for part in tree.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        if part.get_content_disposition() == "attachment" or part.get_filename():
            continue
        if part.get_content_subtype() == "plain":
            return "plain", _part_text(part)
        if part.get_content_subtype() == "html" and html_part is None:
            html_part = part
    return ("html", _part_text(html_part)) if html_part is not None else None


def _part_text(part: email.message.Message) -> str:
    charset = part.get_content_charset()
    if (part.get("Content-Transfer-Encoding") or "").strip().lower() == "base64":
        # Our own decoder: the email package gives up on a base64 body cut mid-quantum.
        return decode(str(part.get_payload()).encode("ascii", "ignore"), "base64", charset)
    data = part.get_payload(decode=True)  # quoted-printable and 8-bit bytes undone by the email package
    return decode(data if isinstance(data, bytes) else b"", None, charset)


def decode(data: bytes, transfer_encoding: str | None, charset: str | None) -> str:
    """Bytes of a text part as text: transfer encoding undone (a cut end tolerated), then the charset."""
    cte = (transfer_encoding or "").strip().lower()
    if cte == "base64":
        clean = _NOT_BASE64.sub(b"", data.split(b"=", 1)[0])
        clean = clean[: len(clean) // 4 * 4]
        try:
            data = base64.b64decode(clean)
        except (binascii.Error, ValueError):
            data = b""
    elif cte == "quoted-printable":
        data = quopri.decodestring(data)
    elif cte not in _IDENTITY:
        return ""  # x-uuencode and the like: not worth guessing for a preview
    try:
        text = data.decode(charset or "utf-8", "replace")
    except LookupError:  # an unknown charset name
        text = data.decode("utf-8", "replace")
    return text.rstrip("\ufffd")  # a multi-byte character cut by the fragment's end


class _TextWalker(HTMLParser):
    """Text of HTML: tags dropped, scripts, styles and heads with their content, blocks as lines."""

    BLOCK = {
        "p",
        "div",
        "br",
        "li",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "pre",
        "table",
        "hr",
    }
    DROP = {"script", "style", "head", "title", "template", "noscript", "iframe", "object", "svg", "math"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.dropping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.DROP:
            self.dropping += 1
        elif not self.dropping and tag in self.BLOCK:
            self.out.append("\n")

    def handle_startendtag(self, tag, attrs):
        if tag not in self.DROP and not self.dropping and tag in self.BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in self.DROP:
            self.dropping = max(0, self.dropping - 1)
        elif not self.dropping and tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.dropping:
            self.out.append(data)


def html_to_text(source: str) -> str:
    """HTML stripped to text: tags dropped, scripts and styles with their content, blocks as lines."""
    walker = _TextWalker()
    walker.feed(source)
    walker.close()
    lines = [" ".join(line.split()) for line in "".join(walker.out).splitlines()]
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip()
