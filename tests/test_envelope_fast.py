"""The envelope parser's fast paths give exactly what the stdlib gives.

connectors.envelope splits ASCII header blocks, ``Name <addr>`` lists and
RFC 5322 dates by hand because the stdlib's parsers were most of a first
sync's time (bench/sync.py).  :func:`reference` is the stdlib-only parser
those fast paths replaced; every message of a generated corpus (the
benchmark's) and a list of awkward headers must come out the same.
"""

from __future__ import annotations

import email.header
import email.parser
import email.policy
import email.utils
import random
from datetime import UTC

import pytest

from bench.maildir_gen import make_message
from connectors import envelope, mime_text
from connectors.envelope import HEADER_FIELDS, parse_envelope

_parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)


def _decode_words(value):
    if not value:
        return ""
    try:
        parts = email.header.decode_header(value)
    except Exception:
        return envelope._SPACES.sub(" ", str(value)).strip()
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            try:
                chunk = chunk.decode(charset or "ascii", "replace")
            except LookupError:
                chunk = chunk.decode("utf-8", "replace")
        out.append(chunk)
    return envelope._SPACES.sub(" ", "".join(out)).strip()


def _addresses(value):
    if not value:
        return []
    out = []
    for name, addr in email.utils.getaddresses([value]):
        addr = addr.strip().lower()
        if addr or name:
            out.append((_decode_words(name), addr))
    return out


def _date(value):
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


def reference(headers: bytes, preview=None) -> dict:
    """parse_envelope as it was before the fast paths: compat32 parser and stdlib helpers only."""
    ids = envelope.message_ids
    msg = _parser.parsebytes(headers or b"")
    message_id = (ids(msg.get("Message-ID")) or [None])[0]
    in_reply_to = (ids(msg.get("In-Reply-To")) or [None])[0]
    references = " ".join(ids(msg.get("References"))) or None
    sender = _addresses(msg.get("From"))
    to = _addresses(", ".join(msg.get_all("To") or []))
    cc = _addresses(", ".join(msg.get_all("Cc") or []))
    everyone = {addr for _, addr in sender + to + cc if addr}
    from_name, from_addr = sender[0] if sender else ("", "")
    fields = {
        "message_id": message_id,
        "in_reply_to": in_reply_to,
        "references_header": references,
        "thread_key": envelope.thread_key(message_id, in_reply_to, references),
        "subject": _decode_words(msg.get("Subject")),
        "from_name": from_name,
        "from_addr": from_addr,
        "to_addrs": envelope.format_addresses(to),
        "cc_addrs": envelope.format_addresses(cc),
        "participants": (" " + " ".join(sorted(everyone)) + " ") if everyone else "",
        "date": _date(msg.get("Date")),
        "preview": mime_text.preview(preview, msg.get("Content-Type"), msg.get("Content-Transfer-Encoding")),
    }
    return {key: envelope._cut(key, value) for key, value in fields.items()}


def header_fields(raw: bytes) -> bytes:
    """What ``BODY.PEEK[HEADER.FIELDS (...)]`` returns: the wanted fields (folds kept) and a blank line."""
    head = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    wanted = {f.lower().encode() for f in HEADER_FIELDS}
    out, keep = [], False
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        keep = line.split(b":", 1)[0].strip().lower() in wanted
        if keep:
            out.append(line)
    return b"".join(out) + b"\r\n"


