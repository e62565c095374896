"""Helpers shared by the sync tests: mailboxes on the test Dovecot, and what the server holds."""

from __future__ import annotations

from imapclient import IMAPClient

from connectors.sync import flags_text
from webapp.extensions import db
from webapp.models import Account, Folder, Message, User
from webapp.secretbox import box

#: The engine's three paths for change detection, each run against the same Dovecot.
MODES = {
    "qresync": {"use_condstore": True, "use_qresync": True},
    "condstore": {"use_condstore": True, "use_qresync": False},
    "plain": {"use_condstore": False, "use_qresync": False},
}


def imap_login(dovecot, user: str = "alice", port: int | None = None) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=port or dovecot.imap_port, ssl=False, timeout=15)
    client.login(user, dovecot.users[user])
    return client


def server_flags(dovecot, folder: str = "INBOX", user: str = "alice") -> dict[int, str]:
    """``{uid: flags}`` of a folder as another client sees it now (folder name as sent on the wire)."""
    with imap_login(dovecot, user) as client:
        client.folder_encode = False
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        out: dict[int, str] = {}
        for i in range(0, len(uids), 2000):
            for uid, item in client.fetch(uids[i : i + 2000], ["FLAGS"]).items():
                out[uid] = flags_text(item[b"FLAGS"])
        return out


def stored_flags(folder_id: int) -> dict[int, str]:
    rows = db.session.execute(db.select(Message.uid, Message.flags).where(Message.folder_id == folder_id))
    return {uid: flags for uid, flags in rows}


def make_mailbox(dovecot, owner: User | None = None, user: str = "alice", folders=("INBOX",)) -> Account:
    """An active mailbox on the test Dovecot (plain IMAP on loopback) with folders marked for sync."""
    if owner is None:
        owner = User(username=f"owner-{user}", password_hash="x")
        db.session.add(owner)
        db.session.flush()
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
        smtp_port=25,
        smtp_security="none",
        state="connected",
    )
    db.session.add(account)
    db.session.flush()
    for name in folders:
        db.session.add(Folder(account_id=account.id, name=name, display_name=name, sync=True))
    db.session.commit()
    return account


def folder_id(account: Account, name: str = "INBOX") -> int:
    return db.session.execute(
        db.select(Folder.id).where(Folder.account_id == account.id, Folder.name == name)
    ).scalar_one()
