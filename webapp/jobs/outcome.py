"""The one writer of what a check found on a mailbox: its state, its errors, their times, the log line.

Every job that talks to a mailbox's servers ends here: :func:`record_success` or
:func:`record_failure` with the kind of check (:class:`Check`).  The mailbox then shows the
latest outcome of each kind, with its time, and an earlier error it replaces stays in the email
log, where its own outcome put it:

* ``test`` (connection test): ``last_checked_at`` and ``last_check`` (the report) always; a pass
  makes the mailbox "Connected" and clears the error a failed test (or anything else) left; a
  failure sets "Authentication error" (only the server's explicit refusal of the credentials)
  or "Connection error", with the error and its time.
* ``folders`` (folder list): a working IMAP login ends an earlier IMAP failure (an SMTP one is
  not its to clear); a failure is like a test's.
* ``sync`` and ``pop3``: ``last_synced_at`` and ``last_sync_error`` always; a run that logged in
  makes an errored or untested mailbox "Connected" and clears an error that was not SMTP's; a
  refused login is "Authentication error" (cron then skips the mailbox).
* ``send``: the outgoing message carries its own state (``OutgoingMessage.move_to``); the
  mailbox (None when it was deleted meanwhile) gets only the log line.

Changes that are not a check's outcome (a removed service, turning a mailbox off, signing in
again) are named in :mod:`webapp.account_states`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rq import get_current_job
from sqlalchemy import case, update

from .. import email_log
from ..extensions import db
from ..models import Account, AccountState, LogLevel, LogSource, utcnow


class Check(str, enum.Enum):
    TEST = "test"
    FOLDERS = "folders"
    SYNC = "sync"
    POP3 = "pop3"
    SEND = "send"


@dataclass
class Line:
    """One email-log line of an outcome."""

    source: LogSource
    level: LogLevel
    message: str
    details: dict | None = None
    user: object | None = None


_INCOMING_RUNS = (Check.SYNC, Check.POP3)
_HEALED_BY_LOGIN = (
    AccountState.AUTH_ERROR.value,
    AccountState.CONNECTION_ERROR.value,
    AccountState.NEW.value,
)


def will_retry(retry: bool) -> bool:
    """Whether RQ runs the current job again after this failure (its ``Retry`` has attempts left)."""
    job = get_current_job()
    return retry and job is not None and bool(job.retries_left)


def record_success(
    account: Account | None,
    check: Check,
    *,
    lines: Iterable[Line] = (),
    report: dict | None = None,
    sync_error: str | None = None,
) -> None:
    """A check that reached the server and did its work; commits.

    ``report``: the connection test's summary; ``sync_error``: the folders a sync could not do.
    """
    now = utcnow()
    if check is Check.TEST:
        account.last_checked_at = now
        account.last_check = json.dumps(report) if report is not None else None
        _clear_error(account)
    elif check is Check.FOLDERS:
        if account.state != AccountState.CONNECTED.value and (
            account.last_error is None or account.last_error.startswith("IMAP")
        ):
            _clear_error(account)
    elif check in _INCOMING_RUNS:
        account.last_synced_at = now
        account.last_sync_error = sync_error
        if account.state in _HEALED_BY_LOGIN:
            account.state = AccountState.CONNECTED.value
            if account.last_error is not None and not account.last_error.startswith("SMTP"):
                account.last_error = account.last_error_at = None
    _write(account, lines)


def record_unchanged_syncs(account_ids: list[int]) -> None:
    """Periodic checks that found nothing changed (:mod:`webapp.jobs.batch`): what
    :func:`record_success` does for a sync, for many mailboxes in two UPDATEs and no log line
    (nothing changed, nothing to log).  Not committed: the batch commits them all at once."""
    if not account_ids:
        return
    now = utcnow()
    unsynced = {"synchronize_session": False}
    mine = Account.id.in_(account_ids)
    db.session.execute(
        update(Account)
        .where(mine)
        .values(last_synced_at=now, last_sync_error=None)
        .execution_options(**unsynced)
    )
    smtp = Account.last_error.like("SMTP%")  # an SMTP error is not a sync's to clear
    db.session.execute(
        update(Account)
        .where(mine, Account.state.in_(_HEALED_BY_LOGIN))
        .values(
            state=AccountState.CONNECTED.value,
            last_error=case((smtp, Account.last_error), else_=None),
            last_error_at=case((smtp, Account.last_error_at), else_=None),
        )
        .execution_options(**unsynced)
    )


def record_failure(
    account: Account | None,
    check: Check,
    error: str | None,
    *,
    auth: bool = False,
    lines: Iterable[Line] = (),
    report: dict | None = None,
    reached: bool = True,
) -> None:
    """A check that failed with ``error`` (the sentence the mailbox shows); commits.

    ``auth``: the server refused the credentials.  ``reached`` False: the check never got to a
    server (mailbox unavailable, a killed worker); a sync then records its time and error only.
    """
    now = utcnow()
    if check is Check.TEST:
        account.last_checked_at = now
        account.last_check = json.dumps(report) if report is not None else None
        _set_error(account, error, auth, now)
    elif check is Check.FOLDERS:
        _set_error(account, error, auth, now)
    elif check in _INCOMING_RUNS:
        account.last_synced_at = now
        account.last_sync_error = error
        if reached and auth:
            _set_error(account, error, True, now)
    _write(account, lines)


def record_rejected_settings(account: Account, lines: Iterable[Line], report: dict) -> None:
    """New settings failed their test before being saved (webapp.jobs.edit_trial); commits.

    The mailbox keeps its working settings and state; only its last test report changes, marked
    ``kept_previous`` so its row says that nothing was saved.
    """
    account.last_checked_at = utcnow()
    account.last_check = json.dumps({**report, "kept_previous": True})
    _write(account, lines)


def record_not_run(account: Account, check: Check, line: Line) -> None:
    """A check that did not run (the mailbox cannot be used now): the log says why; nothing else changes."""
    _write(account, [line])


def needs_sign_in(account: Account, message: str, now: datetime) -> None:
    """The OAuth2 grant is gone (its token refresh found so): only the owner's sign-in helps.

    Changes the row only: the refresh commits it in its own session with the notification.
    """
    account.state = AccountState.NEEDS_SIGN_IN.value
    account.last_error, account.last_error_at = message, now


def _clear_error(account: Account) -> None:
    account.state = AccountState.CONNECTED.value
    account.last_error = account.last_error_at = None


def _set_error(account: Account, error: str | None, auth: bool, now: datetime) -> None:
    account.state = (AccountState.AUTH_ERROR if auth else AccountState.CONNECTION_ERROR).value
    account.last_error, account.last_error_at = error, now


def _write(account: Account | None, lines: Iterable[Line]) -> None:
    for line in lines:
        email_log.record(
            line.source,
            line.level,
            line.message,
            account=account,
            user=line.user,
            details=line.details,
            created_by="system",
        )
    db.session.commit()
