"""API routes for attachment downloads (registered on the /api/v1 blueprint).

``GET /messages/<id>/attachments/<number>``: an attachment of a synced message, numbered from 1
as the message's ``body.attachments`` lists them; a body not cached yet answers 202 with the
fetch job, as the message itself does.  ``GET /outgoing/<id>/attachments/<attachment_id>``: an
attachment of one's own outgoing message.  Both answer the bytes as a download
(webapp.attachments); another user's message is a 404.
"""

from __future__ import annotations

from flask import g

from .. import attachments, sending
from .. import message_bodies as bodies
from .. import message_queries as mq
from ..errors import NotFound
from ..jobs import bodies as body_jobs
from . import bp
from .common import token_required
from .jobs import accepted

_NO_SUCH = "No such attachment."


@bp.get("/messages/<int:message_id>/attachments/<int:number>")
@token_required
def message_attachment(message_id: int, number: int):
    message = mq.get_message(g.api_user, message_id)
    if bodies.is_gone(message):
        raise NotFound(bodies.GONE_TEXT)
    raw = bodies.cached_raw(message)
    if raw is None:
        return accepted(body_jobs.start(message, g.api_user), {"body": None})
    found = bodies.attachment(raw, number)
    if found is None:
        raise NotFound(_NO_SUCH)
    return attachments.download(*found)


@bp.get("/outgoing/<int:outgoing_id>/attachments/<int:attachment_id>")
@token_required
def outgoing_attachment(outgoing_id: int, attachment_id: int):
    row = sending.get_outgoing(g.api_user, outgoing_id)
    found = next((a for a in row.attachments if a.id == attachment_id), None)
    if found is None:
        raise NotFound(_NO_SUCH)
    return attachments.download(found.filename, found.content_type, found.data)
