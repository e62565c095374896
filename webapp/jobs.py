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
