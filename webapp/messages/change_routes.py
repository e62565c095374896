"""The messages pages' changes: read/unread, flag/unflag, Move to Trash, Move to folder, notices.

``POST /messages/actions`` takes ``{"ids", "action", "folder"}`` as JSON from the page's script
(with the CSRF header), changes the rows at once and answers 202 with the write-back jobs the
script polls (``mailboxes.job_status``).  A failed write-back leaves a notice on the messages
pages until it is dismissed.
"""

from __future__ import annotations

from flask import flash, jsonify, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import message_changes as mc
from ..errors import Malformed
from ..jobs import message_changes as change_jobs
from ..mailboxes.jobs import job_body
from . import bp


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Malformed(_("The request body must be a JSON object."))
    return body


@bp.post("/actions")
@login_required
def actions():
    """Apply an action to the selected messages now; the server follows through jobs."""
    body = _body()
    unknown = set(body) - {"ids", "action", "folder"}
    if unknown:
        return jsonify(
            {"error": _("Unknown field."), "fields": {k: _("unknown field") for k in unknown}}
        ), 422
    ids = mc.clean_ids(body.get("ids"))
    action = mc.clean_action(body.get("action"))
    messages = mc.own_messages(current_user, ids)
    targets = mc.targets_for(messages, action, body.get("folder"))
    started = change_jobs.start(current_user, messages, action, targets)
    pending = mc.pending_ids(ids)
    states = [
        {
            "id": m.id,
            "seen": m.seen,
            "flagged": m.flagged,
            "folder_id": m.folder_id,
            "pending": m.id in pending,
        }
        for m in mc.rows_of(ids)
    ]
    jobs = [{**job_body(s["job"]), "action": s["action"], "messages": s["messages"]} for s in started]
    return jsonify({"jobs": jobs, "messages": states}), 202


@bp.post("/notices/<int:change_id>/dismiss")
@login_required
def dismiss_notice(change_id: int):
    mc.dismiss(current_user, change_id)
    return redirect(_back())


@bp.post("/notices/dismiss")
@login_required
def dismiss_notices():
    count = mc.dismiss(current_user)
    if count:
        flash(_("Notices dismissed."), "success")
    return redirect(_back())


def _back() -> str:
    """Back to the messages page the form was on (only a path of this site), else the inbox."""
    target = request.form.get("next", "")
    if target.startswith("/messages") and not target.startswith("//"):
        return target
    return url_for("messages.index")
