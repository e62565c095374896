"""The periodic jobs ``mailroom cron`` registers with RQ's cron scheduler, and the heartbeat."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..extensions import db
from ..models import Setting
from ..operations import SAMPLE_EVERY, sample_lag
from .abandoned import recover_abandoned
from .send import sweep_outgoing
from .sync import sync_due_accounts

if TYPE_CHECKING:  # the web imports this package too; only ``mailroom cron`` needs the scheduler
    from rq.cron import CronScheduler


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


#: (job, seconds between runs, job timeout in seconds).
PERIODIC = (
    (heartbeat, 60, 30),
    (sync_due_accounts, 60, 120),
    # A killed worker's jobs failed through RQ's abandoned-job path; messages whose job was lost.
    (recover_abandoned, 60, 60),
    (sweep_outgoing, 60, 120),
    # The Operations page's 24-hour sync-lag chart: one sample every 5 minutes (webapp.operations).
    (sample_lag, SAMPLE_EVERY, 60),
)


def register(scheduler: CronScheduler, queue_name: str) -> CronScheduler:
    """Register every periodic job on ``scheduler`` for the queue ``queue_name``."""
    for func, interval, timeout in PERIODIC:
        scheduler.register(func, queue_name=queue_name, interval=interval, job_timeout=timeout)
    return scheduler
