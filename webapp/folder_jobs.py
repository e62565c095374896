"""The "List folders" job: connect, LIST, upsert the folder rows, log the outcome.

It takes the mailbox id only; the credentials are read from the database by
webapp.mail_session.  Failures are classified like the connection test's: a
rejected login marks the mailbox "Authentication error", anything else
"Connection error", and both go to the email log with the server's words.
"""

from __future__ import annotations

from connectors.errors import AUTH_CLASSES, MailError

from . import email_log, settings_store
from .extensions import db
from .folders import refresh_folders
from .mail_session import MailboxUnavailable, open_client
from .models import Account, AccountState, Folder, LogLevel, LogSource, utcnow

_AUTH_CLASSES = AUTH_CLASSES


def job_timeout() -> int:
    """Connect, TLS, login and LIST, each bounded by the connection timeout, plus slack."""
    return 4 * int(settings_store.get("connection_timeout")) + 60


def list_folders(account_id: int) -> dict:
    """Refresh the folder list of mailbox ``account_id``; answers a short summary for the job status."""
    account = db.session.get(Account, account_id)
    if account is None:
        return {"ok": False, "error": "The mailbox no longer exists."}
    transcript = None
    if account.debug:
        from connectors.transcript import Transcript

        transcript = Transcript()
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
        email_log.record(
            LogSource.SYNC, LogLevel.WARNING, f"Folder list not refreshed: {exc}", account=account
        )
        db.session.commit()
        return {"ok": False, "error": str(exc)}
    except MailError as exc:
        db.session.rollback()
        _record_failure(account, exc, transcript)
        return {"ok": False, "error": exc.as_dict()}
    names = {f.name: f.display_name for f in folders}
    # People read these lists (job result, log): the decoded names, not the wire's modified UTF-7.
    new = sorted(names[n] for n in names.keys() - before.keys())
    gone = sorted(before[n] for n in before.keys() - names.keys())
    if account.state != AccountState.CONNECTED.value and (
        account.last_error is None or account.last_error.startswith("IMAP")
    ):
        # The IMAP login just worked: an earlier IMAP failure is over (an SMTP one is not ours to clear).
        account.state = AccountState.CONNECTED.value
        account.last_error = None
    details: dict = {"new": new, "gone": gone}
    if transcript is not None:
        details["transcript"] = transcript.as_list()
    email_log.record(
        LogSource.SYNC,
        LogLevel.INFO,
        f"Folder list refreshed: {len(folders)} folders ({len(new)} new, {len(gone)} no longer on the server).",
        account=account,
        details=details,
        created_by="system",
    )
    db.session.commit()
    return {"ok": True, "folders": len(folders), "new": new, "gone": gone}


def _record_failure(account: Account, exc: MailError, transcript) -> None:
    auth = exc.error_class in _AUTH_CLASSES
    account.state = (AccountState.AUTH_ERROR if auth else AccountState.CONNECTION_ERROR).value
    account.last_error = f"IMAP: {exc.message}"
    account.last_error_at = utcnow()
    details: dict = {"error": exc.as_dict()}
    if transcript is not None:
        details["transcript"] = transcript.as_list()
    email_log.record(
        LogSource.IMAP_AUTH if auth else LogSource.SYNC,
        LogLevel.ERROR,
        f"Folder list failed: {exc.message}",
        account=account,
        details=details,
        created_by="system",
    )
    db.session.commit()
