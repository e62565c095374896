"""POP3 mailboxes: download each message once into the console's store.

POP3 has no folders, flags or stable message numbers; the only identity a
message has is its UIDL.  So a download run is: UIDL, RETR every message
whose UIDL is not stored yet, store it whole (``MessageBody``) with its
envelope (``Message``) in the mailbox's "INBOX" folder, and commit in small
batches, so a run stopped at any point (connection cut, worker killed) is
finished by the next one without duplicates.  ``Message.uid`` is a local
counter (POP3 message numbers change between sessions).

With "leave messages on the server" off (``Account.pop3_leave_on_server``),
DELE is sent only for messages already committed here; the server applies it
at a clean QUIT, so a cut connection deletes nothing.  A message deleted on
the server stays in the console: this is a download, not a mirror.  A server
without UIDL is refused (classified ``protocol`` error) rather than risking
duplicates.

The IMAP sync job calls :func:`download` for mailboxes whose
``incoming_protocol`` is ``"pop3"``; the outcome is the mailbox's like a sync's
(:mod:`webapp.jobs.outcome`, check ``pop3``).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func

from connectors.envelope import parse_envelope
from connectors.errors import AUTH_CLASSES, ErrorClass, MailError
from connectors.i18n import N_
from connectors.mime_text import split_message
from connectors.transcript import Transcript

from ..errors import MailboxUnavailable
from ..extensions import db
from ..models import Account, Folder, FolderRole, LogLevel, LogSource, Message, MessageBody, utcnow
from .outcome import Check, Line, record_failure, record_not_run, record_success
from .session import open_client

#: Commit after this many messages or this many bytes, whichever comes first.
BATCH_MESSAGES = 25
BATCH_BYTES = 8 * 1024 * 1024

#: ``progress(done, total)``: messages stored so far in this run, of the new messages found.
Progress = Callable[[int, int], None]


def inbox_folder(account: Account) -> Folder:
    """The mailbox's "INBOX" folder (role inbox, synced), created on first use."""
    folder = Folder.query.filter_by(account_id=account.id, name="INBOX").one_or_none()
    if folder is None:
        has_inbox_role = (
            Folder.query.filter_by(account_id=account.id, role=FolderRole.INBOX.value).first() is not None
        )
        folder = Folder(
            account_id=account.id,
            name="INBOX",
            display_name="Inbox",
            delimiter=None,
            attributes="",
            role=None if has_inbox_role else FolderRole.INBOX.value,
            sync=True,
        )
        db.session.add(folder)
        db.session.commit()
    return folder


def message_row(folder: Folder, uid: int, uidl: str, raw: bytes) -> Message:
    """A Message row (envelope, preview, size) for a downloaded message."""
    header, body = split_message(raw)
    fields = parse_envelope(header, body)  # the preview from the decoded text part (connectors.mime_text)
    return Message(
        account_id=folder.account_id,
        folder_id=folder.id,
        uid=uid,
        pop3_uidl=uidl[:255],
        size=len(raw),
        flags="",
        seen=False,
        flagged=False,
        **fields,
    )


def download(account: Account, progress: Progress | None = None, *, defer_busy: bool = False) -> dict:
    """Download the POP3 mailbox's new messages; return counts.

    Returns ``{"protocol": "pop3", "on_server", "new", "downloaded", "deleted", "stored"}``.
    Raises :class:`connectors.errors.MailError` (classified) or
    :class:`webapp.errors.MailboxUnavailable` after recording them; what
    was committed before a failure stays, and the next run continues from it.
    ``defer_busy`` (a sync job that may wait): no free connection slot is not waited for, and
    it or a server asking us to slow down (``throttled``) is raised *unrecorded*, for the
    caller to come back later (:mod:`webapp.jobs.backoff`): a busy server is not a failure.
    """
    transcript = Transcript() if account.debug else None
    counts = {"protocol": "pop3", "on_server": 0, "new": 0, "downloaded": 0, "deleted": 0, "stored": 0}
    try:
        folder = inbox_folder(account)
        _run(account, folder, transcript, progress, counts, wait=0 if defer_busy else None)
    except Exception as exc:
        db.session.rollback()
        if defer_busy and isinstance(exc, MailError) and exc.error_class is ErrorClass.THROTTLED:
            raise
        _record_failure(account, exc, counts, transcript)
        raise
    details: dict = {"counts": counts}
    if transcript is not None:
        details["transcript"] = transcript.as_list()
    line = Line(
        LogSource.INCOMING, LogLevel.INFO, result_sentence(counts, account.pop3_leave_on_server), details
    )
    record_success(account, Check.POP3, lines=[line])
    return counts


