"""``/metrics``: the Operations page's figures in Prometheus text format, for an admin or a scraper."""

from flask import Blueprint

bp = Blueprint("metrics", __name__)

# The view registers itself on bp when its module is imported.
from . import routes  # noqa: E402, F401
