"""The compose page, the outgoing list, the special "Scheduled" folder and a sent message's live state.

The pages use the same rules as the API (webapp.sending): the form's fields go through
:func:`webapp.sending.clean`, so an error names the same field; sending enqueues the job and
the page then polls the message's state (queued → sending → sent / failed with the classified
sentence) without the web ever talking to a mail server.
"""

from flask import Blueprint

bp = Blueprint("compose", __name__, url_prefix="/compose")

# The views register themselves on bp when their modules are imported.
from . import (  # noqa: E402, F401
    reply_routes,
    routes,
)
