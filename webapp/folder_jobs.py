"""Old dotted path of jobs now in :mod:`webapp.jobs.folders`.

RQ stores a job's function (and callback) by its dotted path, and a job may wait in Redis for a
long time (a scheduled send up to 366 days): the jobs enqueued under this path still run.
Import nothing else from here.
"""

from webapp.jobs.folders import list_folders  # queued jobs name this path

__all__ = ["list_folders"]
