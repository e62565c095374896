"""Attachment downloads, received and sent: the bytes, served so that a browser can only save them.

Every download answers ``Content-Disposition: attachment`` with the file name as RFC 6266
gives it (werkzeug's ``send_file``: an ASCII ``filename=`` and ``filename*=UTF-8''…`` for a
non-ASCII name), ``X-Content-Type-Options: nosniff`` and ``Content-Security-Policy: sandbox``,
so even a browser that showed it would run nothing of it on Mailroom's origin.  Types a
browser renders as an active document (HTML, SVG, XML, scripts) go out as
``application/octet-stream``; other types keep the type the message declares.  Access is
checked by the callers exactly like the message itself (another user's is a 404).
"""

from __future__ import annotations

import re
import unicodedata
from io import BytesIO

from flask import Response, send_file

#: Declared types a browser would render or run as a document of Mailroom's origin.
ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "text/xsl",
        "application/xslt+xml",
        "multipart/x-mixed-replace",
    }
)
NEUTRAL_TYPE = "application/octet-stream"
#: RFC 6838 type/subtype (what the email package gives, lower-cased); anything else is neutral.
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
SANDBOX = "sandbox; default-src 'none'"


def served_type(content_type: str | None) -> str:
    """The Content-Type to answer: the declared one unless it is active or malformed."""
    value = (content_type or "").strip().lower()
    if not _MEDIA_TYPE.fullmatch(value) or value in ACTIVE_TYPES:
        return NEUTRAL_TYPE
    return value


def download_name(filename: str | None, fallback: str = "attachment") -> str:
    """A file name fit for a download: its last path part, no control characters, never empty."""
    name = unicodedata.normalize("NFC", filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join("_" if unicodedata.category(ch)[0] == "C" else ch for ch in name).strip(" .")
    return name[:200] or fallback


def download(filename: str | None, content_type: str | None, data: bytes) -> Response:
    """The download response for one attachment (see the module docstring)."""
    response = send_file(
        BytesIO(data),
        mimetype=served_type(content_type),
        as_attachment=True,
        download_name=download_name(filename),
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = SANDBOX
    response.headers["Cache-Control"] = "private, no-store"
    return response
