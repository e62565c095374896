"""The "Sync now" button of the mailbox list: enqueue a sync, answer JSON the page polls."""

from __future__ import annotations

from flask import jsonify
from flask_login import login_required

from ..errors import DomainError
from . import _own_account, bp


@bp.route("/<int:account_id>/sync", methods=["POST"])
@login_required
def sync_now(account_id: int):
    """202 ``{"job_id", "status_url"}``; 409 with the running job's id; 422 for a disabled mailbox."""
    from ..sync_jobs import check_syncable, enqueue_sync

    account = _own_account(account_id)
    try:
        check_syncable(account)
        body = enqueue_sync(account, api=False)
    except DomainError as exc:  # 409 running, 422 not syncable, 503 queue unavailable (Retry-After)
        return jsonify(exc.as_dict()), exc.status, getattr(exc, "headers", None) or {}
    return jsonify(body), 202
