"""Signing in and out of the console: the ``auth`` blueprint (sign-in page, logout, home).

The checks it relies on are domain services beside it: :mod:`webapp.sign_in` (throttling,
safe redirects), :mod:`webapp.sessions` (server-side sessions), :mod:`webapp.users`
(creating users, changing passwords) and :mod:`webapp.api_tokens` (bearer tokens).
"""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from . import routes  # noqa: E402, F401  (registers the views on bp)
