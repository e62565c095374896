"""The "Sync now" button of the mailbox list: enqueue a sync, answer JSON the page polls."""

from __future__ import annotations

from flask import jsonify
from flask_login import login_required

from ..errors import DomainError
from ..jobs import sync
from . import bp
from .common import _own_account
from .jobs import accepted, status_url


@bp.route("/<int:account_id>/sync", methods=["POST"])
@login_required
def sync_now(account_id: int):
    """202 ``{"job_id", "status_url"}``; 409 with the running job's id; 422 for a disabled mailbox."""
    account = _own_account(account_id)
    try:
        job = sync.start(account)
    except sync.SyncRunning as exc:
        exc.status_url = status_url(exc.job_id)
        return jsonify(exc.as_dict()), exc.status
    except DomainError as exc:  # 422 not syncable, 503 queue unavailable (Retry-After)
        return jsonify(exc.as_dict()), exc.status, getattr(exc, "headers", None) or {}
    return accepted(job)
