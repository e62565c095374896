"""Message bodies on demand: the cache in ``message_bodies``, the job that fills it, MIME to safe text.

Sync stores envelopes only; the whole message is fetched when someone opens
it.  The web never talks to the mail server (ARCHITECTURE), so a request for a
body that is not cached enqueues :func:`fetch_body` (the message's id only)
and the page or API client polls the job.  The job SELECTs the folder by its
raw server name, read-only, and sends ``UID FETCH <uid> BODY.PEEK[]`` (PEEK:
opening a message in the console does not mark it read on the server).

A message whose folder or UID no longer exists on the server is remembered
for an hour in Redis as "gone", so the pages and the API answer 404 with that
reason instead of enqueueing the same failing fetch again and again.
"""

from __future__ import annotations

import email
import email.policy
import html
from collections.abc import Iterator
from email.message import EmailMessage
from html.parser import HTMLParser

from flask import current_app

from connectors.mime_text import html_to_text, preview_of_message

from . import email_log, job_status
from .extensions import db
from .models import Account, Folder, LogLevel, LogSource, Message, MessageBody, User, utcnow

GONE_TEXT = "This message is no longer on the server (it was moved or deleted there since the last sync)."
GONE_TTL = 3600
#: The fetch job: connect, log in, SELECT, one FETCH; bounded by the connection timeout plus slack.
_JOB_SLACK = 60


class MessageGone(Exception):
    """The folder or the UID is not on the server any more."""


# -- the cache and the job ----------------------------------------------------------------


def cached_raw(message: Message) -> bytes | None:
    row = db.session.get(MessageBody, message.id)
    return bytes(row.raw) if row is not None else None


def _redis():
    from .queue import get_redis

    return get_redis()


def _gone_key(message_pk: int) -> str:
    return f"mailroom:body-gone:{message_pk}"


def _job_key(message_pk: int, user_id: int) -> str:
    return f"mailroom:body-job:{message_pk}:{user_id}"


def is_gone(message: Message) -> bool:
    return bool(_redis().exists(_gone_key(message.id)))


def request_body(message: Message, user: User, api: bool = True) -> dict:
    """Enqueue the fetch of ``message``'s body for ``user`` (or answer their fetch already queued)."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from .mail_session import timeout

    redis = _redis()
    key = _job_key(message.id, user.id)
    job_id = redis.get(key)
    if job_id is not None:
        try:
            job = Job.fetch(job_id.decode(), connection=redis)
            if job.get_status(refresh=True) in ("queued", "started", "deferred", "scheduled"):
                from flask import url_for

                endpoint = "api.job_status" if api else "mailboxes.job_status"
                return {"job_id": job.id, "status_url": url_for(endpoint, job_id=job.id)}
        except NoSuchJobError:
            pass
    job_timeout = 2 * timeout() + _JOB_SLACK
    body = job_status.enqueue(
        fetch_body,
        message.id,
        owner=user,
        kind="fetch_body",
        account_id=message.account_id,
        timeout=job_timeout,
        api=api,
    )
    redis.set(key, body["job_id"], ex=job_timeout + 60)
    return body


def fetch_body(message_pk: int) -> dict:
    """The job: fetch the whole message from the server into the cache; ids in, a small dict out."""
    from connectors.errors import MailError

    from .mail_session import MailboxUnavailable, open_client

    message = db.session.get(Message, message_pk)
    if message is None:
        return {"ok": False, "gone": True, "error": "The message was removed from the console."}
    if db.session.get(MessageBody, message.id) is not None:
        return {"ok": True, "message_id": message.id, "cached": True}
    folder = db.session.get(Folder, message.folder_id)
    account = db.session.get(Account, message.account_id)
    try:
        with open_client(account, "imap") as client:
            raw = _fetch_raw(client, folder, message.uid)
    except MessageGone as exc:
        _redis().set(_gone_key(message.id), "1", ex=GONE_TTL)
        return {"ok": False, "gone": True, "error": str(exc)}
    except MailboxUnavailable as exc:
        return {"ok": False, "gone": False, "error": str(exc)}
    except MailError as exc:
        email_log.record(
            LogSource.INCOMING,
            LogLevel.ERROR,
            f"Fetching a message of {folder.display_name} failed: {exc.message}",
            account=account,
            created_by="system",
        )
        db.session.commit()
        return {"ok": False, "gone": False, "error": exc.message}
    db.session.merge(MessageBody(message_pk=message.id, raw=raw, fetched_at=utcnow()))
    # The whole message is here now: its preview from the whole text part, not sync's first bytes.
    message.preview = preview_of_message(raw)
    db.session.commit()
    current_app.logger.debug("cached body of message %s (%d bytes)", message.id, len(raw))
    return {"ok": True, "message_id": message.id, "size": len(raw)}


def _fetch_raw(client, folder: Folder, uid: int) -> bytes:
    """SELECT the folder by its raw name (readonly), check UIDVALIDITY, ``UID FETCH uid BODY.PEEK[]``."""
    from imapclient.exceptions import IMAPClientError

    imap = client.imap
    imap.folder_encode = False  # Folder.name is already the server's modified UTF-7
    try:
        try:
            status = imap.select_folder(folder.name, readonly=True)
        except IMAPClientError as exc:
            text = str(exc)
            if "NONEXISTENT" in text.upper() or "doesn't exist" in text.lower():
                raise MessageGone(f'The folder "{folder.display_name}" is no longer on the server.') from None
            raise client.classify(exc, "select") from exc
        except Exception as exc:
            raise client.classify(exc, "select") from exc
        uidvalidity = status.get(b"UIDVALIDITY")
        if (
            folder.uidvalidity is not None
            and uidvalidity is not None
            and int(uidvalidity) != folder.uidvalidity
        ):
            raise MessageGone(GONE_TEXT)
        try:
            data = imap.fetch([uid], [b"BODY.PEEK[]"])
        except Exception as exc:
            raise client.classify(exc, "fetch") from exc
    finally:
        imap.folder_encode = True
    for item in data.values():
        raw = item.get(b"BODY[]")
        if raw is not None:
            return bytes(raw)
    raise MessageGone(GONE_TEXT)


# -- MIME to what a page may show ---------------------------------------------------------


def parse(raw: bytes) -> dict:
    """``{"text", "html", "attachments"}`` of a message: text to show, sanitized HTML, attachment list.

    ``text`` is the text/plain part, or the HTML part stripped to text when
    there is no plain one.  ``html`` is the HTML part rebuilt from an allow-list
    of tags (no scripts, styles, attributes other than safe links, no images),
    or None.
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
        "html": sanitize_html(html_source) if html_source is not None else None,
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


