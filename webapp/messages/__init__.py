"""The messages pages: unified role views, Flagged, one folder, threads, search, a message, history.

Everything shown is the person's own mailboxes (administrators included; their
wider door is the API's ``accounts/<id>`` endpoints).  Opening a message whose
body is not cached enqueues the fetch job and the page polls it, because the
web never talks to a mail server (see webapp.message_bodies).
"""

from flask import Blueprint

bp = Blueprint("messages", __name__, url_prefix="/messages")

# The views register themselves on bp when their modules are imported.
from . import (  # noqa: E402, F401
    change_routes,
    routes,
)
