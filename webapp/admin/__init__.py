"""Administration > Email > Email Service Settings: the list of services and console settings."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin/email")

# The views register themselves on bp when their modules are imported.
from . import (  # noqa: E402, F401
    lockout_routes,
    oauth_routes,
    operations_routes,
    routes,
    senders_routes,
    signature_routes,
    users_routes,
)