_BLOCK = {
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
_DROP = {"script", "style", "head", "title", "template", "noscript", "iframe", "object", "svg", "math"}
_ALLOWED = {
    "p", "div", "br", "span", "b", "strong", "i", "em", "u", "ul", "ol", "li", "blockquote", "pre",
    "code", "table", "thead", "tbody", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "a",
}  # fmt: skip
_VOID = {"br", "hr"}


class _Walker(HTMLParser):
    def __init__(self, keep_tags: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.keep_tags = keep_tags
        self.out: list[str] = []
        self.dropping = 0

    def handle_starttag(self, tag, attrs):
        if tag in _DROP:
            self.dropping += 1
            return
        if self.dropping:
            return
        if not self.keep_tags:
            if tag in _BLOCK:
                self.out.append("\n")
            return
        if tag in _ALLOWED:
            extra = ""
            if tag == "a":
                href = dict(attrs).get("href") or ""
                if href.lower().startswith(("http://", "https://", "mailto:")):
                    extra = f' href="{html.escape(href, quote=True)}" rel="noopener noreferrer nofollow"'
            self.out.append(f"<{tag}{extra}>")

    def handle_startendtag(self, tag, attrs):
        if tag in _DROP:
            return
        self.handle_starttag(tag, attrs)
        if self.keep_tags is False or tag in _VOID:
            return
        if tag in _ALLOWED:
            self.out.append(f"</{tag}>")

    def handle_endtag(self, tag):
        if tag in _DROP:
            self.dropping = max(0, self.dropping - 1)
            return
        if self.dropping:
            return
        if self.keep_tags:
            if tag in _ALLOWED and tag not in _VOID:
                self.out.append(f"</{tag}>")
        elif tag in _BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.dropping:
            self.out.append(html.escape(data) if self.keep_tags else data)


def sanitize_html(source: str) -> str:
    """HTML rebuilt from an allow-list: no scripts, event handlers, styles, images or remote content."""
    walker = _Walker(keep_tags=True)
    walker.feed(source)
    walker.close()
    return "".join(walker.out)


def body_as_dict(raw: bytes) -> dict:
    parsed = parse(raw)
    body = {"text": parsed["text"], "attachments": parsed["attachments"]}
    if parsed["html"] is not None:
        body["html"] = parsed["html"]
    return body
