"""Building the RFC 5322 message Mailroom sends, without Flask or the database.

The web layer validates fields and stores an outgoing row; the send job turns
that row into an :class:`Outgoing` and calls :func:`build_message`.  The same
bytes go to the SMTP server and, as the Sent copy, to IMAP APPEND, so both
carry the one Message-ID made when the row was created.

Choices that matter to recipients:

* bodies are 7-bit safe (quoted-printable or base64), so no server needs
  8BITMIME; non-ASCII header text is RFC 2047 encoded by the email package;
* Bcc never appears in the headers, only in the SMTP envelope
  (:func:`envelope_recipients`);
* text and HTML become ``multipart/alternative``; attachments wrap that in
  ``multipart/mixed``; an HTML-only body gets a plain-text alternative.
"""

from __future__ import annotations

import email.policy
import email.utils
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from html.parser import HTMLParser

#: SMTP line endings and 7-bit transfer encodings for every body part.
POLICY = email.policy.SMTP.clone(cte_type="7bit")

#: Headers an ``extra_headers`` entry may not set: Mailroom writes these itself.
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "From",
        "To",
        "Cc",
        "Bcc",
        "Subject",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Sender",
        "Return-Path",
    )
)
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 ftext: printable ASCII except ":"

#: The separator line before a plain-text signature (RFC 3676 "-- ").
SIGNATURE_SEPARATOR = "-- "
#: A signature's own first line "--" or "-- " (people paste signatures with it), text and HTML.
_OWN_SEPARATOR_TEXT = re.compile(r"\A[ \t]*--[ \t]*(?:\r?\n|\Z)")
_OWN_SEPARATOR_HTML = re.compile(r"\A\s*(?:<p>\s*--\s*</p>|--\s*<br\s*/?>)\s*", re.IGNORECASE)


def signature_parts(sig_text: str | None, sig_html: str | None) -> tuple[str | None, str | None]:
    """The signature as (text, HTML), each made from the other when missing, without a leading
    separator line of its own: Mailroom writes SIGNATURE_SEPARATOR once before it, so a signature
    typed as "-- \\nAlice" is not sent with two separator lines."""
    if sig_text:
        sig_text = _OWN_SEPARATOR_TEXT.sub("", sig_text, count=1)
    if sig_html:
        sig_html = _OWN_SEPARATOR_HTML.sub("", sig_html, count=1)
    if not sig_text and sig_html:
        sig_text = html_to_text(sig_html)
    if not sig_html and sig_text:
        sig_html = text_to_html(sig_text)
    return sig_text or None, sig_html or None


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Outgoing:
    """Everything a message needs; recipients are ``addr`` or ``Name <addr>`` strings."""

    from_addr: str
    message_id: str
    from_name: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    subject: str = ""
    text: str | None = None
    html: str | None = None
    in_reply_to: str | None = None
    references: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    date: datetime | None = None
    signature_text: str | None = None
    signature_html: str | None = None


def make_message_id(domain: str) -> str:
    """A new ``<…@domain>`` Message-ID; the domain is the sending mailbox's, as RFC 5322 suggests."""
    return email.utils.make_msgid(domain=domain or "mailroom.invalid")


def check_header_name(name: str) -> str | None:
    """Why an extra header name cannot be used, or None when it can."""
    if not isinstance(name, str) or not _HEADER_NAME.match(name):
        return "is not a valid header name"
    if name.lower() in RESERVED_HEADERS:
        return "is written by Mailroom and cannot be set"
    return None


class _TextExtractor(HTMLParser):
    """HTML to readable plain text: block elements become line breaks, links keep their address."""

    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr"}
    SKIP = {"script", "style", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._href: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_endtag(self, tag):
        if tag in self.SKIP and self._skip:
            self._skip -= 1
        elif tag in self.BLOCKS and tag != "br":
            self.parts.append("\n")
        if tag == "a" and self._href:
            if self._href.startswith(("http:", "https:", "mailto:")):
                self.parts.append(f" <{self._href}>")
            self._href = None

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    """A plain-text rendering of (already sanitized) HTML, for the text alternative."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def text_to_html(text: str) -> str:
    """Plain text as HTML (escaped, line breaks kept), for a text signature in an HTML body."""
    return html.escape(text).replace("\n", "<br>\n")


def bodies(out: Outgoing) -> tuple[str | None, str | None]:
    """The final text and HTML bodies, each with the signature appended in its own form."""
    text, markup = out.text, out.html
    if markup is not None and text is None:
        text = html_to_text(markup)
    sig_text, sig_html = signature_parts(out.signature_text, out.signature_html)
    if sig_text and text is not None:
        text = text.rstrip("\n") + f"\n\n{SIGNATURE_SEPARATOR}\n" + sig_text
    if sig_html and markup is not None:
        markup = markup + f'\n<div class="signature">{SIGNATURE_SEPARATOR}<br>\n{sig_html}</div>'
    return text, markup


def _address(entry: str, name: str = "") -> Address:
    parsed_name, addr = email.utils.parseaddr(entry)
    addr = addr or entry
    name = name or parsed_name
    local, _, domain = addr.rpartition("@")
    return Address(display_name=name or "", username=local, domain=domain)


def build_message(out: Outgoing) -> EmailMessage:
    """The MIME message for ``out`` (no Bcc header); ``as_bytes()`` gives the wire form."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = _address(out.from_addr, out.from_name)
    if out.to:
        msg["To"] = [_address(a) for a in out.to]
    if out.cc:
        msg["Cc"] = [_address(a) for a in out.cc]
    msg["Subject"] = out.subject or ""
    date = out.date or datetime.now(UTC)
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    msg["Date"] = email.utils.format_datetime(date)
    msg["Message-ID"] = out.message_id
    if out.in_reply_to:
        msg["In-Reply-To"] = out.in_reply_to
    if out.references:
        msg["References"] = out.references
    for name, value in (out.extra_headers or {}).items():
        if check_header_name(name) is None:
            msg[name] = value
    msg["MIME-Version"] = "1.0"

    text, markup = bodies(out)
    msg.set_content(text if text is not None else "")
    if markup is not None:
        msg.add_alternative(markup, subtype="html")
    for att in out.attachments:
        maintype, _, subtype = (att.content_type or "application/octet-stream").partition("/")
        msg.add_attachment(
            att.data, maintype=maintype, subtype=subtype or "octet-stream", filename=att.filename
        )
    return msg


def envelope_recipients(out: Outgoing) -> list[str]:
    """RCPT TO addresses: To, Cc and Bcc, each once, in that order."""
    seen: set[str] = set()
    recipients = []
    for entry in [*out.to, *out.cc, *out.bcc]:
        addr = email.utils.parseaddr(entry)[1] or entry
        if addr.lower() not in seen:
            seen.add(addr.lower())
            recipients.append(addr)
    return recipients
