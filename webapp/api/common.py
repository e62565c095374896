"""What every API route module shares: the JSON body and bearer-token access (token_required, admin_only)."""

from __future__ import annotations

from functools import wraps

from flask import g, jsonify, request
from flask_babel import gettext as _

from ..api_tokens import TokenRefused, authenticate
from ..errors import Forbidden, Malformed


def _json() -> dict:
    body = request.get_json(silent=True)
    if body is None:
        raise Malformed(_("The request body must be a JSON object (Content-Type: application/json)."))
    if not isinstance(body, dict):
        raise Malformed(_("The request body must be a JSON object."))
    return body


def token_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        message = "A valid API token is required (Authorization: Bearer <token>)."
        try:
            user = authenticate(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        except TokenRefused as exc:  # expired or revoked: say which, so the client stops retrying
            user, message = None, str(exc)
        if user is None:
            response = jsonify({"error": message})
            response.headers["WWW-Authenticate"] = 'Bearer realm="mailroom", error="invalid_token"'
            return response, 401
        g.api_user = user
        return view(*args, **kwargs)

    wrapped.api_access = "token"  # read by the OpenAPI description (webapp/api/openapi.py)
    return wrapped


def admin_only(view):
    @wraps(view)
    @token_required
    def wrapped(*args, **kwargs):
        if not g.api_user.is_admin:
            raise Forbidden(_("This needs an administrator."))
        return view(*args, **kwargs)

    wrapped.api_access = "admin"
    return wrapped
