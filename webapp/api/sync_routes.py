"""API routes for sync (registered on the /api/v1 blueprint)."""

from __future__ import annotations

from flask import g

from .. import accounts
from ..jobs import sync
from . import bp
from .common import token_required
from .jobs import accepted, status_url


@bp.post("/accounts/<int:account_id>/sync")
@token_required
def sync_account(account_id: int):
    """Enqueue a sync of the mailbox's selected folders: 202 with the job, 409 if one is queued or running."""
    account = accounts.get_account(g.api_user, account_id)  # 404 unless owner or admin
    try:
        job = sync.start(account, owner_id=g.api_user.id)
    except sync.SyncRunning as exc:
        exc.status_url = status_url(exc.job_id)
        raise
    return accepted(job)
