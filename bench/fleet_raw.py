"""The yardsticks of the fleet benchmark, serial and in-process, per mailbox.

* the raw limit: imaplib login + ``STATUS`` + logout (unchanged), login + ``SELECT`` + one
  ``UID FETCH 1:*`` of the engine's items + logout (first sync); nothing parsed, no database;
* the usual Python way: imap-tools ``login`` (which SELECTs INBOX), ``uids()`` of what is past
  the last UID seen, fetch what is new, logout (unchanged); ``fetch(headers_only=True)`` of
  everything (first sync).
"""

from __future__ import annotations

import imaplib
import time
from collections.abc import Callable

from imap_tools import AND, MailBoxUnencrypted, U

from bench.sync import fetch_items

STATUS_ITEMS = "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)"


def raw_unchanged(host: str, port: int, login: str, password: str) -> None:
    imap = imaplib.IMAP4(host, port, timeout=60)
    imap.login(login, password)
    imap.status("INBOX", STATUS_ITEMS)
    imap.logout()


def raw_first(host: str, port: int, login: str, password: str) -> None:
    imap = imaplib.IMAP4(host, port, timeout=60)
    imap.login(login, password)
    imap.select("INBOX", readonly=True)
    imap.uid("FETCH", "1:*", "(" + " ".join(i.decode() for i in fetch_items()) + ")")
    imap.logout()


def usual_unchanged(host: str, port: int, login: str, password: str, last_uid: int) -> None:
    with MailBoxUnencrypted(host, port=port).login(login, password, "INBOX") as box:
        new = [u for u in box.uids(AND(uid=U(last_uid + 1, "*"))) if int(u) > last_uid]
        if new:
            list(box.fetch(AND(uid=new), mark_seen=False))


def usual_first(host: str, port: int, login: str, password: str) -> None:
    with MailBoxUnencrypted(host, port=port).login(login, password, "INBOX") as box:
        for msg in box.fetch(headers_only=True, mark_seen=False):
            _ = (msg.uid, msg.flags, msg.size_rfc822, msg.subject, msg.from_, msg.to, msg.date)


def per_mailbox_ms(run: Callable[[str, str], None], users: list[tuple[str, str]]) -> float:
    """Mean milliseconds of ``run(login, password)`` over ``users``, one after the other."""
    start = time.perf_counter()
    for login, password in users:
        run(login, password)
    return (time.perf_counter() - start) * 1000 / len(users)


def yardsticks(host: str, port: int, users: list[tuple[str, str]], messages: int) -> dict[str, float]:
    """All four, per mailbox (ms); the first-sync ones run first and so also warm Dovecot's indexes."""
    return {
        "raw_first_ms": per_mailbox_ms(lambda u, p: raw_first(host, port, u, p), users),
        "usual_first_ms": per_mailbox_ms(lambda u, p: usual_first(host, port, u, p), users),
        "raw_unchanged_ms": per_mailbox_ms(lambda u, p: raw_unchanged(host, port, u, p), users),
        "usual_unchanged_ms": per_mailbox_ms(lambda u, p: usual_unchanged(host, port, u, p, messages), users),
    }
