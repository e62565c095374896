"""Message bodies on demand: MIME to what a page may show, over the cache of :mod:`webapp.body_cache`.

Sync stores envelopes only; the whole message is fetched when someone opens
it.  The web never talks to the mail server (ARCHITECTURE), so a request for a
body that is not cached starts :func:`webapp.jobs.bodies.start` (the message's
id only) and the page or API client polls the job.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage

from connectors.mime_text import html_to_text

from . import html_safety
from .body_cache import GONE_TEXT, cached_raw, is_gone
from .jobs.bodies import fetch_body  # queued jobs name this path

__all__ = [
    "GONE_TEXT",
    "attachment",
    "body_as_dict",
    "cached_raw",
    "fetch_body",
    "headers",
    "is_gone",
    "parse",
]


# -- MIME to what a page may show ---------------------------------------------------------


def parse(raw: bytes) -> dict:
    """``{"text", "html", "attachments"}`` of a message: text to show, sanitized HTML, attachment list.

    ``text`` is the text/plain part, or the HTML part stripped to text when
    there is no plain one.  ``html`` is the HTML part cleaned by the message
    display policy of :mod:`webapp.html_safety` (no scripts, styles, attributes
    other than safe links, no images), or None.
    """
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    text_part, html_part = _body_parts(msg)
    text = _content(text_part) if text_part is not None else None
    html_source = _content(html_part) if html_part is not None else None
    if text is None and html_source is not None:
        text = html_to_text(html_source)
    if text is None and not msg.is_multipart():
        text = _content(msg) if msg.get_content_maintype() == "text" else ""
    attachments = [
        {"number": number, "filename": name, "content_type": ctype, "size": len(data)}
        for number, (name, ctype, data) in enumerate(_attachment_parts(msg, (text_part, html_part)), 1)
    ]
    return {
        "text": (text or "").replace("\r\n", "\n"),
        "html": html_safety.for_display(html_source) if html_source is not None else None,
        "attachments": attachments,
    }


def _body_parts(msg: EmailMessage) -> tuple:
    """(text/plain part, text/html part) shown as the body; either may be None."""
    text_part = html_part = None
    try:
        text_part = msg.get_body(preferencelist=("plain",))
        html_part = msg.get_body(preferencelist=("html",))
    except Exception:  # a broken structure: show what can be read
        pass
    return text_part, html_part


def _attachment_parts(msg: EmailMessage, shown: tuple) -> Iterator[tuple[str, str, bytes]]:
    """``(filename, content type, decoded bytes)`` of each attachment, in MIME order.

    The order numbers them (from 1) for their download links: :func:`parse` and
    :func:`attachment` walk the same way, so a number always means the same part.
    """
    for part in msg.walk():
        if part.is_multipart() or part in shown:
            continue
        filename = part.get_filename()
        if filename or part.get_content_disposition() == "attachment":
            yield filename or "", part.get_content_type(), part.get_payload(decode=True) or b""


def attachment(raw: bytes, number: int) -> tuple[str, str, bytes] | None:
    """The attachment numbered ``number`` (from 1, as :func:`parse` lists them), or None."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for n, found in enumerate(_attachment_parts(msg, _body_parts(msg)), 1):
        if n == number:
            return found
    return None


def headers(raw: bytes) -> dict:
    """The headers a message view shows, decoded."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out = {}
    for name in ("From", "To", "Cc", "Date", "Subject"):
        try:
            value = msg.get(name)
        except Exception:
            value = None
        if value is not None:
            out[name] = str(value)
    return out


def _content(part) -> str:
    try:
        content = part.get_content()
    except Exception:  # unknown charset, bad transfer encoding
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", "replace")
    if isinstance(content, bytes):
        return content.decode("utf-8", "replace")
    return content if isinstance(content, str) else ""


def body_as_dict(raw: bytes) -> dict:
    parsed = parse(raw)
    body = {"text": parsed["text"], "attachments": parsed["attachments"]}
    if parsed["html"] is not None:
        body["html"] = parsed["html"]
    return body
