"""API routes for console users: administrators manage users (list, create, role, disable,
reset password, lift a sign-in lock); anyone changes their own password (``/me/password``)."""

from __future__ import annotations

from flask import g, jsonify

from .. import throttle, users
from . import bp
from .common import _json, admin_only, token_required


@bp.get("/users")
@admin_only
def list_users():
    """Every user: id, username, role, state (active/disabled), mailboxes, last sign-in."""
    return jsonify([users.as_dict(row.user, row.mailboxes) for row in users.list_users()])


@bp.post("/users")
@admin_only
def create_user():
    """A new user (``username``, ``password``, ``admin``); 409 when the name is taken."""
    return jsonify(users.as_dict(users.create_from_body(_json()), 0)), 201


@bp.get("/users/<int:user_id>")
@admin_only
def get_user(user_id: int):
    return jsonify(users.as_dict(users.get_user(user_id)))


@bp.patch("/users/<int:user_id>")
@admin_only
def patch_user(user_id: int):
    """``admin`` and/or ``disabled``; 409 for the last active administrator or disabling oneself."""
    user = users.update_from_body(users.get_user(user_id), _json(), actor=g.api_user)
    return jsonify(users.as_dict(user))


@bp.post("/users/<int:user_id>/password")
@admin_only
def reset_password(user_id: int):
    """Set a user's password (``password``); every session of theirs ends, their tokens stay."""
    ended = users.password_from_body(users.get_user(user_id), _json(), own=False, actor=g.api_user)
    return jsonify({"sessions_ended": ended})


@bp.post("/me/password")
@token_required
def change_my_password():
    """One's own password: ``current_password`` and ``new_password``; every browser session ends."""
    ended = users.password_from_body(g.api_user, _json(), own=True)
    return jsonify({"sessions_ended": ended})


@bp.post("/users/<username>/unlock")
@admin_only
def unlock_user(username: str):
    """Lift ``username``'s sign-in lock; ``unlocked`` says whether it was locked."""
    return jsonify({"username": username, "unlocked": throttle.unlock(username)})
