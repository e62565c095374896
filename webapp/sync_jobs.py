"""Old dotted path of jobs now in :mod:`webapp.jobs.sync`.

RQ stores a job's function (and callback) by its dotted path, and a job may wait in Redis for a
long time (a scheduled send up to 366 days): the jobs enqueued under this path still run.
Import nothing else from here.
"""

from webapp.jobs.sync import (
    on_sync_failure,  # queued jobs name this path
    sync_account,  # queued jobs name this path
    sync_due_accounts,  # queued jobs name this path
)

__all__ = ["sync_account", "on_sync_failure", "sync_due_accounts"]
