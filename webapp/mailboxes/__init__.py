"""A user's mailboxes: the list with state and last error, connect, edit, main mailbox."""

from flask import Blueprint

bp = Blueprint("mailboxes", __name__, url_prefix="/mailboxes")

# The views register themselves on bp when their modules are imported.
from . import (  # noqa: E402, F401
    discovery_routes,
    filter_routes,
    folder_routes,
    identity_routes,
    oauth_routes,
    ooo_routes,
    routes,
    sync_routes,
)
