"""My profile: the sender's fields that fill the company's centralized signature, with a live preview."""

from flask import Blueprint

bp = Blueprint("profile", __name__, url_prefix="/profile")

# The views register themselves on bp when their modules are imported.
from . import (  # noqa: E402, F401
    password_routes,
    routes,
    tokens_routes,
)
