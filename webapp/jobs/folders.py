"""The "List folders" job: connect, LIST, upsert the folder rows, record the outcome.

Also the listing other jobs use on their open connection (:func:`refresh_folders` for a sync's
first run, :func:`find_sent_folder` for a send with no Sent folder mapped yet).

It takes the mailbox id only; the credentials are read from the database by
webapp.jobs.session.  Failures are classified like the connection test's: a
rejected login marks the mailbox "Authentication error", anything else
"Connection error", and both go to the email log with the server's words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rq.job import Job
from sqlalchemy.exc import IntegrityError

from connectors.errors import AUTH_CLASSES, MailError
from connectors.folder_list import list_folders as list_on_server
from connectors.i18n import N_
from connectors.transcript import Transcript

from .. import settings_store
from ..errors import MailboxUnavailable
from ..extensions import db
from ..folders import check_listable, store_listing
from ..models import Account, Folder, FolderRole, LogLevel, LogSource, User
from ..queue import enqueue_for
from .outcome import Check, Line, record_failure, record_not_run, record_success
from .session import open_client

#: The email log's lines (stored in English, translated when shown: webapp.i18n).
WORDS = {
    "not_refreshed": N_("Folder list not refreshed: {reason}"),
    "refreshed": N_("Folder list refreshed: {folders} folders ({new} new, {gone} no longer on the server)."),
    "failed": N_("Folder list failed: {error}"),
}

if TYPE_CHECKING:
    from connectors.imap import ImapClient


def job_timeout() -> int:
    """Connect, TLS, login and LIST, each bounded by the connection timeout, plus slack."""
    return 4 * int(settings_store.get("connection_timeout")) + 60


def start(account: Account, owner: User) -> Job:
    """Enqueue the folder listing of ``account`` (409 when it cannot be listed: POP3, disabled, …)."""
    check_listable(account)
    return enqueue_for(
        list_folders,
        account.id,
        owner_id=owner.id,
        kind="list_folders",
        account_id=account.id,
        timeout=job_timeout(),
    )


def refresh_folders(account: Account, client: ImapClient) -> list[Folder]:
    """LIST the server's folders and upsert the rows; commits; returns the folders the server has.

    ``client`` is connected and logged in (:func:`webapp.jobs.session.open_client`).
    """
    listed = list_on_server(client)
    try:
        return store_listing(account, listed)
    except IntegrityError:
        # Another refresh of the same mailbox inserted the same names first: redo on its rows.
        db.session.rollback()
        return store_listing(account, listed)


def find_sent_folder(account: Account, client: ImapClient) -> Folder | None:
    """The Sent folder of a mailbox that has none mapped yet, found on the server and mapped.

    A mailbox used right after it was connected has no folder rows: the send job asks here
    instead of losing the Sent copy.  The server's folders are listed and stored by the same
    code as "Refresh folder list", so the role comes from the same rules, in the same order:
    RFC 6154 ``\\Sent``, then the provider plugin's names, then common names ("Sent Items",
    "INBOX.Sent", "Posta inviata", "Wysłane", ... from the generic plugin).  Only folders seen
    for the first time get a role, so a user who chose "no Sent folder" keeps that choice.
    Commits; ``client`` is logged in.
    """
    refresh_folders(account, client)
    return Folder.query.filter_by(account_id=account.id, role=FolderRole.SENT.value).first()


def list_folders(account_id: int) -> dict:
    """Refresh the folder list of mailbox ``account_id``; answers a short summary for the job status."""
    account = db.session.get(Account, account_id)
    if account is None:
        return {"ok": False, "error": "The mailbox no longer exists."}
    transcript = Transcript() if account.debug else None
    before = {
        name: display
        for name, display in db.session.query(Folder.name, Folder.display_name).filter_by(
            account_id=account.id, exists_on_server=True
        )
    }
    try:
        with open_client(account, "imap", transcript) as client:
            folders = refresh_folders(account, client)
    except MailboxUnavailable as exc:
        db.session.rollback()
        record_not_run(
            account,
            Check.FOLDERS,
            Line(LogSource.SYNC, LogLevel.WARNING, WORDS["not_refreshed"].format(reason=exc)),
        )
        return {"ok": False, "error": str(exc)}
    except MailError as exc:
        db.session.rollback()
        _record_failure(account, exc, transcript)
        return {"ok": False, "error": exc.as_dict()}
    names = {f.name: f.display_name for f in folders}
    # People read these lists (job result, log): the decoded names, not the wire's modified UTF-7.
    new = sorted(names[n] for n in names.keys() - before.keys())
    gone = sorted(before[n] for n in before.keys() - names.keys())
    details: dict = {"new": new, "gone": gone}
    if transcript is not None:
        details["transcript"] = transcript.as_list()
    message = WORDS["refreshed"].format(folders=len(folders), new=len(new), gone=len(gone))
    record_success(account, Check.FOLDERS, lines=[Line(LogSource.SYNC, LogLevel.INFO, message, details)])
    return {"ok": True, "folders": len(folders), "new": new, "gone": gone}


def _record_failure(account: Account, exc: MailError, transcript) -> None:
    auth = exc.error_class in AUTH_CLASSES
    details: dict = {"error": exc.as_dict()}
    if transcript is not None:
        details["transcript"] = transcript.as_list()
    line = Line(
        LogSource.IMAP_AUTH if auth else LogSource.SYNC,
        LogLevel.ERROR,
        WORDS["failed"].format(error=exc.message),
        details,
    )
    record_failure(account, Check.FOLDERS, f"IMAP: {exc.message}", auth=auth, lines=[line])
