"""Fresh OAuth2 access tokens for jobs: refreshed shortly before expiry, by one worker at a time.

Every job that connects asks :func:`access_token`; when the stored token has
less than :data:`REFRESH_MARGIN` left it takes a Redis lock per mailbox, then
re-reads the mailbox in a session of its own (another worker may have
refreshed while this one waited: its token is used, no request is made), asks
the provider's token endpoint with Authlib and stores the new tokens, the
rotated refresh token included, before releasing the lock.

A network error or a 5xx answer is a transient :class:`MailError`
(``timeout``/``unreachable``), so the job's retry applies and nobody is told to
sign in.  ``invalid_grant`` means the refresh token is dead (revoked, expired,
password changed): the mailbox is marked "needs to sign in again", its owner
gets a notification, the email log says so, and :class:`SignInRequired` (a
:class:`MailboxUnavailable`) ends the job without retry.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import requests
from authlib.integrations.base_client.errors import OAuthError
from flask import current_app
from sqlalchemy.orm import Session

from connectors.errors import ErrorClass, MailError
from connectors.i18n import N_

from .. import email_log
from ..errors import MailboxUnavailable
from ..extensions import db
from ..models import Account, AccountState, LogLevel, LogSource, Notification, Service, utcnow
from ..oauth_apps import endpoints, usable_app
from ..oauth_tokens import NOTIFICATION_KIND, REQUEST_TIMEOUT, oauth_client, store_tokens
from ..queue import get_redis
from ..secretbox import box
from . import outcome

REFRESH_MARGIN = timedelta(minutes=5)
LOCK_KEY = "mailroom:oauth:refresh:{}"


class SignInRequired(MailboxUnavailable):
    """The mailbox's OAuth2 grant is gone: its owner must sign in again; retrying cannot help."""


#: The owner's notification (stored in English, translated when shown: webapp.i18n).
SIGN_IN_AGAIN_NOTE = N_(
    "Your mailbox {email} needs you to sign in again: the provider no longer accepts "
    "Mailroom's sign-in (it was revoked or expired). Press “Sign in again” on My mailboxes."
)

#: The mailbox's error, its log line and the reasons a job cannot refresh (stored in English).
EXPIRED = N_("The sign-in of {email} expired or was revoked at the provider: sign in again.")
REFUSED_LINE = N_("OAuth2 token refresh refused ({reason}): the mailbox needs to sign in again.")
GONE = N_("The mailbox no longer exists.")
NOT_SET_UP = N_("OAuth2 sign-in is not set up for this mailbox's service any more.")


def _sign_in_message(account: Account) -> str:
    return EXPIRED.format(email=account.email)


def needs_refresh(account: Account, now: datetime | None = None) -> bool:
    if not account.oauth_access_token_encrypted:
        return True
    if account.oauth_expires_at is None:
        return False  # the provider gave no lifetime: use it until the server refuses it
    return account.oauth_expires_at - (now or utcnow()) < _margin()


def _margin() -> timedelta:
    return timedelta(
        seconds=int(current_app.config.get("OAUTH_REFRESH_MARGIN", REFRESH_MARGIN.total_seconds()))
    )


def access_token(account: Account) -> str:
    """A usable access token for ``account`` (refreshing it first when it is about to expire)."""
    if account.state == AccountState.NEEDS_SIGN_IN.value:
        raise SignInRequired(account.last_error or _sign_in_message(account))
    if not needs_refresh(account):
        return box().decrypt(account.oauth_access_token_encrypted)
    token = refresh(account.id)
    db.session.refresh(account)
    return token


