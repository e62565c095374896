"""API routes for sync (registered on the /api/v1 blueprint)."""

from __future__ import annotations

from flask import g, jsonify

from .. import accounts
from . import bp, token_required


@bp.post("/accounts/<int:account_id>/sync")
@token_required
def sync_account(account_id: int):
    """Enqueue a sync of the mailbox's selected folders: 202 with the job, 409 if one is queued or running."""
    from ..sync_jobs import check_syncable, enqueue_sync

    account = accounts.get_account(g.api_user, account_id)  # 404 unless owner or admin
    check_syncable(account)
    body = enqueue_sync(account, owner_id=g.api_user.id)
    return jsonify(body), 202, {"Location": body["status_url"]}
