"""Small jobs that let tests see how ``mailroom worker`` runs jobs (process, session, time limit)."""

from __future__ import annotations

import os
import time

from webapp.extensions import db
from webapp.models import Account


def process_id() -> int:
    return os.getpid()


def sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


def leave_session_dirty(account_id: int) -> int:
    """Answer how many objects the session held when the job began, then leave a change uncommitted."""
    held = len(db.session.identity_map)
    db.session.get(Account, account_id).description = "left uncommitted by a job"
    return held
