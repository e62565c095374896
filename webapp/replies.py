"""Reply, Reply all and Forward: the draft made from a received (or sent) message.

One function, :func:`build`, serves the compose page and the API: from the message's row and
its whole raw bytes (``webapp.body_cache``; a message not fetched yet is fetched by the body job
first) it computes

* the recipients: Reply goes to ``Reply-To`` when the original has one, else to its ``From``;
  Reply all adds the original ``To`` and ``Cc`` and drops every address of the user's own
  (each mailbox's address and SMTP From, their aliases, and the From chosen), each address once;
  a reply to a message the user sent goes to that message's recipients;
* the subject with one ``Re: `` / ``Fwd: `` (prefixes already there, also ``RE:``, ``AW:``,
  ``R:``, ``Odp:``… are not stacked);
* ``In-Reply-To`` (the parent's Message-ID) and ``References`` (the parent's References — or,
  as RFC 5322 3.6.4 says, its single In-Reply-To — followed by its Message-ID), so the thread
  stays one;
* From: the address of the user's that the message was sent to (a mailbox or an alias: To, Cc,
  Delivered-To, X-Original-To), preferring the mailbox the message is in; else that mailbox;
* the bodies: what the user writes, the user's signature (once, above the quote), then the
  quote (webapp.quoting: texts in the sender's language).  The row is stored with origin
  ``reply``/``forward``, which the send job does not sign again (webapp.jobs.send.SIGNED_ORIGINS);
* on Forward, the original's attachments (all, or the numbers chosen), carried from the raw bytes.
"""

from __future__ import annotations

import base64
import email
import email.policy
import email.utils
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from typing import Any

from flask_babel import gettext as _

from connectors.outgoing import SIGNATURE_SEPARATOR, html_to_text, signature_parts, text_to_html

from . import i18n, message_bodies, quoting, sending, validation
from .attachments import download_name
from .errors import Invalid
from .extensions import db
from .models import Account, Alias, Message, User
from .signatures import signature_for

MODES = ("reply", "reply_all", "forward")
#: Subject prefixes of replies and forwards in the languages people write them.
REPLY_PREFIXES = frozenset({"re", "aw", "sv", "vs", "antw", "r", "rif", "odp", "ref"})
FORWARD_PREFIXES = frozenset({"fwd", "fw", "wg", "tr", "rv", "enc", "pd", "i"})
_PREFIX = re.compile(r"\s*([a-z]{1,4})\s*(?:\[\d+\]|\(\d+\))?\s*:\s*", re.IGNORECASE)
_MSGID = re.compile(r"<[^<>\s]+@[^<>\s]+>")
#: References kept at most: the thread's first message and the latest ones (RFC 5322 allows trimming).
MAX_REFERENCES = 30
#: Fields of the API's reply/forward request besides the send fields it may override.
OPTIONS = {"send", "forward_attachments"}
OVERRIDES = {"from", "to", "cc", "bcc", "subject", "text", "html", "attachments", "send_at"}


# -- subject and thread headers --------------------------------------------------------------


def _strip_prefixes(subject: str, prefixes: frozenset[str]) -> str:
    rest = (subject or "").strip()
    while (match := _PREFIX.match(rest)) and match.group(1).lower() in prefixes:
        rest = rest[match.end() :]
    return rest.strip()


def reply_subject(subject: str | None) -> str:
    """``Re: `` once before the subject, whatever reply prefixes (and how many) it had."""
    return ("Re: " + _strip_prefixes(subject or "", REPLY_PREFIXES)).strip()


def forward_subject(subject: str | None) -> str:
    """``Fwd: `` once before the subject, whatever forward prefixes it had."""
    return ("Fwd: " + _strip_prefixes(subject or "", FORWARD_PREFIXES)).strip()


def message_ids(value: str | None) -> list[str]:
    """The ``<id@host>`` tokens of a header value, in order (anything else is dropped)."""
    return _MSGID.findall(value or "")


