"""The texts Mailroom writes INTO a reply or a forward, and the quoted original.

Every built-in sentence that ends up inside a message someone receives (the "On …, … wrote:"
line above a quote, the forwarded message's header block and its labels) is made here and
nowhere else, inside :func:`in_language`, so it follows the SENDER's language
(``User.language``) rather than whoever's browser happens to build the draft.  The strings are
marked with ``_()`` for the catalogues (docs/translations.md).

The quote itself: plain text is prefixed line by line with ``"> "`` (``">"`` before a line
already quoted, RFC 3676 style); HTML goes into a ``<blockquote>`` after passing the
``MESSAGE_DISPLAY`` policy of :mod:`webapp.html_safety` — the strictest one, so nothing the
original carried (scripts, styles, tracking images) travels on in the reply.
"""

from __future__ import annotations

import html
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, tzinfo

from babel.dates import format_datetime
from flask_babel import force_locale, get_locale, get_timezone
from flask_babel import gettext as _

from connectors.outgoing import text_to_html

from . import html_safety


@contextmanager
def in_language(language: str | None) -> Iterator[None]:
    """Translate built-in mail texts into ``language`` (the sender's); None: the request's."""
    with force_locale(language) if language else nullcontext():
        yield


def _zone(name: str | None) -> tzinfo:
    """The sender's time zone (``User.time_zone``), else the request's (Flask-Babel's)."""
    try:
        return zoneinfo.ZoneInfo(name) if name else get_timezone()
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return get_timezone()


def _when(date: datetime | None, time_zone: str | None) -> str:
    """The original's date in the sender's language (the current locale) and time zone."""
    if date is None:
        return _("an unknown date")
    if date.tzinfo is None:  # stored dates are naive UTC
        date = date.replace(tzinfo=UTC)
    return format_datetime(date, "medium", tzinfo=_zone(time_zone), locale=get_locale())


def attribution(
    date: datetime | None, sender: str, language: str | None = None, time_zone: str | None = None
) -> str:
    """The line above a quote: ``On Mar 3, 2026, 12:00:00 PM, Carol <carol@example.com> wrote:``."""
    with in_language(language):
        return _("On %(date)s, %(sender)s wrote:", date=_when(date, time_zone), sender=sender)


def forward_block(
    headers: dict[str, str], date: datetime | None, language: str | None = None, time_zone: str | None = None
) -> list[str]:
    """The forwarded message's header block, one line each (labels in the sender's language).

    ``headers`` holds ``from``, ``subject``, ``to``, ``cc`` (empty ones are left out).
    """
    with in_language(language):
        labels = (
            (_("From"), headers.get("from")),
            (_("Date"), _when(date, time_zone)),
            (_("Subject"), headers.get("subject")),
            (_("To"), headers.get("to")),
            (_("Cc"), headers.get("cc")),
        )
        lines = [_("---------- Forwarded message ----------")]
    lines += [f"{label}: {value}" for label, value in labels if value]
    return lines


def quote_text(text: str) -> str:
    """``text`` with every line quoted (``"> "``; ``">"`` before an already quoted or empty line)."""
    lines = (text or "").replace("\r\n", "\n").rstrip("\n").split("\n")
    return "\n".join(">" + line if line.startswith(">") or not line else "> " + line for line in lines)


def _inner_html(markup: str | None, text: str) -> str:
    """The original as safe HTML: its own HTML under MESSAGE_DISPLAY, else its text escaped."""
    if markup:
        return html_safety.for_display(markup)
    return text_to_html(text or "")


def quoted_text(original_text: str, line: str) -> str:
    """A reply's plain quote: the attribution line, then the original quoted."""
    return f"{line}\n{quote_text(original_text)}"


def quoted_html(original_html: str | None, original_text: str, line: str) -> str:
    """A reply's HTML quote: the attribution line, then the original (sanitized) in a blockquote."""
    return f"<p>{html.escape(line)}</p>\n<blockquote>{_inner_html(original_html, original_text)}</blockquote>"


def forwarded_text(original_text: str, block: list[str]) -> str:
    """A forward's plain part: the header block, a blank line, the original text unquoted."""
    return "\n".join(block) + "\n\n" + (original_text or "").replace("\r\n", "\n").rstrip("\n")


def forwarded_html(original_html: str | None, original_text: str, block: list[str]) -> str:
    """A forward's HTML part: the header block, then the original (sanitized)."""
    head = "<br>\n".join(html.escape(line) for line in block)
    return f"<div><p>{head}</p>\n{_inner_html(original_html, original_text)}</div>"
