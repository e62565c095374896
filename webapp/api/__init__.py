"""The JSON API, ``/api/v1``: the same rules as the pages, bearer-token authentication.

Status codes: 400 malformed body, 401 missing or bad token, 403 not allowed,
404 unknown id, 409 duplicate, 422 invalid field (``{"error", "fields"}``).
"""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# The views register themselves on bp when their modules are imported.
from . import (  # noqa: E402, F401
    attachment_routes,
    automation_routes,
    discovery_routes,
    folder_routes,
    identity_routes,
    message_routes,
    oauth_routes,
    routes,
    sending_routes,
    sync_routes,
    token_routes,
    user_routes,
)