#: A run's sentence (job result and email log), stored in English and translated when shown;
#: the counts follow labels, so no language needs its plural forms in a stored text.
RESULT = {
    "left": N_(
        "New messages downloaded over POP3: {downloaded} (downloaded before: {earlier}, "
        "on the server: {on_server}); messages are left on the server."
    ),
    "deleted": N_(
        "New messages downloaded over POP3: {downloaded} (downloaded before: {earlier}, "
        "on the server: {on_server}); deleted from the server: {deleted}."
    ),
}
#: The email log's line of a run that failed or did not run.
FAILED = N_("POP3 download failed: {error}")
NOT_RUN = N_("POP3 download not run: {reason}")


def result_sentence(counts: dict, leave_on_server: bool) -> str:
    """What a POP3 run did, for the person: the one sentence of the job's result and the log.

    ``New messages downloaded over POP3: 2 (downloaded before: 3, on the server: 5); deleted from
    the server: 5.``  The ones downloaded before are those on the server that an earlier run stored.
    """
    on_server = counts.get("on_server", 0)
    return RESULT["left" if leave_on_server else "deleted"].format(
        downloaded=counts.get("downloaded", 0),
        earlier=max(on_server - counts.get("new", 0), 0),
        on_server=on_server,
        deleted=counts.get("deleted", 0),
    )


def _run(
    account: Account, folder: Folder, transcript, progress: Progress | None, counts: dict, wait: float | None
) -> None:
    """The download itself; ``counts`` is updated as it goes, so a failure can report how far it got."""
    known = {
        uidl
        for (uidl,) in db.session.query(Message.pop3_uidl).filter(
            Message.folder_id == folder.id, Message.pop3_uidl.isnot(None)
        )
    }
    top_uid = db.session.query(func.max(Message.uid)).filter(Message.folder_id == folder.id).scalar()
    next_uid = max(top_uid or 0, (folder.uidnext or 1) - 1) + 1
    leave = account.pop3_leave_on_server
    marked = 0
    with open_client(account, "pop3", transcript, wait=wait) as client:
        listing = client.uidl()
        counts["on_server"] = len(listing)
        new = []
        for number, uidl in listing:
            if uidl in known:
                if not leave:
                    client.dele(number)  # stored by an earlier run: safe to remove now
                    marked += 1
            else:
                new.append((number, uidl))
                known.add(uidl)  # a server repeating a UIDL still gives one row
        counts["new"] = total = len(new)
        if progress is not None:
            progress(0, total)
        pending: list[int] = []  # message numbers stored but not yet committed
        pending_bytes = 0
        for i, (number, uidl) in enumerate(new):
            raw = client.retr(number)
            row = message_row(folder, next_uid, uidl, raw)
            db.session.add(row)
            db.session.flush()
            db.session.add(MessageBody(message_pk=row.id, raw=raw))
            next_uid += 1
            pending.append(number)
            pending_bytes += len(raw)
            last = i == total - 1
            if last or len(pending) >= BATCH_MESSAGES or pending_bytes >= BATCH_BYTES:
                folder.uidnext = next_uid
                db.session.commit()
                counts["downloaded"] += len(pending)
                if not leave:
                    for stored in pending:  # only now that they are committed here
                        client.dele(stored)
                    marked += len(pending)
                pending, pending_bytes = [], 0
                if progress is not None:
                    progress(counts["downloaded"], total)
        client.quit()  # a clean QUIT is what makes the server apply the DELE marks
    counts["deleted"] = marked
    folder.message_count = db.session.query(func.count(Message.id)).filter_by(folder_id=folder.id).scalar()
    folder.last_synced_at = folder.last_full_sync_at = utcnow()
    folder.last_error = None
    db.session.commit()
    counts["stored"] = folder.message_count


def _record_failure(account: Account, exc: BaseException, counts: dict, transcript) -> None:
    if isinstance(exc, MailError):
        message = FAILED.format(error=exc.message)
        details: dict = {"error": exc.as_dict()}
    elif isinstance(exc, MailboxUnavailable):
        message = NOT_RUN.format(reason=exc)
        details = {}
    else:
        message = FAILED.format(error=f"{type(exc).__name__}: {exc}")
        details = {}
    details["counts"] = counts
    if transcript is not None:
        details["transcript"] = transcript.as_list()
    line = Line(LogSource.INCOMING, LogLevel.ERROR, message, details)
    try:
        folder = Folder.query.filter_by(account_id=account.id, name="INBOX").one_or_none()
        if folder is not None:
            folder.last_error = message
        if isinstance(exc, MailError):
            error = f"POP3: {exc.message}"
            record_failure(account, Check.POP3, error, auth=exc.error_class in AUTH_CLASSES, lines=[line])
        else:
            record_not_run(account, Check.POP3, line)
    except Exception:
        db.session.rollback()
