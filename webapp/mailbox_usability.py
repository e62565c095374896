"""Whether a mailbox can still send, and what waits on one that cannot.

A mailbox whose service an administrator removed (or that its owner turned off) cannot send.
Compose must not offer it as From, the API must refuse it with a sentence (409) instead of
accepting a message that fails later, and the messages already scheduled from it must be
named to their owner, who can pick another From on each one's edit page.
"""

from __future__ import annotations

from sqlalchemy import func, or_

from .models import Account, AccountState, Alias, OutgoingMessage, OutgoingState, User

#: Messages that have not gone yet, so another From can still save them.
WAITING = (OutgoingState.SCHEDULED.value, OutgoingState.QUEUED.value)


def usable_for_sending(account: Account) -> bool:
    return account.active and account.state != AccountState.SERVICE_REMOVED.value


def send_blocker(account: Account) -> str | None:
    """The sentence saying why ``account`` cannot send, or None when it can."""
    if account.state == AccountState.SERVICE_REMOVED.value:
        return (
            f'The mailbox {account.email} cannot send: its mail service "{account.service_name or "?"}" was '
            "removed by an administrator. Connect it again through another service, or choose another From."
        )
    if not account.active:
        return f"The mailbox {account.email} is turned off, so it cannot send. Turn it on, or choose another From."
    return None


def blocked_sender(user: User, address: str | None) -> str | None:
    """Why ``address`` (None: the main mailbox) cannot be used by ``user``, if it is theirs or
    shared with them but its mailbox cannot send; None when no such mailbox stands in the way."""
    candidates = _candidates(user, address)
    if any(usable_for_sending(a) for a in candidates):
        return None  # the same address on another mailbox that can send
    return next((send_blocker(a) for a in candidates), None)


def _candidates(user: User, address: str | None) -> list[Account]:
    if address is None:
        return Account.query.filter_by(user_id=user.id, is_main=True).all()
    lowered = address.lower()
    mine = or_(Account.user_id == user.id, Account.shared_sender.is_(True))
    direct = Account.query.filter(
        mine, or_(func.lower(Account.email) == lowered, func.lower(Account.smtp_from) == lowered)
    ).all()
    aliased = (
        Account.query.join(Alias, Alias.account_id == Account.id)
        .filter(Account.user_id == user.id, func.lower(Alias.address) == lowered)
        .all()
    )
    return direct + aliased


def waiting_messages(account: Account) -> list[OutgoingMessage]:
    """Messages from ``account`` that have not gone yet, the soonest first."""
    rows = OutgoingMessage.query.filter(
        OutgoingMessage.account_id == account.id, OutgoingMessage.state.in_(WAITING)
    ).all()
    return sorted(rows, key=lambda r: r.send_at or r.created_at)


def describe_waiting(rows: list[OutgoingMessage]) -> str:
    """``"Q3 report" (scheduled for 2026-12-01 09:00 UTC), …`` for a notification."""
    parts = []
    for row in rows:
        when = f"scheduled for {row.send_at:%Y-%m-%d %H:%M} UTC" if row.send_at else "queued"
        parts.append(f'"{row.subject or "(no subject)"}" ({when})')
    return ", ".join(parts)
