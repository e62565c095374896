"""GET /metrics: Prometheus text (``prometheus-client``) built per request from webapp.operations.

Who may read it (docs/api.md): an administrator's browser session, an administrator's API token
as ``Authorization: Bearer``, or the scraper token ``MAILROOM_METRICS_TOKEN``.  The figures name
queues, worker hosts and mailbox counts, which are not for every user, and a Prometheus server
should not need a person's token, so the dedicated token can be rotated on its own.
"""

from __future__ import annotations

import hmac

from flask import Response, abort, current_app, request
from flask_login import current_user
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from .. import api_tokens, operations
from ..queue import reachable
from . import bp


@bp.route("/metrics")
def metrics() -> Response:
    _check_access()
    with reachable():
        figures = operations.figures(failed_limit=0)
    return Response(generate_latest(_registry(figures)), mimetype=CONTENT_TYPE_LATEST)


def _check_access() -> None:
    if current_user.is_authenticated:
        if current_user.is_admin:
            return
        abort(403)
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not token:
        abort(Response("Sign in as an administrator or send a bearer token.\n", 401, _challenge()))
    expected = current_app.config.get("METRICS_TOKEN")
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return
    user = api_tokens.user_for_token(token)
    if user is None:
        abort(Response("Unknown, expired or revoked token.\n", 401, _challenge()))
    if not user.is_admin:
        abort(403)


def _challenge() -> dict:
    return {"WWW-Authenticate": 'Bearer realm="mailroom metrics"', "Content-Type": "text/plain"}


def _registry(figures: operations.Figures) -> CollectorRegistry:
    registry = CollectorRegistry()
    jobs = Gauge("mailroom_queue_jobs", "Jobs per lane and state.", ["lane", "state"], registry=registry)
    for lane in figures.lanes:
        for state in ("queued", "scheduled", "started", "failed"):
            jobs.labels(lane=lane["lane"], state=state).set(lane[state])
    workers = Gauge("mailroom_workers", "RQ workers registered, by state.", ["state"], registry=registry)
    for worker in figures.workers:
        workers.labels(state=worker["state"] if worker["alive"] else "unheard").inc()
    lag = Gauge(
        "mailroom_sync_lag_seconds",
        "Seconds since the last successful sync over active mailboxes (oldest and 95th percentile).",
        ["stat"],
        registry=registry,
    )
    lag.labels(stat="oldest").set(figures.lag.oldest)
    lag.labels(stat="p95").set(figures.lag.p95)
    mailboxes = Gauge("mailroom_mailboxes", "Mailboxes by state.", ["state"], registry=registry)
    for state, count in figures.states.items():
        mailboxes.labels(state=state).set(count)
    Gauge("mailroom_idle_connections", "IMAP IDLE connections held by mailroom idle.", registry=registry).set(
        figures.idle_connections
    )
    Gauge("mailroom_idle_mailboxes", "Mailboxes leased by mailroom idle processes.", registry=registry).set(
        figures.idle_mailboxes
    )
    Gauge("mailroom_idle_processes", "Running mailroom idle processes.", registry=registry).set(
        figures.idle_processes
    )
    return registry
