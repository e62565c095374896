"""API routes for sending: compose, outgoing messages, scheduled sends, allowed senders.

``POST /messages/send`` answers 202 as soon as the message is stored and its job enqueued;
``GET /outgoing/<id>`` then shows its state (scheduled, queued, sending, sent, failed with the
classified reason, cancelled).  See docs/sending.md.
"""

from __future__ import annotations

import re

from flask import g, jsonify, request, url_for
from flask_babel import gettext as _

from .. import message_bodies as bodies
from .. import message_queries as mq
from .. import replies, send_queue, sending
from ..errors import Forbidden, Invalid, NotFound
from ..jobs import bodies as body_jobs
from ..jobs import send as send_job
from . import bp
from .common import _json, token_required
from .jobs import accepted


def _outgoing(row, full: bool = False) -> dict:
    """The message as :func:`webapp.sending.outgoing_as_dict` shapes it, each attachment with its
    API download URL (URLs are built here, in the web layer: the service needs no request)."""
    body = sending.outgoing_as_dict(row, full)
    for item in body["attachments"]:
        item["download_url"] = url_for(
            "api.outgoing_attachment", outgoing_id=row.id, attachment_id=item["id"]
        )
    return body


def _accepted(row, replayed: bool = False) -> tuple:
    body = {
        "id": row.id,
        "state": row.state,
        "message_id": row.message_id,
        "job_id": row.job_id,
        "status_url": url_for("api.get_outgoing", outgoing_id=row.id),
        "send_at": sending.outgoing_as_dict(row)["send_at"],
    }
    headers = {"Location": body["status_url"]}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return jsonify(body), 202, headers


@bp.post("/messages/send")
@token_required
def send_message():
    """Validate, store and enqueue (or schedule) a message: 202; 422 naming a field; 403 for a From.

    503 when the queue is down (nothing stored: retry).  With an ``Idempotency-Key`` header a
    retry answers the first message again (docs/api.md).
    """
    key = send_queue.idempotency_key(request.headers)
    row, created = send_queue.submit(g.api_user, _json(), "api", key)
    return _accepted(row, replayed=not created)


@bp.get("/outgoing")
@token_required
def list_outgoing():
    """The user's outgoing messages, newest first; ``?state=scheduled,failed`` filters."""
    limit = request.args.get("limit", "100")
    if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= 500:
        raise Invalid({"limit": _("must be a whole number between 1 and 500")})
    rows = sending.list_outgoing(g.api_user, request.args.get("state"), int(limit))
    return jsonify([_outgoing(r) for r in rows])


@bp.get("/outgoing/<int:outgoing_id>")
@token_required
def get_outgoing(outgoing_id: int):
    return jsonify(_outgoing(sending.get_outgoing(g.api_user, outgoing_id), full=True))


@bp.patch("/outgoing/<int:outgoing_id>")
@token_required
def patch_outgoing(outgoing_id: int):
    """Edit a scheduled message (any send field; ``send_at`` null sends it now); 409 once it goes."""
    row = sending.get_outgoing(g.api_user, outgoing_id)
    send_job.reschedule(row, _json())
    return _accepted(row)


@bp.post("/outgoing/<int:outgoing_id>/cancel")
@token_required
def cancel_outgoing(outgoing_id: int):
    row = sending.cancel(sending.get_outgoing(g.api_user, outgoing_id))
    return jsonify(_outgoing(row))


@bp.get("/senders")
@token_required
def senders():
    """The From addresses the user may send as, main mailbox first."""
    return jsonify(sending.allowed_senders(g.api_user))


# -- Reply, Reply all, Forward (webapp.replies) ---------------------------------------------------


@bp.post("/messages/<int:message_id>/reply")
@token_required
def reply_message(message_id: int):
    """A reply to the sender (Reply-To when given): the draft (200), or sent with ``"send": true`` (202)."""
    return _answer(message_id, "reply")


@bp.post("/messages/<int:message_id>/reply-all")
@token_required
def reply_all_message(message_id: int):
    """A reply to the sender and every other recipient but oneself: the draft, or sent (``"send": true``)."""
    return _answer(message_id, "reply_all")


@bp.post("/messages/<int:message_id>/forward")
@token_required
def forward_message(message_id: int):
    """A forward with the original's attachments (``forward_attachments`` picks some): draft or sent."""
    return _answer(message_id, "forward")


def _override_problems(data: dict) -> dict[str, str]:
    """The fields wrong whatever the original: a 422 at once, draft or not, and before the original
    is fetched (not a 202 now and a 422 on the next try), as the OpenAPI description's schema says.

    The fields the request overrides are checked as ``POST /messages/send`` checks them (stand-ins
    for the draft's own); what needs the original (``forward_attachments``) and the sender's
    permission wait for it.
    """
    given = {key: value for key, value in data.items() if key in replies.OVERRIDES - {"text", "html"}}
    fields = {key: _("unknown field") for key in set(data) - replies.OPTIONS - replies.OVERRIDES}
    if not isinstance(data.get("send", False), bool):
        fields["send"] = _("must be true or false")
    for key in ("text", "html"):  # the draft adds the quote and signature to them
        if data.get(key) is not None and not isinstance(data[key], str):
            fields[key] = _("must be a string")
    # The draft's recipients stand in where the request gives none; text: the quote at least.
    stand_in = {"text": "-", **{k: ["stand-in@example.com"] for k in ("to", "cc", "bcc") if k not in given}}
    try:
        sending.clean(g.api_user, {**stand_in, **given})
    except Invalid as exc:
        fields.update({k: v for k, v in exc.fields.items() if re.split(r"[.\[]", k)[0] in given})
    except Forbidden:
        pass
    return fields


def _answer(message_id: int, mode: str):
    """The draft, the sent message, or — the original not fetched yet — 202 with the fetch job."""
    data = _json() if request.content_length or request.data else {}
    message = mq.get_message(g.api_user, message_id)
    if bodies.is_gone(message):
        raise NotFound(bodies.GONE_TEXT)
    problems = _override_problems(data)
    raw = bodies.cached_raw(message)
    if raw is None and problems:
        raise Invalid(problems)
    if raw is None:  # ask again when the job has finished, as GET /messages/<id> says
        return accepted(body_jobs.start(message, g.api_user), {"message_id": message.id, "draft": None})
    original = replies.original_of(message, raw)
    try:
        options, overrides, numbers = replies.clean_request(data, mode, original)
    except Invalid as exc:  # every wrong field named at once
        raise Invalid({**problems, **exc.fields}) from None
    if problems:
        raise Invalid(problems)
    draft = replies.build(
        g.api_user, mode, original, from_addr=data.get("from"), text=data.get("text"), html=data.get("html")
    )
    if data.get("from") and draft.sender is None:  # as POST /messages/send answers it
        raise Forbidden(
            _("You may not send as %(address)s: only your mailboxes, their aliases and shared senders.", address=data['from']),
            {"from": "This address is not one you may send from."},
        )
    if not options["send"]:
        return jsonify(replies.as_dict(draft))
    fields = replies.send_fields(draft, overrides, replies.carried_attachments(raw, numbers))
    key = send_queue.idempotency_key(request.headers)
    row, created = send_queue.submit(g.api_user, fields, draft.origin, key)
    return _accepted(row, replayed=not created)
