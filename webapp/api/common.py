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
    return _whole_numbers(body)


#: Beyond this a number written with a fraction or exponent stays a float (and is refused as one).
_LARGEST_WHOLE = 2**63


def _whole_numbers(value):
    """JSON has one number type: ``14.0`` and ``1e3`` are the whole numbers 14 and 1000, as the
    OpenAPI description's ``integer`` says (JSON Schema counts them as integers), so the views'
    whole-number checks take them.  ``check_request`` has already bounded the nesting depth."""
    if isinstance(value, float) and value.is_integer() and abs(value) < _LARGEST_WHOLE:
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    return value


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
