"""When cron syncs a mailbox: due times spread over the interval, picked by one indexed query.

Each mailbox has a fixed phase inside the sync interval (a multiplicative hash of its id), and
``accounts.next_sync_at`` is always the next time at that phase.  So 10,000 mailboxes fall
evenly over the interval instead of all in the same minute, and stay spread: after the first
pass (a new mailbox, or every mailbox right after the upgrade, has no due time and is due at
once, unless it synced within the interval) each comes back exactly one interval later.  A mailbox with push on (``Account.push``:
``mailroom idle`` enqueues its sync when mail arrives) is swept every :data:`PUSH_SWEEP_FACTOR`
intervals only.

Cron alone writes ``next_sync_at``, when it enqueues the sync: a queued mailbox is not due again,
so cron does not ask Redis about it at every run.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, or_, select

from ..extensions import db
from ..models import Account, AccountState
from ..users import owner_enabled

#: A push mailbox gets its periodic sweep this many sync intervals apart.
PUSH_SWEEP_FACTOR = 4
#: Never picked by cron: only a person can put these right (a wrong password retried every few
#: minutes could get the account locked by the provider; OAuth2 needs its owner to sign in).
NOT_SWEPT = (
    AccountState.SERVICE_REMOVED.value,
    AccountState.AUTH_ERROR.value,
    AccountState.NEEDS_SIGN_IN.value,
)
_EPOCH = datetime(1970, 1, 1)
_GOLDEN = 2654435761  # Knuth's multiplicative hash: consecutive ids land far apart in the interval


def phase(account_id: int, period: timedelta) -> timedelta:
    """The mailbox's fixed offset inside ``period``."""
    return period * (((account_id * _GOLDEN) % 2**32) / 2**32)


def next_due(account_id: int, now: datetime, interval: timedelta, push: bool = False) -> datetime:
    """The first time at the mailbox's phase at least half a period after ``now``."""
    period = interval * (PUSH_SWEEP_FACTOR if push else 1)
    window_start = now - (now - _EPOCH) % period
    due = window_start + phase(account_id, period)
    while due < now + period / 2:
        due += period
    return due


def due_query(now: datetime, interval: timedelta, limit: int | None = None) -> Select:
    """Active mailboxes whose due time has come, oldest due first, with what cron groups them by
    (service or typed IMAP host, protocol); served by the index
    ``ix_accounts_active_next_sync_at``.  One without a due time yet (new, or from before due
    times existed) is due unless it synced within the interval."""
    not_scheduled = and_(
        Account.next_sync_at.is_(None),
        or_(Account.last_synced_at.is_(None), Account.last_synced_at < now - interval),
    )
    query = (
        select(
            Account.id,
            Account.user_id,
            Account.push,
            Account.manual,
            Account.service_id,
            Account.imap_host,
            Account.incoming_protocol,
        )
        .where(
            Account.active.is_(True),
            Account.state.notin_(NOT_SWEPT),
            owner_enabled(),  # a disabled user's mailboxes wait (webapp/users.py)
            or_(Account.next_sync_at <= now, not_scheduled),
        )
        .order_by(Account.next_sync_at.is_not(None), Account.next_sync_at, Account.id)
    )
    return query.limit(limit) if limit else query


def schedule_next(rows: Iterable[tuple[int, bool]], now: datetime, interval: timedelta) -> None:
    """Set each ``(account id, push)``'s next due time in one executemany UPDATE (not committed)."""
    values = [
        {"id": account_id, "next_sync_at": next_due(account_id, now, interval, push)}
        for account_id, push in rows
    ]
    if values:
        db.session.execute(db.update(Account), values)
