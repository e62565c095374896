"""Put mailboxes, folders and messages straight into the database, as sync would have stored them.

The browsing tests do not need the sync engine: rows made here carry the same
derived columns sync computes (``participants``, ``thread_key``) through the
helpers of connectors.envelope.
"""

from __future__ import annotations

from datetime import datetime
from itertools import count

from connectors.envelope import thread_key as compute_thread_key
from webapp import settings_store
from webapp.extensions import db
from webapp.models import Account, Folder, Message
from webapp.secretbox import box

_uids = count(1)


def make_account(user_id: int, email: str, *, port: int = 993, security: str = "tls", **extra) -> Account:
    """A hand-typed mailbox on 127.0.0.1 (the guard allows loopback for the test), login = local part."""
    settings_store.put("allowed_internal_hosts", ["127.0.0.1/32"])
    login = extra.pop("username", email.split("@")[0])
    account = Account(
        user_id=user_id,
        manual=True,
        username=login,
        email=email,
        description=extra.pop("description", email),
        password_encrypted=box().encrypt(extra.pop("password", f"secret-{login}-pw")),
        imap_host="127.0.0.1",
        imap_port=port,
        imap_security=security,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security=security,
        **extra,
    )
    db.session.add(account)
    db.session.commit()
    return account


def make_folder(
    account: Account,
    name: str = "INBOX",
    role: str | None = "inbox",
    display_name: str | None = None,
    sync: bool = True,
    uidvalidity: int | None = None,
) -> Folder:
    folder = Folder(
        account_id=account.id,
        name=name,
        display_name=display_name or name,
        delimiter="/",
        role=role,
        sync=sync,
        uidvalidity=uidvalidity,
    )
    db.session.add(folder)
    db.session.commit()
    return folder


def make_message(
    folder: Folder,
    *,
    subject: str = "Hello",
    from_addr: str = "sender@example.com",
    from_name: str = "",
    to: tuple[str, ...] = (),
    cc: tuple[str, ...] = (),
    date: datetime | None = datetime(2026, 3, 1, 12, 0),
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    flagged: bool = False,
    seen: bool = False,
    uid: int | None = None,
    preview: str = "",
    commit: bool = True,
) -> Message:
    everyone = sorted({a.lower() for a in (from_addr, *to, *cc) if a})
    flags = " ".join(f for f, on in ((r"\Seen", seen), (r"\Flagged", flagged)) if on)
    message = Message(
        account_id=folder.account_id,
        folder_id=folder.id,
        uid=uid if uid is not None else next(_uids),
        message_id=message_id,
        in_reply_to=in_reply_to,
        references_header=references,
        thread_key=compute_thread_key(message_id, in_reply_to, references),
        subject=subject,
        from_name=from_name,
        from_addr=from_addr.lower(),
        to_addrs=", ".join(to),
        cc_addrs=", ".join(cc),
        participants=(" " + " ".join(everyone) + " ") if everyone else "",
        date=date,
        size=1000,
        flags=flags,
        seen=seen,
        flagged=flagged,
        preview=preview,
    )
    db.session.add(message)
    if commit:
        db.session.commit()
    return message
