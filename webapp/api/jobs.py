"""The API's answer to a started job: 202 with the job's id and status URL (and ``Location``)."""

from __future__ import annotations

from flask import jsonify, url_for
from rq.job import Job


def status_url(job_id: str) -> str:
    return url_for("api.job_status", job_id=job_id)


def job_body(job: Job) -> dict:
    return {"job_id": job.id, "status_url": status_url(job.id)}


def accepted(job: Job, extra: dict | None = None):
    """``202 {"job_id", "status_url", **extra}`` with ``Location: status_url``: every job start of the API."""
    body = {**(extra or {}), **job_body(job)}
    return jsonify(body), 202, {"Location": body["status_url"]}