def thread_headers(
    parent_id: str | None, references: str | None, in_reply_to: str | None
) -> tuple[str | None, str | None]:
    """``(In-Reply-To, References)`` of a reply to a message with these headers (RFC 5322 3.6.4)."""
    parent = (message_ids(parent_id) or [None])[0]
    ids = message_ids(references)
    if not ids and len(message_ids(in_reply_to)) == 1:
        ids = message_ids(in_reply_to)
    if parent:
        ids = [i for i in ids if i != parent] + [parent]
    seen: set[str] = set()
    ids = [i for i in ids if not (i in seen or seen.add(i))]
    if len(ids) > MAX_REFERENCES:
        ids = ids[:1] + ids[-(MAX_REFERENCES - 1) :]
    return parent, " ".join(ids) or None


# -- the original's headers --------------------------------------------------------------------


@dataclass
class Original:
    """What a draft needs of the original message, read once from its raw bytes."""

    message: Message
    mime: EmailMessage
    text: str
    html: str | None
    attachments: list[dict]
    date: datetime | None

    def addresses(self, name: str) -> list[tuple[str, str]]:
        """``[(display name, address)]`` of an address header, valid addresses only."""
        try:
            values = [str(v) for v in self.mime.get_all(name, [])]
        except Exception:  # a header the email package cannot decode at all
            return []
        out = []
        for display, addr in email.utils.getaddresses(values):
            try:
                out.append((_clean_name(display), validation.email(addr)))
            except ValueError:
                continue
        return out

    def header(self, name: str) -> str | None:
        try:
            value = self.mime.get(name)
        except Exception:
            return None
        return str(value).strip() if value is not None else None


def original_of(message: Message, raw: bytes) -> Original:
    # Headers only here (cheap even for a message with megabytes of attachments); the one
    # full parse is message_bodies.parse.
    mime = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    parsed = message_bodies.parse(raw)
    date = None
    try:
        header = mime.get("Date")
        date = header.datetime if header is not None else None
    except Exception:
        date = None
    return Original(
        message, mime, parsed["text"], parsed["html"], parsed["attachments"], date or message.date
    )


def _clean_name(name: str) -> str:
    """A display name fit for an ``Name <addr>`` entry of the form: one line, no double quotes."""
    return " ".join("".join(ch for ch in (name or "") if ord(ch) >= 32).replace('"', "'").split())


def entry(name: str, addr: str) -> str:
    """``Name <addr>`` (quoted when the name has specials, so commas do not split it) or ``addr``."""
    if not name:
        return addr
    if re.search(r"[,;:<>@()\[\]\\.]", name):
        name = f'"{name}"'
    return f"{name} <{addr}>"


# -- who and from whom -------------------------------------------------------------------------


def own_addresses(user: User) -> set[str]:
    """Every address of the user's: each mailbox's address and SMTP From, and their aliases."""
    accounts = Account.query.filter_by(user_id=user.id).all()
    own = {a.lower() for account in accounts for a in (account.email, account.smtp_from) if a}
    if accounts:
        aliases = Alias.query.filter(Alias.account_id.in_([a.id for a in accounts])).all()
        own |= {alias.address.lower() for alias in aliases}
    return own


def recipients(mode: str, original: Original, own: set[str]) -> tuple[list[str], list[str]]:
    """``(to, cc)`` of the draft (see the module docstring)."""
    if mode == "forward":
        return [], []
    sender = original.addresses("From")
    if sender and all(addr.lower() in own for _name, addr in sender):  # one's own message: its recipients
        primary, others = original.addresses("To"), []
    else:
        primary, others = original.addresses("Reply-To") or sender, original.addresses("To")
    if mode == "reply":
        return [entry(*p) for p in primary], []
    seen = set(own)
    to = _unique(primary + others, seen)
    cc = _unique(original.addresses("Cc"), seen)
    if not to and cc:
        to, cc = cc, []
    if not to:  # everyone was oneself (a note to self): answer its sender anyway
        to = _unique(primary, set())
    return to, cc


def _unique(items: list[tuple[str, str]], seen: set[str]) -> list[str]:
    out = []
    for name, addr in items:
        if addr.lower() not in seen:
            seen.add(addr.lower())
            out.append(entry(name, addr))
    return out


