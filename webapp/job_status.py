"""Enqueueing jobs for a console user and reporting their status to that user only."""

from __future__ import annotations

from flask import current_app, url_for
from rq.exceptions import NoSuchJobError
from rq.job import JOB_ID_PATTERN, Job

from . import abandoned_jobs, queue
from .errors import NotFound
from .models import User


def enqueue(
    func,
    *args,
    owner: User,
    kind: str,
    account_id: int | None = None,
    timeout: int | None = None,
    api: bool = True,
) -> dict:
    """Enqueue ``func(*args)`` (ids only) on behalf of ``owner``; answer the job id and status URL."""
    job = queue.enqueue(
        func,
        *args,
        job_timeout=timeout or current_app.config["JOB_TIMEOUT"],
        result_ttl=3600,
        failure_ttl=24 * 3600,
        meta={"owner_id": owner.id, "kind": kind, "account_id": account_id},
    )
    endpoint = "api.job_status" if api else "mailboxes.job_status"
    return {"job_id": job.id, "status_url": url_for(endpoint, job_id=job.id)}


def status(job_id: str, viewer: User) -> dict:
    """The job's public state; a job whose worker died is failed here (RQ's path) and says so."""
    with queue.reachable():
        return _status(job_id, viewer)


def _status(job_id: str, viewer: User) -> dict:
    if not JOB_ID_PATTERN.fullmatch(job_id):  # '.', NUL, ...: RQ would raise ValueError, a 500
        raise NotFound("No such job (finished jobs are kept for an hour).")
    try:
        job = Job.fetch(job_id, connection=queue.get_redis())
    except NoSuchJobError:
        raise NotFound("No such job (finished jobs are kept for an hour).") from None
    if job.meta.get("owner_id") != viewer.id and not viewer.is_admin:
        raise NotFound("No such job (finished jobs are kept for an hour).")
    abandoned_jobs.recover(job)
    state = job.get_status(refresh=True)
    state = state.value if hasattr(state, "value") else str(state)
    body: dict = {"id": job.id, "kind": job.meta.get("kind"), "status": _public_status(state), "result": None}
    if state == "finished":
        body["result"] = job.return_value()
    elif state == "failed":
        body["error"] = _failure_sentence(job)
    if job.meta.get("progress"):
        body["progress"] = job.meta["progress"]
    return body


def _failure_sentence(job: Job) -> str:
    job.refresh()  # the failure callback may have written its own sentence into the meta
    if job.meta.get("error"):
        return job.meta["error"]
    if abandoned_jobs.was_abandoned(job):
        return abandoned_jobs.SENTENCE + " Start it again."
    return "The job failed unexpectedly; the administrators can see the details in the worker log."


def _public_status(state: str) -> str:
    """RQ knows more states (deferred, scheduled, stopped, canceled); the API answers four."""
    return {
        "queued": "queued",
        "deferred": "queued",
        "scheduled": "queued",
        "started": "started",
        "finished": "finished",
    }.get(state, "failed")
