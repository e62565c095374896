"""Helpers shared by the sending tests: a mailbox on the test Dovecot sending through aiosmtpd."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from tests.support.sync_support import imap_login
from webapp.extensions import db
from webapp.models import Account, Folder, User
from webapp.secretbox import box


def sending_mailbox(
    dovecot,
    smtp,
    owner: User,
    user: str = "alice",
    *,
    sent_folder: bool = True,
    is_main: bool = True,
    smtp_password: str | None = None,
) -> Account:
    """An active mailbox: IMAP on Dovecot (plain, loopback), SMTP on aiosmtpd's implicit-TLS port.

    The SMTP login is the same user and password as IMAP (the test servers share DEFAULT_USERS).
    With ``sent_folder`` the Dovecot folder "Sent" holds the SENT role.
    """
    account = Account(
        user_id=owner.id,
        manual=True,
        username=user,
        email=f"{user}@example.com",
        password_encrypted=box().encrypt(dovecot.users[user]),
        imap_host="127.0.0.1",
        imap_port=dovecot.imap_port,
        imap_security="none",
        smtp_host="127.0.0.1",
        smtp_port=smtp.smtps_port,
        smtp_security="tls",
        state="connected",
        is_main=is_main,
    )
    if smtp_password is not None:
        account.smtp_password_encrypted = box().encrypt(smtp_password)
    db.session.add(account)
    db.session.flush()
    db.session.add(Folder(account_id=account.id, name="INBOX", display_name="INBOX", sync=True))
    if sent_folder:
        db.session.add(
            Folder(account_id=account.id, name="Sent", display_name="Sent", sync=True, role="sent")
        )
    db.session.commit()
    return account


def parsed(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def server_message_ids(dovecot, folder: str = "Sent", user: str = "alice") -> list[tuple[str, bytes]]:
    """``[(Message-ID, flags)]`` of a folder on the server, as another client sees it."""
    with imap_login(dovecot, user) as client:
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        if not uids:
            return []
        out = []
        for _uid, item in sorted(
            client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]", "FLAGS"]).items()
        ):
            header = item[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().strip()
            flags = tuple(f for f in item[b"FLAGS"] if f != rb"\Recent")
            out.append((header.partition(":")[2].strip(), flags))
        return out