def test_the_benchmark_corpus_parses_as_with_the_stdlib():
    rng = random.Random(7)
    threads: list = []
    fast_paths = 0
    for i in range(1, 3001):
        raw, _ = make_message(i, rng, threads, 1.7e9 + i * 300)
        for block in (header_fields(raw), raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"):
            assert parse_envelope(block) == reference(block), block
        fast_paths += envelope._split_fields(header_fields(raw)) is not None
    assert fast_paths > 2500  # the corpus really exercised the fast paths


AWKWARD = [
    b'From: "Rossi, Marco" <Marco.Rossi@Example.COM>\r\nTo: a@x, , b@y,\r\n\r\n',
    b"From: John Q. Public <jqp@example.com>\r\nCc: Anna [ACME] <anna@acme.test>\r\n\r\n",
    b"From: alice@example.com (Alice Liddell)\r\nTo: undisclosed-recipients:;\r\n\r\n",
    b'From: "Escaped \\" quote" <e@x>\r\nTo: Group: a@x, b@y;\r\n\r\n',
    b"From: =?utf-8?q?Zo=C3=AB?= =?utf-8?q?_M=C3=BCller?= <zoe@x>\r\n\r\n",
    b"From: =?iso-8859-1?q?J=FCrgen?=   Schmidt <js@x>\r\nTo: <bare@x>\r\n\r\n",
    b'From: "=?utf-8?b?w4lsb2RpZQ==?=" <e@x>\r\n\r\n',
    b"From: Zo\xc3\xab <raw8bit@x>\r\nSubject: Caf\xc3\xa9 raw UTF-8\r\n\r\n",
    b"Subject: =?utf-8?q?Caf=C3=A9?=\r\n =?utf-8?q?_folded?= and plain\r\n\r\n",
    b"Subject : spaced colon\r\nFrom: a@x\r\n\r\n",
    b"Subject: first\r\nSubject: second\r\nTo: a@x\r\nTo: b@y\r\n\r\n",
    b"Subject:\r\nFrom:\r\nDate:\r\n\r\n",
    b" leading continuation\r\nSubject: x\r\n\r\n",
    b"From nobody Mon Jan  1 00:00:00 2024\r\nSubject: mbox\r\n\r\n",
    b"Subject: vertical\x0btab\r\n\r\n",
    b"Subject: no end\r\nnot a header line\r\nFrom: a@x\r\n\r\n",
    b"Subject: bare LF\nFrom: A <a@x>\nDate: Tue, 3 Mar 2026 10:00:00 +0100\n\n",
    b"Date: Tue, 03 Mar 2026 10:00:00 -0000\r\n\r\n",
    b"Date: Tue, 03 Mar 2026 10:00:00 +0000 (UTC)\r\n\r\n",
    b"Date: 3 Mar 2026 23:59 -0530\r\n\r\n",
    b"Date: Tue, 31 Feb 2026 10:00:00 +0100\r\n\r\n",
    b"Date: Tue, 03 Mar 2026 25:00:00 +0100\r\n\r\n",
    b"Date: Tue, 03 Mar 2026 10:00:00 GMT\r\n\r\n",
    b"Date: Tue, 03 Foo 2026 10:00:00 +0100\r\n\r\n",
    b"Date: Tue 03 Mar 26 10:00:00 EST\r\n\r\n",
    b"Date: not a date\r\n\r\n",
    b"Date: Tue,\r\n 03 Mar 2026\r\n 10:00:00 +0100\r\n\r\n",
    b"Message-ID: <a@b>\r\nIn-Reply-To: <p@b> (comment)\r\nReferences: <r1@b>\r\n\t<r2@b> <p@b>\r\n\r\n",
    b"To: one@x two@y\r\nCc: nobody\r\n\r\n",
    b"To: a@[192.0.2.1], B <B@[IPv6:2001:db8::1]>\r\n\r\n",
    b"Subject: bare\rCR\r\nFrom: a@x\r\n\r\n",
    b"Subject: no final line break",
    b"Subject: a\r\n \r\nFrom: b@x\r\n\r\n",
    b"Subject:  \r\n\tcontinued\r\nFrom:\tB <b@x>\r\n\r\nTo: body@x\r\n",
    b"",
    b"\r\n",
]


@pytest.mark.parametrize("block", AWKWARD)
def test_awkward_headers_parse_as_with_the_stdlib(block):
    assert parse_envelope(block) == reference(block)
