"""A job's status, reported to the console user who started it only (or an administrator).

Jobs are started by the ``start`` functions of :mod:`webapp.jobs` (through
:func:`webapp.queue.enqueue_for`); the web turns the :class:`rq.job.Job` into its answer.
"""

from __future__ import annotations

from flask_babel import gettext as _
from rq.exceptions import NoSuchJobError
from rq.job import JOB_ID_PATTERN, Job

from connectors.i18n import N_

from . import i18n, queue
from .errors import NotFound
from .jobs import abandoned as abandoned_jobs
from .models import User

#: A failed job's sentence when the job left none (stored texts are translated when shown).
UNEXPECTED = N_("The job failed unexpectedly; the administrators can see the details in the worker log.")


def status(job_id: str, viewer: User) -> dict:
    """The job's public state; a job whose worker died is failed here (RQ's path) and says so."""
    with queue.reachable():
        return _status(job_id, viewer)


def _status(job_id: str, viewer: User) -> dict:
    if not JOB_ID_PATTERN.fullmatch(job_id):  # '.', NUL, ...: RQ would raise ValueError, a 500
        raise NotFound(_("No such job (finished jobs are kept for an hour)."))
    try:
        job = Job.fetch(job_id, connection=queue.get_redis())
    except NoSuchJobError:
        raise NotFound(_("No such job (finished jobs are kept for an hour).")) from None
    if job.meta.get("owner_id") != viewer.id and not viewer.is_admin:
        raise NotFound(_("No such job (finished jobs are kept for an hour)."))
    abandoned_jobs.recover(job)
    state = job.get_status(refresh=True)
    state = state.value if hasattr(state, "value") else str(state)
    body: dict = {"id": job.id, "kind": job.meta.get("kind"), "status": _public_status(state), "result": None}
    if state == "finished":
        body["result"] = i18n.localize_summary(job.return_value())  # diagnoses in the reader's language
    elif state == "failed":
        body["error"] = i18n.translate_stored(_failure_sentence(job))
    if job.meta.get("progress"):
        body["progress"] = job.meta["progress"]
    return body


def _failure_sentence(job: Job) -> str:
    job.refresh()  # the failure callback may have written its own sentence into the meta
    if job.meta.get("error"):
        return job.meta["error"]
    if abandoned_jobs.was_abandoned(job):
        return f"{abandoned_jobs.SENTENCE} {abandoned_jobs.START_AGAIN}"  # each sentence translated when shown
    return UNEXPECTED


def _public_status(state: str) -> str:
    """RQ knows more states (deferred, scheduled, stopped, canceled); the API answers four."""
    return {
        "queued": "queued",
        "deferred": "queued",
        "scheduled": "queued",
        "started": "started",
        "finished": "finished",
    }.get(state, "failed")