def default_from(user: User, original: Original, senders: list[dict]) -> dict | None:
    """The sender entry the message came to (see the module docstring), or None (main mailbox)."""
    by_address = {s["email"].lower(): s for s in senders}
    names = ("From", "To", "Cc", "Delivered-To", "X-Original-To")
    matches = [
        by_address[addr.lower()]
        for name in names
        for _name, addr in original.addresses(name)
        if addr.lower() in by_address
    ]
    here = original.message.account_id
    preferred = [m for m in matches if m["account_id"] == here] + matches
    if preferred:
        return preferred[0]
    return next((s for s in senders if s["account_id"] == here and s["kind"] == "mailbox"), None)


# -- the draft ---------------------------------------------------------------------------------


@dataclass
class Draft:
    mode: str
    message_id: int
    sender: dict | None
    to: list[str]
    cc: list[str]
    subject: str
    text: str
    html: str | None
    in_reply_to: str | None
    references: str | None
    attachments: list[dict] = field(default_factory=list)
    signature: dict = field(default_factory=dict)
    #: The HTML form of the draft even when the message goes as plain text (the page's HTML switch).
    html_variant: str = ""
    #: The quoted original as placed in ``text`` and ``html_variant`` (where a signature goes before).
    quote: dict = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return "forward" if self.mode == "forward" else "reply"


def signature_block(user: User, sender: dict | None) -> dict:
    """``{"text", "html"}``: the signature of ``sender`` as placed in a draft ('' when none)."""
    account = db.session.get(Account, sender["account_id"]) if sender else None
    if account is None:
        return {"text": "", "html": ""}
    sig_text, sig_html = signature_parts(*signature_for(account, user, sender["email"]))
    if not sig_text:
        return {"text": "", "html": ""}
    return {
        "text": f"{SIGNATURE_SEPARATOR}\n{sig_text}",
        "html": f'<div class="signature">{SIGNATURE_SEPARATOR}<br>\n{sig_html}</div>',
    }


def _quotes(mode: str, original: Original, user: User) -> tuple[str, str]:
    """(text, html) of the quoted original: a reply's quote or a forward's header block and body;
    the texts in the sender's language and the date in their time zone."""
    language, zone = i18n.language_of(user), getattr(user, "time_zone", None)
    if mode == "forward":
        headers = {
            "from": original.header("From"),
            "subject": original.header("Subject"),
            "to": original.header("To"),
            "cc": original.header("Cc"),
        }
        block = quoting.forward_block(headers, original.date, language, zone)
        return quoting.forwarded_text(original.text, block), quoting.forwarded_html(
            original.html, original.text, block
        )
    sender = ", ".join(entry(*a) for a in original.addresses("From")) or original.message.from_addr
    line = quoting.attribution(original.date, sender, language, zone)
    return quoting.quoted_text(original.text, line), quoting.quoted_html(original.html, original.text, line)


def build(
    user: User,
    mode: str,
    original: Original,
    *,
    from_addr: str | None = None,
    text: str | None = None,
    html: str | None = None,
) -> Draft:
    """The draft of ``mode`` for ``original``; ``text``/``html``: what the user writes above it."""
    senders = sending.allowed_senders(user)
    sender = _chosen(senders, from_addr) if from_addr else default_from(user, original, senders)
    own = own_addresses(user) | ({sender["email"].lower()} if sender else set())
    to, cc = recipients(mode, original, own)
    message = original.message
    subject_source = original.header("Subject") or message.subject
    in_reply_to, references = thread_headers(
        original.header("Message-ID") or message.message_id,
        original.header("References") or message.references_header,
        original.header("In-Reply-To") or message.in_reply_to,
    )
    signature = signature_block(user, sender)
    quote_text, quote_html = _quotes(mode, original, user)
    if text is None and html:  # the text part says what the HTML says
        text = html_to_text(html)
    typed_html = html if html is not None else (text_to_html(text) if text else "<p><br></p>")
    html_variant = _join_html(typed_html, signature["html"], quote_html)
    return Draft(
        mode=mode,
        message_id=message.id,
        sender=sender,
        to=to,
        cc=cc,
        subject=forward_subject(subject_source) if mode == "forward" else reply_subject(subject_source),
        text=_join_text(text or "", signature["text"], quote_text),
        html=html_variant if (original.html is not None or html is not None) else None,
        in_reply_to=in_reply_to if mode != "forward" else None,
        references=references,
        attachments=list(original.attachments) if mode == "forward" else [],
        signature=signature,
        html_variant=html_variant,
        quote={"text": quote_text, "html": quote_html},
    )


