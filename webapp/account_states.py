"""The named changes of a mailbox's state that are not a job's outcome (see webapp.jobs.outcome).

A mailbox's ``state``, ``last_error`` and ``last_error_at`` are written here (what a person or an
administrator did) and in :mod:`webapp.jobs.outcome` (what a check found), nowhere else.  Each
function changes the row only; the caller commits with the rest of its change.
"""

from __future__ import annotations

from datetime import datetime

from .models import Account, AccountState

#: States a new sign-in or a new service leaves behind: the mailbox is "not tested yet" again.
_RESET_BY_SIGN_IN = (
    AccountState.NEEDS_SIGN_IN.value,
    AccountState.AUTH_ERROR.value,
    AccountState.SERVICE_REMOVED.value,
)


#: What a connection depends on: an edit that changes any of these is tested at once, as connecting
#: is, so a corrected password does not leave the old "Authentication error" (a state cron skips)
#: in place until someone thinks of "Test connection".
CONNECTION_COLUMNS = (
    "service_id",
    "manual",
    "username",
    "password_encrypted",
    "incoming_protocol",
    "imap_host",
    "imap_port",
    "imap_security",
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "pop3_host",
    "pop3_port",
    "pop3_security",
    "verify_certificate",
    "smtp_requires_auth",
    "smtp_username",
    "smtp_password_encrypted",
)


def connection_of(account: Account) -> tuple:
    """The mailbox's connection details, to compare before and after an edit."""
    return tuple(getattr(account, column) for column in CONNECTION_COLUMNS)


#: What a working mailbox keeps while an edit's new connection settings are tried first
#: (webapp/jobs/edit_trial.py), for the edit page and the API's PATCH alike.
KEPT_WHILE_TRIED = (*CONNECTION_COLUMNS, "service_name", "state", "last_error", "last_error_at")


def working_settings(account: Account) -> dict | None:
    """The settings of a mailbox that works now (connected, password login), to keep while an
    edit's new ones are tested; None when there is nothing working to lose."""
    if account.state != AccountState.CONNECTED.value or account.auth_method != "password":
        return None
    return {column: getattr(account, column) for column in KEPT_WHILE_TRIED}


def keep_working(account: Account, working: dict) -> dict:
    """Put the working settings back on the edited row; the edit's connection settings, to try."""
    proposed = {column: getattr(account, column) for column in (*CONNECTION_COLUMNS, "service_name")}
    for column, value in working.items():
        setattr(account, column, value)
    return proposed


def service_removed(account: Account, message: str, now: datetime) -> None:
    """An administrator removed the mailbox's service: it cannot connect, whatever a test said before."""
    account.state = AccountState.SERVICE_REMOVED.value
    account.last_error, account.last_error_at = message, now
    account.last_check = None  # the last test's green ticks no longer say anything true


def reconnected(account: Account) -> None:
    """A mailbox whose service was removed now has another service (or typed servers)."""
    if account.state == AccountState.SERVICE_REMOVED.value:
        account.state = AccountState.NEW.value
        account.last_error = None


def turned_off(account: Account) -> None:
    account.state = AccountState.DISABLED.value


def turned_on(account: Account) -> None:
    if account.state == AccountState.DISABLED.value:
        account.state = AccountState.NEW.value


def signed_in(account: Account, created: bool) -> None:
    """A (new) OAuth2 sign-in: an earlier sign-in, authentication or removed-service error is over."""
    if created or account.state in _RESET_BY_SIGN_IN:
        account.state = AccountState.NEW.value
        account.last_error = None
