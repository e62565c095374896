"""A disabled user sends nothing: their waiting messages are held, never sent, never deleted.

Disabling a user (:func:`webapp.users.update_user`) calls :func:`hold_all`: every ``queued`` or
``scheduled`` message of theirs becomes ``held`` at once, so the person (and the API) sees why it
did not go.  Their RQ jobs stay where they are: a job that runs while its row is held does
nothing.  The send job itself asks :func:`must_hold` before it connects
(:mod:`webapp.jobs.send`), so a job queued or retrying before the disable, or enqueued by the
sweeper meanwhile, is held too: the rule holds at the moment of sending, not only at disable time.

Enabling the user calls :func:`release_all`: a held message whose time is still to come goes back
to ``scheduled`` and leaves at its time (its scheduled job is still in Redis; the outgoing
sweeper gives it a new one if not).  A message whose time came while the account was disabled
(and every send-now message caught by the disable) stays ``held`` until its owner sends it now,
edits it or cancels it: it is late, and only the person knows whether it still should go
(docs/users.md says why).
"""

from __future__ import annotations

from .models import OutgoingMessage, OutgoingState, User, utcnow

#: States a disable holds: messages not yet handed to a worker's SMTP transaction.
HOLDABLE = (OutgoingState.QUEUED.value, OutgoingState.SCHEDULED.value)


def must_hold(row: OutgoingMessage, user: User | None) -> bool:
    """True when the send job must not send ``row`` now: its owner is disabled (or it is held)."""
    if row.smtp_accepted_at is not None:
        return False  # already with the SMTP server: only the Sent copy is left
    return row.state == OutgoingState.HELD.value or (user is not None and user.is_disabled)


def hold(row: OutgoingMessage) -> None:
    """Hold one message (not committed); one already held stays so."""
    if row.state in HOLDABLE:
        row.move_to(OutgoingState.HELD)


def hold_all(user: User) -> int:
    """Hold every waiting message of ``user`` (not committed); answers how many."""
    rows = OutgoingMessage.query.filter(
        OutgoingMessage.user_id == user.id, OutgoingMessage.state.in_(HOLDABLE)
    )
    count = 0
    for row in rows:
        hold(row)
        count += 1
    return count


def release_all(user: User) -> int:
    """Put back ``scheduled`` the held messages whose time is still to come (not committed); how many.

    The others stay held for their owner to send, edit or cancel.
    """
    now = utcnow()
    rows = OutgoingMessage.query.filter(
        OutgoingMessage.user_id == user.id,
        OutgoingMessage.state == OutgoingState.HELD.value,
        OutgoingMessage.send_at > now,
    )
    count = 0
    for row in rows:
        row.move_to(OutgoingState.SCHEDULED)
        count += 1
    return count
