"""Reply, Reply all and Forward on the compose page (the rules: webapp.replies).

``GET /compose/reply/<message_id>`` (``reply-all``, ``forward``) shows the compose form filled
from the message; posting it sends (or schedules) through the same path as Compose, with
``In-Reply-To``/``References`` taken from the original and, on Forward, the original's ticked
attachments carried from its stored bytes.  A message whose body is not in Mailroom yet is
fetched by the body job first: the page says so, waits for the job (compose.js) and reloads.
"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import message_bodies as bodies
from .. import message_queries as mq
from .. import replies, send_queue, sending
from ..errors import Conflict, Forbidden, Invalid, NotFound, QueueUnavailable
from ..extensions import db
from ..jobs import bodies as body_jobs
from ..mailboxes.jobs import job_body
from . import bp
from .common import form_fields, render_form


def _titles() -> dict[str, str]:
    return {"reply": _("Reply"), "reply_all": _("Reply all"), "forward": _("Forward")}


@bp.route("/reply/<int:message_id>", methods=["GET", "POST"])
@login_required
def reply(message_id: int):
    """Answer the sender (Reply-To when given)."""
    return _page(message_id, "reply")


@bp.route("/reply-all/<int:message_id>", methods=["GET", "POST"])
@login_required
def reply_all(message_id: int):
    """Answer the sender and every other recipient except oneself."""
    return _page(message_id, "reply_all")


@bp.route("/forward/<int:message_id>", methods=["GET", "POST"])
@login_required
def forward(message_id: int):
    """Send the message on, with its attachments."""
    return _page(message_id, "forward")


def _page(message_id: int, mode: str):
    try:
        message = mq.get_message(current_user, message_id)
    except NotFound:
        abort(404)
    if bodies.is_gone(message):
        flash(bodies.GONE_TEXT, "error")
        return redirect(url_for("messages.show", message_id=message.id))
    raw = bodies.cached_raw(message)
    if raw is None:  # the original is needed for the quote, Reply-To and attachments: fetch it first
        pending = job_body(body_jobs.start(message, current_user))
        context = {"title": _titles()[mode], "mode": mode, "message": message}
        return render_form("compose/compose.html", {}, {}, pending=pending, reply=context)
    original = replies.original_of(message, raw)
    if request.method == "GET":
        draft = replies.build(current_user, mode, original)
        values = {
            "from": draft.sender["email"] if draft.sender else None,
            "to": ", ".join(draft.to),
            "cc": ", ".join(draft.cc),
            "subject": draft.subject,
            "body": draft.text,
        }
        numbers = {a["number"] for a in draft.attachments}
        return render_form("compose/compose.html", values, {}, reply=_context(draft, message, numbers))
    return _submit(message, mode, original, raw)


def _context(draft: replies.Draft, message, selected: set[int]) -> dict:
    """What compose.html needs of a reply: its title, action, the draft variants, signatures."""
    senders = sending.allowed_senders(current_user)
    return {
        "title": _titles()[draft.mode],
        "mode": draft.mode,
        "message": message,
        "action": url_for(f"compose.{draft.mode}", message_id=message.id),
        "draft_text": draft.text,
        "draft_html": draft.html_variant,
        "attachments": draft.attachments,
        "selected": selected,
        "signatures": {s["email"]: replies.signature_block(current_user, s) for s in senders},
        # The note "Your signature is in the message" only when it is (the script follows From).
        "has_signature": bool(draft.signature.get("text")),
        # Where the quote starts, so the script can put a signature before it when From changes.
        "quote_start": {kind: (draft.quote.get(kind) or "").split("\n", 1)[0] for kind in ("text", "html")},
    }


def _chosen_numbers(draft: replies.Draft) -> set[int]:
    known = {a["number"] for a in draft.attachments}
    chosen = {int(v) for v in request.form.getlist("forward_attachment") if v.isascii() and v.isdigit()}
    return chosen & known


def _submit(message, mode: str, original: replies.Original, raw: bytes):
    later = request.form.get("action") == "later"
    draft = replies.build(current_user, mode, original, from_addr=request.form.get("from") or None)
    numbers = _chosen_numbers(draft)
    try:
        fields = form_fields(request.form, request.files, later=later)
        fields.update(replies.thread_fields(draft))
        carried = replies.carried_attachments(raw, sorted(numbers))
        if carried:
            fields["attachments"] = carried + fields.get("attachments", [])
        row, _created = send_queue.submit(current_user, fields, draft.origin)
    except (Invalid, Forbidden, Conflict, QueueUnavailable) as exc:
        db.session.rollback()
        errors = dict(exc.fields) or {"form": exc.message}
        context = _context(draft, message, numbers)
        return render_form(
            "compose/compose.html", request.form, errors, exc.status, error=exc.message, reply=context
        )
    return redirect(url_for("compose.status", outgoing_id=row.id))