def refresh(account_id: int, *, force: bool = False) -> str:
    """Refresh the mailbox's access token under its Redis lock; answer the token to use.

    With ``force`` the token is refreshed even when it looks valid (the server refused it),
    unless another worker refreshed it while this one waited for the lock.
    """
    seen = None
    if force:
        with Session(db.engine) as s:
            acct = s.get(Account, account_id)
            seen = acct.oauth_access_token_encrypted if acct else None
    lock = get_redis().lock(LOCK_KEY.format(account_id), timeout=4 * REQUEST_TIMEOUT, blocking_timeout=60)
    if not lock.acquire():
        raise MailError(
            ErrorClass.TIMEOUT,
            "oauth2",
            "token refresh",
            detail="Another worker is refreshing this mailbox's sign-in and did not finish in time.",
        )
    try:
        with Session(db.engine, expire_on_commit=False) as s:
            account = s.get(Account, account_id)
            if account is None:
                raise MailboxUnavailable(GONE)
            if account.state == AccountState.NEEDS_SIGN_IN.value:
                raise SignInRequired(account.last_error or _sign_in_message(account))
            fresh = account.oauth_access_token_encrypted != seen if force else not needs_refresh(account)
            if fresh and account.oauth_access_token_encrypted:
                return box().decrypt(account.oauth_access_token_encrypted)  # refreshed meanwhile
            return _refresh_now(s, account)
    finally:
        try:
            lock.release()
        except Exception:
            pass  # expired while the request ran; the token is stored all the same


def _refresh_now(s: Session, account: Account) -> str:
    service = s.get(Service, account.service_id) if account.service_id else None
    app = usable_app(service) if service is not None else None
    if app is None:
        raise MailboxUnavailable(NOT_SET_UP)
    if not account.oauth_refresh_token_encrypted:
        _mark_needs_sign_in(s, account, "no refresh token is stored")
        raise SignInRequired(_sign_in_message(account))
    refresh_token = box().decrypt(account.oauth_refresh_token_encrypted)
    url = endpoints(service, app).token_url
    try:
        with oauth_client(service, app) as client:
            token = client.refresh_token(url, refresh_token=refresh_token, timeout=REQUEST_TIMEOUT)
    except OAuthError as exc:
        if exc.error == "invalid_grant":
            _mark_needs_sign_in(s, account, exc.description or exc.error)
            raise SignInRequired(_sign_in_message(account)) from None
        raise MailError(
            ErrorClass.AUTH,
            "oauth2",
            "token refresh",
            raw=f"{exc.error}: {exc.description or ''}"[:500],
            detail="The provider refused to renew the sign-in "
            f"({exc.error}); an administrator should check the OAuth2 application.",
        ) from None
    except requests.Timeout as exc:
        raise MailError(
            ErrorClass.TIMEOUT,
            "oauth2",
            "token refresh",
            raw=type(exc).__name__,
            detail=f"The provider's token endpoint did not answer within {REQUEST_TIMEOUT} s.",
        ) from None
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        raise MailError(
            ErrorClass.UNREACHABLE if status >= 500 or status in (0, 429) else ErrorClass.PROTOCOL,
            "oauth2",
            "token refresh",
            raw=f"HTTP {status}",
            detail=f"The provider's token endpoint answered HTTP {status}.",
        ) from None
    except (requests.RequestException, ValueError) as exc:
        raise MailError(
            ErrorClass.UNREACHABLE,
            "oauth2",
            "token refresh",
            raw=type(exc).__name__,
            detail="The provider's token endpoint could not be reached.",
        ) from None
    if not token.get("access_token"):
        raise MailError(
            ErrorClass.PROTOCOL, "oauth2", "token refresh", detail="The token endpoint sent no access token."
        )
    store_tokens(account, token)
    s.commit()
    return token["access_token"]


def _mark_needs_sign_in(s: Session, account: Account, reason: str) -> None:
    """State, notification and log line for a dead grant; committed at once (the job then ends)."""
    now = utcnow()
    message = _sign_in_message(account)
    outcome.needs_sign_in(account, message, now)
    note = (
        s.query(Notification)
        .filter_by(user_id=account.user_id, account_id=account.id, kind=NOTIFICATION_KIND)
        .first()
    )
    text = SIGN_IN_AGAIN_NOTE.format(email=account.email)
    if note is None:
        s.add(
            Notification(user_id=account.user_id, account_id=account.id, kind=NOTIFICATION_KIND, message=text)
        )
    else:
        note.message, note.read_at, note.created_at = text, None, now
    entry = email_log.record(
        LogSource.SYNC,
        LogLevel.ERROR,
        REFUSED_LINE.format(reason=reason[:200]),
        account=account,
        created_by="system",
    )
    db.session.expunge(entry)
    s.add(entry)
    s.commit()
