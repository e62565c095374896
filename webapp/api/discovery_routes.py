"""``POST /api/v1/discover``: suggest server settings for an email address (runs as a job)."""

from __future__ import annotations

from flask import g

from ..jobs import discovery
from . import bp
from .common import _json, token_required
from .jobs import accepted


@bp.post("/discover")
@token_required
def discover():
    return accepted(discovery.start(_json(), g.api_user))
