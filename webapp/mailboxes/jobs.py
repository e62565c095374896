"""The pages' answer to a started job: the JSON their scripts poll (``mailboxes.job_status``).

Every page that starts a job (mailboxes, folders, filters, messages, the administrators'
service test) answers through here, so a job start is written once on the page side.
"""

from __future__ import annotations

from flask import jsonify, url_for
from rq.job import Job


def status_url(job_id: str) -> str:
    return url_for("mailboxes.job_status", job_id=job_id)


def job_body(job: Job) -> dict:
    return {"job_id": job.id, "status_url": status_url(job.id)}


def accepted(job: Job):
    """``202 {"job_id", "status_url"}`` for the page script that polls it."""
    return jsonify(job_body(job)), 202
