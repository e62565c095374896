"""Editing a working mailbox's password, login or servers: the new settings are tested first and
saved only when they work.

A person who types a wrong new password must be told, and the mailbox must keep the settings
that work.  The web never talks to a mail server, so the edit page (:mod:`webapp.mailboxes.routes`)
saves everything else, keeps the mailbox's connection columns as they were, and hands the new
ones to :func:`try_settings` through Redis: encrypted, for a few minutes, under a random key that
is the only thing the job receives (as a corporate server's test credentials are).

The job puts the new values on the row in its session without flushing them, runs the same
checks as a connection test (:func:`webapp.jobs.connection_test.check_account`), and then either
commits them with the test's success, or drops them and records the failed report marked
``kept_previous`` (the row's "Nothing was saved" line); the state and last error stay those of
the working settings.  Only password mailboxes take this path (an OAuth2 login refreshes and
commits its token while it checks).
"""

from __future__ import annotations

import json
import secrets

from rq.job import Job

from ..extensions import db
from ..models import Account, Service, User
from ..queue import enqueue_for, get_redis
from ..secretbox import box
from . import connection_test
from .outcome import record_rejected_settings
from .session import UNAVAILABLE, credentials

KEY_PREFIX = "mailroom:edit-trial:"
#: Seconds the new settings wait in Redis for their job.
TTL = 300


def start(account: Account, owner: User, proposed: dict) -> Job:
    """Stash ``proposed`` (column -> value, the connection columns after the edit) and enqueue the
    trial; :class:`~webapp.errors.QueueUnavailable` without Redis (nothing is stashed then)."""
    redis = get_redis()
    key = KEY_PREFIX + secrets.token_urlsafe(16)
    redis.set(key, box().encrypt(json.dumps(proposed)), ex=TTL)
    try:
        return enqueue_for(
            try_settings,
            account.id,
            key,
            owner_id=owner.id,
            kind="connection_test",
            account_id=account.id,
            timeout=connection_test.job_timeout(),
        )
    except Exception:
        redis.delete(key)
        raise


def try_settings(account_id: int, key: str) -> dict:
    """The job: test the stashed settings on the mailbox; save them only if every check passes."""
    blob = get_redis().getdel(key)
    account = db.session.get(Account, account_id)
    if account is None:
        return {"ok": False, "error": UNAVAILABLE["gone"]}
    if blob is None:
        return {"ok": False, "error": connection_test.WORDS["expired"]}
    proposed = json.loads(box().decrypt(blob.decode()))
    with db.session.no_autoflush:  # nothing reaches the database before the verdict
        for column, value in proposed.items():
            setattr(account, column, value)
        if "service_id" in proposed:  # the relationship follows the column only at a flush
            account.service = (
                db.session.get(Service, proposed["service_id"]) if proposed["service_id"] else None
            )
        summary, reports = connection_test.check_account(
            account, credentials(account, account.incoming_protocol), credentials(account, "smtp")
        )
    if summary["ok"]:
        connection_test.record_outcome(account, reports, summary)  # commits the new settings too
        return summary
    lines = connection_test.log_lines(reports)
    db.session.rollback()  # the working settings stay
    account = db.session.get(Account, account_id)
    record_rejected_settings(account, lines, summary)
    return {**summary, "kept_previous": True}
