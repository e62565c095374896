"""A folder of N varied, realistic messages written straight into a Maildir, cached between runs.

Deterministic for a given N (seeded), so a second benchmark run reuses the
generated Maildir, and Dovecot's own index files in it, instead of spending
half a minute per 20,000 messages writing it again.  The mix: plain text
(8bit and quoted-printable), multipart/alternative, HTML only, attachments,
RFC 2047 non-ASCII subjects and names, threads (In-Reply-To/References),
several recipients, \\Seen/\\Flagged/\\Answered flags, INTERNALDATE from Date.
"""

from __future__ import annotations

import base64
import email.header
import email.utils
import os
import random
import shutil
import sys
import time
from pathlib import Path

#: Bump when the generator changes, so stale caches are rebuilt.
VERSION = 2
MAIL_UID = MAIL_GID = 65534

_FIRST = [
    "Anna",
    "Marco",
    "Zoë",
    "Jürgen",
    "Søren",
    "Chloé",
    "Luca",
    "Giulia",
    "John",
    "Mei",
    "Ólafur",
    "Paola",
    "Ahmed",
    "Élodie",
    "Nikolaj",
    "Sara",
    "Tomás",
    "Ingrid",
    "Kenji",
    "Łukasz",
]
_LAST = [
    "Rossi",
    "Müller",
    "Dubois",
    "Smith",
    "Bianchi",
    "Kowalski",
    "García",
    "Johansson",
    "Tanaka",
    "Ferrari",
    "Nørgaard",
    "O'Brien",
    "Conti",
    "Lefèvre",
    "Novák",
]
_DOMAINS = ["example.com", "acme.test", "posta.example.it", "mail.example.de", "corp.example.org"]
_SUBJECTS = [
    "Quarterly report {n}",
    "Invoice {n} for March",
    "Meeting notes: project {w}",
    "Re: shipment {n}",
    "Fattura n. {n} — scadenza",
    "Café meeting on Friday ☕",
    "Über die Lieferung {n}",
    "Préparation du devis {n}",
    "Update on ticket #{n}",
    "Reminder: {w} deadline",
    "Offerta speciale {w} €",
    "Zählerstand {n} übermittelt",
    "Photos from the {w} trip",
    "Welcome to {w}!",
    "Ordine {n} spedito",
    "Contract renewal {w}",
]
_WORDS = [
    "alpha",
    "Milano",
    "Köln",
    "budget",
    "roadmap",
    "Zürich",
    "summit",
    "déjà vu",
    "harbour",
    "naïve",
    "bilancio",
    "launch",
    "Sprint",
    "città",
    "Ærø",
    "logistics",
    "audit",
    "café",
]
_LOREM = (
    "Thanks for the update, I will look into it tomorrow morning and let you know. "
    "Please find the figures below; the totals include last week's corrections. "
    "Grazie mille per la disponibilità, ci sentiamo la prossima settimana. "
    "Vielen Dank für Ihre schnelle Antwort, die Unterlagen folgen per Post. "
    "Merci de confirmer la date de livraison avant vendredi. "
).split(". ")


def _hdr(value: str) -> str:
    """An RFC 2047-encoded header value when it is not ASCII."""
    try:
        value.encode("ascii")
        return value
    except UnicodeEncodeError:
        return email.header.Header(value, "utf-8").encode()


