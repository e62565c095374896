"""API routes for console users: an administrator lifts a sign-in lockout."""

from __future__ import annotations

from flask import jsonify

from .. import throttle
from . import bp
from .common import admin_only


@bp.post("/users/<username>/unlock")
@admin_only
def unlock_user(username: str):
    """Lift ``username``'s sign-in lock; ``unlocked`` says whether it was locked."""
    return jsonify({"username": username, "unlocked": throttle.unlock(username)})
