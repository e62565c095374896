"""How an unreachable queue reaches a person: a 503 with a sentence, never a traceback.

Every enqueue raises :class:`~webapp.errors.QueueUnavailable` when Redis cannot be reached
(webapp.queue); any other Redis call a request makes that fails the same way (a lock, a
job's status) is answered alike.  JSON callers (the API, the pages' scripts) get
``{"error", "code": "queue_unavailable"}``; a page gets the sentence on an error page.  Both
carry ``Retry-After``.  Signing in and plain pages never touch Redis, so they keep working.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request

from .errors import QueueUnavailable
from .extensions import db
from .queue import UNREACHABLE

log = logging.getLogger(__name__)


def wants_json() -> bool:
    """An API or JSON caller: it gets a JSON body, not a page (this answer and the error pages)."""
    return (
        request.blueprint == "api"
        or request.path.startswith("/api/")
        or request.is_json
        or request.accept_mimetypes.best == "application/json"
    )


def queue_unavailable(exc: QueueUnavailable):
    db.session.rollback()
    if wants_json():
        return jsonify(exc.as_dict()), exc.status, exc.headers
    return render_template("unavailable.html", error=exc), exc.status, exc.headers


def redis_unreachable(exc: Exception):
    """A Redis call outside :func:`webapp.queue.reachable` failed: the same 503, and a log line."""
    log.warning("Redis cannot be reached (%s %s): %s", request.method, request.path, exc)
    return queue_unavailable(QueueUnavailable())


def init_app(app: Flask) -> None:
    app.register_error_handler(QueueUnavailable, queue_unavailable)
    for error in UNREACHABLE:
        app.register_error_handler(error, redis_unreachable)
