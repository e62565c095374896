"""RQ jobs.  Each is a plain top-level function taking ids only, run by ``mailroom worker``
inside the application context; secrets are read from the database, never passed in."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from .extensions import db
from .models import Setting


def heartbeat() -> str:
    """Run by the cron scheduler every minute: proves to the admin page that cron and a worker run."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    row = db.session.get(Setting, "cron_heartbeat")
    if row is None:
        db.session.add(Setting(key="cron_heartbeat", value=json.dumps(stamp)))
    else:
        row.value = json.dumps(stamp)
    db.session.commit()
    return stamp


def test_account_connection(account_id: int) -> dict:
    """Connection test of a mailbox (incoming and outgoing); see webapp.connection_tests."""
    from .connection_tests import test_account

    return test_account(account_id)


def test_service_connection(service_id: int, credentials_key: str, requested_by: int | None = None) -> dict:
    """Connection test of a corporate server with credentials waiting in Redis, not in the arguments."""
    from .connection_tests import test_service

    return test_service(service_id, credentials_key, requested_by)