def _chosen(senders: list[dict], address: str) -> dict | None:
    """The sender entry of an address the user chose (an unknown one is refused later, by sending.clean)."""
    parsed = email.utils.parseaddr(address)[1].lower() or address.lower()
    return next((s for s in senders if s["email"].lower() == parsed), None)


def _join_text(typed: str, signature: str, quote: str) -> str:
    parts = [typed.rstrip("\n")]
    if signature:
        parts.append(signature)
    parts.append(quote)
    return "\n\n".join(parts) + "\n"


def _join_html(typed: str, signature: str, quote: str) -> str:
    return "\n".join(p for p in (typed, signature, quote) if p)


def draft_fields(draft: Draft) -> dict:
    """The draft's message fields, named as the send fields are: the one shape of a draft's
    message, shown by :func:`as_dict` and sent by :func:`send_fields`."""
    return {
        "from": draft.sender["email"] if draft.sender else None,
        "to": draft.to,
        "cc": draft.cc,
        "subject": draft.subject,
        "text": draft.text,
        "html": draft.html,
        **thread_fields(draft),
    }


def as_dict(draft: Draft) -> dict:
    """The draft for the API (the compose page shows the same fields)."""
    return {
        "mode": draft.mode.replace("_", "-"),
        "message_id": draft.message_id,
        **draft_fields(draft),
        "attachments": draft.attachments,
    }


# -- from a draft to the send fields ------------------------------------------------------------


def carried_attachments(raw: bytes, numbers: list[int]) -> list[dict]:
    """The original's attachments ``numbers`` as send fields (base64), each named."""
    out = []
    for number in numbers:
        found = message_bodies.attachment(raw, number)
        if found is None:
            continue
        filename, content_type, data = found
        out.append(
            {
                "filename": download_name(filename, f"attachment-{number}"),
                "content_type": content_type or "application/octet-stream",
                "content_base64": base64.b64encode(data).decode("ascii"),
            }
        )
    return out


def thread_fields(draft: Draft) -> dict:
    """The send fields a draft fixes whatever the user edits: In-Reply-To and References."""
    return {"in_reply_to": draft.in_reply_to, "references": draft.references}


def clean_request(data: Any, mode: str, original: Original) -> tuple[dict, dict, list[int]]:
    """The API request: ``(options, overrides, attachment numbers to carry)``; 422 naming a field."""
    errors: dict[str, str] = {}
    for key in sorted(set(data) - OPTIONS - OVERRIDES):
        errors[key] = _("unknown field")
    send = data.get("send", False)
    if not isinstance(send, bool):
        errors["send"] = _("must be true or false")
    numbers = [a["number"] for a in original.attachments] if mode == "forward" else []
    chosen = data.get("forward_attachments")
    if chosen is not None:
        known = set(numbers)
        if mode != "forward":
            errors["forward_attachments"] = _("Only a forward carries the original's attachments.")
        elif not isinstance(chosen, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n in known for n in chosen
        ):
            errors["forward_attachments"] = (
                _(
                    "must be a list of the original's attachment numbers (%(numbers)s)",
                    numbers=", ".join(map(str, sorted(known))),
                )
                if known
                else _("must be a list of the original's attachment numbers (it has none)")
            )
        else:
            numbers = sorted(set(chosen))
    for key in ("from", "text", "html"):
        if data.get(key) is not None and not isinstance(data.get(key), str):
            errors[key] = _("must be a string")
    if errors:
        raise Invalid(errors)
    overrides = {k: v for k, v in data.items() if k in OVERRIDES - {"text", "html"}}
    return {"send": send}, overrides, numbers


def send_fields(draft: Draft, overrides: dict, carried: list[dict]) -> dict:
    """The fields for :func:`webapp.send_queue.submit`: the draft, the overrides, the carried files."""
    fields = {**draft_fields(draft), **overrides}
    extra = overrides.get("attachments")
    if carried or extra is not None:
        fields["attachments"] = carried + (extra if isinstance(extra, list) else [])
        if extra is not None and not isinstance(extra, list):
            fields["attachments"] = extra  # not a list: sending.clean names the field
    return fields
