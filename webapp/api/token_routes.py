"""API routes for bearer tokens: create (with the password, throttled), list and revoke one's own."""

from __future__ import annotations

from flask import g, jsonify, request

from .. import api_tokens
from ..errors import Invalid
from ..sign_in import SignInRefused, sign_in
from . import bp
from .common import _json, token_required


@bp.post("/tokens")
def create_token():
    """A new token for ``username``/``password``; optional ``name`` and ``days`` (expiry)."""
    body = _json()
    fields = {
        k: "This field is required."
        for k in ("username", "password")
        if not isinstance(body.get(k), str) or not body.get(k)
    }
    if fields:
        raise Invalid(fields)
    name, days = api_tokens.clean_options(body)
    try:
        user = sign_in(body["username"], body["password"], request.remote_addr or "")
    except SignInRefused as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
        return jsonify({"error": exc.message}), exc.status, headers
    token, row = api_tokens.issue(user, name or "api", days)
    return jsonify({"token": token, **api_tokens.as_dict(row)}), 201


@bp.get("/tokens")
@token_required
def list_tokens():
    """The caller's own tokens, newest last; never a secret."""
    return jsonify([api_tokens.as_dict(row) for row in api_tokens.tokens_of(g.api_user)])


@bp.delete("/tokens/<int:token_id>")
@token_required
def revoke_token(token_id: int):
    """Revoke one of the caller's tokens (404 for anyone else's); it stops working at once."""
    api_tokens.revoke(token_id, owner=g.api_user)
    return "", 204
