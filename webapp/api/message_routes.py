"""API routes for browsing synced messages (registered on the /api/v1 blueprint).

Lists answer ``{"messages"|"threads"|"history": [...], "next_cursor"}``; a
message with its body answers 200 when the body is cached, else 202 with the
fetch job (``{"job_id", "status_url", "message", "body": null}``); ask again
when the job has finished.  Another user's message, folder or thread is a 404.
"""

from __future__ import annotations

from flask import g, jsonify, request, url_for

from .. import message_bodies as bodies
from .. import message_changes as mc
from .. import message_queries as mq
from ..errors import Invalid, NotFound
from ..jobs import bodies as body_jobs
from ..jobs import message_changes as change_jobs
from . import bp
from .common import _json, token_required
from .jobs import accepted, job_body


def _page_args() -> tuple[int, str | None, str]:
    limit = mq.parse_limit(request.args.get("limit"))
    cursor = request.args.get("cursor") or None
    q = mq.clean_query(request.args.get("q"))
    return limit, cursor, q


@bp.get("/accounts/<int:account_id>/messages")
@token_required
def account_messages(account_id: int):
    """One folder of a mailbox (or, without ``folder``, all of it), newest first.

    Administrators may read any mailbox here.
    """
    account = mq.account_scope(g.api_user, account_id)
    limit, cursor, q = _page_args()
    if request.args.get("folder"):
        query = mq.folder_query(mq.get_folder([account.id], request.args.get("folder")), q)
    else:
        query = mq.account_query(account, q)
    page = mq.paginate(query, limit, cursor)
    return jsonify({"messages": mq.messages_as_dicts(page.items), "next_cursor": page.next_cursor})


@bp.get("/accounts/<int:account_id>/messages/<int:message_id>")
@token_required
def account_message(account_id: int, message_id: int):
    account = mq.account_scope(g.api_user, account_id)
    return _message_response(mq.get_message(g.api_user, message_id, account=account))


@bp.get("/messages")
@token_required
def unified_messages():
    """A unified view of one's own mailboxes: ``role`` = inbox|drafts|sent|spam|trash|flagged."""
    view = mq.clean_view(request.args.get("role", "inbox"))
    limit, cursor, q = _page_args()
    page = mq.paginate(mq.view_query(g.api_user, view, q), limit, cursor)
    return jsonify({"messages": mq.messages_as_dicts(page.items), "next_cursor": page.next_cursor})


@bp.get("/messages/<int:message_id>")
@token_required
def get_message(message_id: int):
    return _message_response(mq.get_message(g.api_user, message_id))


def _message_response(message):
    if bodies.is_gone(message):
        raise NotFound(bodies.GONE_TEXT)
    body = mq.message_as_dict(message)
    raw = bodies.cached_raw(message)
    if raw is not None:
        body["body"] = bodies.body_as_dict(raw)
        for item in body["body"]["attachments"]:
            item["download_url"] = url_for(
                "api.message_attachment", message_id=message.id, number=item["number"]
            )
        return jsonify(body)
    body["body"] = None
    return accepted(body_jobs.start(message, g.api_user), body)


@bp.get("/threads")
@token_required
def list_threads():
    view = mq.clean_view(request.args.get("role", "inbox"))
    limit, cursor, q = _page_args()
    page = mq.threads(g.api_user, view, q, limit, cursor)
    return jsonify({"threads": [mq.thread_as_dict(t) for t in page.items], "next_cursor": page.next_cursor})


@bp.get("/threads/<path:thread_key>")
@token_required
def get_thread(thread_key: str):
    messages = mq.thread_messages(g.api_user, thread_key)
    return jsonify({"thread_key": thread_key, "messages": mq.messages_as_dicts(messages)})


@bp.get("/history")
@token_required
def correspondent_history():
    """Every message exchanged with ``address``, one entry per Message-ID with its ``copies``."""
    address = mq.clean_address(request.args.get("address"))
    limit = mq.parse_limit(request.args.get("limit"))
    page = mq.history(g.api_user, address, limit, request.args.get("cursor") or None)
    return jsonify(
        {
            "address": address,
            "history": [mq.history_entry_as_dict(e) for e in page.items],
            "next_cursor": page.next_cursor,
        }
    )


# -- changes written back to the server ---------------------------------------------------------

#: PATCH's fields → (action when true, action when false).
_PATCH_FIELDS = {"seen": ("read", "unread"), "flagged": ("flag", "unflag")}


def _changed(started: list[dict], ids: list[int]) -> tuple:
    """202 ``{"jobs": [{job_id, status_url, action, messages}], "messages": [...]}``: the rows as
    they show now (``pending`` while the server has not confirmed)."""
    pending = mc.pending_ids(ids)
    rows = []
    for m in mc.rows_of(ids):
        row = mq.message_as_dict(m)
        row["pending"] = m.id in pending
        rows.append(row)
    jobs = [{**job_body(s["job"]), "action": s["action"], "messages": s["messages"]} for s in started]
    return jsonify({"jobs": jobs, "messages": rows}), 202


@bp.patch("/messages/<int:message_id>")
@token_required
def patch_message(message_id: int):
    """Mark a message read or unread, flagged or not: ``{"seen": bool, "flagged": bool}``.

    The row changes at once; the server follows by a job (202 with the jobs; a job that fails
    puts the message back and its status says why).
    """
    body = _json()
    errors = {k: "unknown field" for k in body if k not in _PATCH_FIELDS}
    errors.update(
        {k: "must be true or false" for k in _PATCH_FIELDS if k in body and not isinstance(body[k], bool)}
    )
    if errors or not body:
        raise Invalid(errors or {"seen": "give seen and/or flagged"})
    message = mq.get_message(g.api_user, message_id)
    started = []
    for key, (on, off) in _PATCH_FIELDS.items():
        if key in body:
            started += change_jobs.start(g.api_user, [message], on if body[key] else off, {})
    return _changed(started, [message_id])


@bp.post("/messages/actions")
@token_required
def message_actions():
    """Act on several messages: ``{"ids": [..], "action": read|unread|flag|unflag|trash|move, "folder": id}``.

    One job per folder (one command with a UID set); ``folder`` is required for ``move``;
    ``trash`` moves to each mailbox's folder mapped as Trash (none mapped: 422 naming action).
    Another user's id is a 404.
    """
    body = _json()
    unknown = {k: "unknown field" for k in body if k not in ("ids", "action", "folder")}
    if unknown:
        raise Invalid(unknown)
    ids = mc.clean_ids(body.get("ids"))
    action = mc.clean_action(body.get("action"))
    messages = mc.own_messages(g.api_user, ids)
    targets = mc.targets_for(messages, action, body.get("folder"))
    started = change_jobs.start(g.api_user, messages, action, targets)
    return _changed(started, ids)