def _addr(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    name = f"{first} {last}"
    local = f"{first}.{last}".lower().encode("ascii", "ignore").decode().replace("'", "")
    return name, f"{local}@{rng.choice(_DOMAINS)}"


def _fmt(pair: tuple[str, str]) -> str:
    name, addr = pair
    return f"{_hdr(name)} <{addr}>" if any(ord(c) > 127 for c in name) else f'"{name}" <{addr}>'


def _text(rng: random.Random, sentences: int) -> str:
    return ".\r\n".join(rng.choice(_LOREM).strip() for _ in range(sentences)) + ".\r\n"


def _qp(text: str) -> str:
    import quopri

    return quopri.encodestring(text.encode("utf-8")).decode("ascii").replace("\n", "\r\n")


def make_message(
    i: int, rng: random.Random, threads: list[tuple[str, str, str]], when: float
) -> tuple[bytes, str]:
    """The ``i``-th message's bytes and its Maildir flag letters."""
    msgid = f"<bench.{i}.{rng.randrange(1 << 30):x}@{rng.choice(_DOMAINS)}>"
    sender = _addr(rng)
    to = ", ".join(_fmt(_addr(rng)) for _ in range(rng.choice((1, 1, 1, 2, 3))))
    headers = [
        "Return-Path: <" + sender[1] + ">",
        f"Received: from mx{rng.randrange(9)}.example.net (mx.example.net [192.0.2.{rng.randrange(1, 254)}])\r\n"
        f"\tby mail.example.com with ESMTPS id {rng.randrange(1 << 40):x}; {email.utils.formatdate(when)}",
        f"From: {_fmt(sender)}",
        f"To: {to}",
    ]
    if rng.random() < 0.25:
        headers.append("Cc: " + ", ".join(_fmt(_addr(rng)) for _ in range(rng.choice((1, 2)))))
    if threads and rng.random() < 0.35:
        root_subject, parent_id, refs = rng.choice(threads[-200:])
        subject = "Re: " + root_subject
        headers += [f"In-Reply-To: {parent_id}", f"References: {refs} {parent_id}".strip()]
        threads.append((root_subject, msgid, f"{refs} {parent_id}".strip()[-900:]))
    else:
        subject = rng.choice(_SUBJECTS).format(n=rng.randrange(100, 99999), w=rng.choice(_WORDS))
        threads.append((subject, msgid, ""))
    headers += [
        f"Subject: {_hdr(subject)}",
        f"Date: {email.utils.formatdate(when, localtime=False)}",
        f"Message-ID: {msgid}",
        "MIME-Version: 1.0",
    ]
    body_text = _text(rng, rng.randrange(2, 25))
    kind = rng.random()
    if kind < 0.45:
        if rng.random() < 0.5:
            headers += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
            body = body_text
        else:
            headers += [
                "Content-Type: text/plain; charset=utf-8",
                "Content-Transfer-Encoding: quoted-printable",
            ]
            body = _qp(body_text)
    elif kind < 0.80:
        b = f"=_alt_{i}_{rng.randrange(1 << 30):x}"
        html = "<html><body><p>" + body_text.replace("\r\n", "</p>\r\n<p>") + "</p></body></html>\r\n"
        headers.append(f'Content-Type: multipart/alternative; boundary="{b}"')
        body = (
            f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            f"{_qp(body_text)}\r\n--{b}\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: quoted-printable\r\n\r\n{_qp(html)}\r\n--{b}--\r\n"
        )
    elif kind < 0.95:
        b = f"=_mix_{i}_{rng.randrange(1 << 30):x}"
        blob = base64.encodebytes(rng.randbytes(rng.randrange(2_000, 40_000))).decode().replace("\n", "\r\n")
        name = rng.choice(["report.pdf", "fattura.pdf", "photo.jpg", "Übersicht.xlsx", "notes.docx"])
        headers.append(f'Content-Type: multipart/mixed; boundary="{b}"')
        body = (
            f"This is a multi-part message in MIME format.\r\n--{b}\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body_text}\r\n"
            f'--{b}\r\nContent-Type: application/octet-stream; name="{_hdr(name)}"\r\n'
            f'Content-Disposition: attachment; filename="{_hdr(name)}"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{blob}--{b}--\r\n"
        )
    else:
        html = '<div style="font-family:sans-serif">' + body_text.replace("\r\n", "<br>\r\n") + "</div>\r\n"
        headers += ["Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"]
        body = _qp(html)
    flags = ""
    r = rng.random()
    if r < 0.10:
        flags += "R"
    if rng.random() < 0.05:
        flags += "F"
    if rng.random() < 0.70:
        flags += "S"
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode("utf-8"), "".join(sorted(flags))


def ensure(n: int, cache_dir: Path, log=lambda *a: print(*a, file=sys.stderr)) -> dict:
    """The Maildir of ``n`` messages under ``cache_dir`` (generated once); returns its facts."""
    marker = cache_dir / "complete"
    expected = f"v{VERSION} n={n}"
    maildir = cache_dir / "Maildir"
    if marker.exists() and marker.read_text().split("\n")[0] == expected and maildir.is_dir():
        facts = dict(line.split("=", 1) for line in marker.read_text().split("\n")[1:] if "=" in line)
        return {"path": str(maildir), "messages": n, "bytes": int(facts.get("bytes", 0)), "cached": True}
    if cache_dir.exists():
        shutil.rmtree(cache_dir)
    cache_dir.mkdir(parents=True)
    cache_dir.chmod(0o755)
    for sub in ("", "cur", "new", "tmp"):
        (maildir / sub).mkdir(exist_ok=True)
    rng = random.Random(n)
    threads: list[tuple[str, str, str]] = []
    when = time.time() - n * 600
    total = 0
    started = time.monotonic()
    cur = maildir / "cur"
    for i in range(1, n + 1):
        when += rng.randrange(1, 1200)
        raw, flags = make_message(i, rng, threads, when)
        name = f"{int(when)}.M{i:07d}P1.bench,S={len(raw)}:2,{flags}"
        path = cur / name
        with open(path, "wb") as fh:
            fh.write(raw)
        os.utime(path, (when, when))
        total += len(raw)
        if i % 20000 == 0:
            log(f"  generated {i:,} of {n:,} messages ({time.monotonic() - started:.0f} s)")
    for root, _dirs, files in os.walk(cache_dir):
        os.chown(root, MAIL_UID, MAIL_GID)
        for f in files:
            os.chown(os.path.join(root, f), MAIL_UID, MAIL_GID)
    marker.write_text(f"{expected}\nbytes={total}\n")
    return {"path": str(maildir), "messages": n, "bytes": total, "cached": False}
