"""The messages pages' views (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import abort, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from connectors.i18n import N_

from .. import attachments
from .. import message_bodies as bodies
from .. import message_changes as mc
from .. import message_queries as mq
from ..errors import Conflict, Invalid, NotFound, QueueUnavailable
from ..extensions import db
from ..jobs import bodies as body_jobs
from ..jobs import message_changes as change_jobs
from ..mailboxes.jobs import job_body
from ..models import Account, Folder
from . import bp

ROLE_LABELS = {
    "inbox": N_("Inbox"),
    "sent": N_("Sent"),
    "drafts": N_("Drafts"),
    "spam": N_("Spam"),
    "trash": N_("Trash"),
    "flagged": N_("Flagged"),
}
#: The order of the unified views in the left column.
NAV_ORDER = ("inbox", "sent", "drafts", "spam", "trash", "flagged")


def _layout(**extra) -> dict:
    return {
        "sidebar": mq.sidebar(current_user),
        "role_labels": ROLE_LABELS,
        "nav_order": NAV_ORDER,
        "notices": [(n, mc.describe(n)) for n in mc.notices(current_user)],
        **extra,
    }


@bp.route("/")
@login_required
def index():
    """A unified view (``role``, default inbox) or one folder (``folder``), as messages or threads."""
    listing = _Listing(threads_mode=request.args.get("view") == "threads")
    try:
        _fill_listing(listing, request.args)
    except Invalid as exc:
        # The search box is named as the page names it ("Search"), not by the URL's key "q".
        listing.error = "; ".join(
            f"{gettext('Search') if k == 'q' else k}: {v}" for k, v in exc.fields.items()
        )
    folder, view = listing.folder, listing.view
    title = (
        f"{folder.display_name} · {folder.account.email}"
        if folder is not None
        else ROLE_LABELS.get(view, view)
    )
    return render_template(
        "messages/index.html",
        **_layout(
            title=title,
            folder=folder,
            view=view,
            q=listing.q,
            page=listing.page,
            threads_mode=listing.threads_mode,
            error=listing.error,
            pending=mc.pending_ids([m.id for m in listing.page.items]) if not listing.threads_mode else set(),
            move_targets=_move_targets(listing.folder, view),
            **_listing_links(listing, request.args),
        ),
    ), (422 if listing.error else 200)


def _move_targets(folder: Folder | None, view: str) -> list[dict]:
    """Where the listed messages may go: a unified view leaves out the folders of its own role (the
    messages are there already), and a mailbox with no folder left is left out, so the page can
    tell when there is nowhere to move to instead of offering an empty list."""
    out = []
    for box in mq.move_targets(current_user, folder):
        folders = [f for f in box["folders"] if folder is not None or f.role != view]
        if folders:
            out.append({**box, "folders": folders})
    return out


@dataclass
class _Listing:
    """What the messages page lists; filled step by step, so a refused parameter keeps the rest."""

    threads_mode: bool
    folder: Folder | None = None
    view: str = "inbox"
    q: str = ""
    page: mq.Page = field(default_factory=mq.Page)
    error: str | None = None


def _fill_listing(listing: _Listing, args) -> None:
    listing.q = mq.clean_query(args.get("q"))
    limit = mq.parse_limit(args.get("limit"))
    if args.get("folder"):
        try:
            listing.folder = mq.get_folder(mq.own_account_ids(current_user), args.get("folder"))
        except NotFound:
            abort(404)
        listing.threads_mode = False
        query = mq.folder_query(listing.folder, listing.q)
        listing.page = mq.paginate(query, limit, args.get("cursor"), args.get("after"))
        return
    listing.view = mq.clean_view(args.get("role", "inbox"))
    if listing.threads_mode:
        listing.page = mq.threads(current_user, listing.view, listing.q, limit, args.get("cursor"))
    else:
        query = mq.view_query(current_user, listing.view, listing.q)
        listing.page = mq.paginate(query, limit, args.get("cursor"), args.get("after"))


def _listing_links(listing: _Listing, args) -> dict:
    """Older/newer/first page links and the switches (clear the search, messages or threads)."""
    page, threads_mode = listing.page, listing.threads_mode
    here = {"folder": listing.folder.id} if listing.folder is not None else {"role": listing.view}
    if threads_mode:
        here["view"] = "threads"
    if listing.q:
        here["q"] = listing.q
    paged = args.get("cursor") or args.get("after")
    return {
        "older_url": url_for("messages.index", cursor=page.next_cursor, **here) if page.next_cursor else None,
        "newer_url": url_for("messages.index", after=page.prev_cursor, **here)
        if page.prev_cursor and not threads_mode
        else None,
        "first_url": url_for("messages.index", **here)
        if paged and (threads_mode or not page.prev_cursor)
        else None,
        "clear_url": url_for("messages.index", **{k: v for k, v in here.items() if k != "q"}),
        "messages_url": url_for("messages.index", **{k: v for k, v in here.items() if k != "view"}),
        "threads_url": url_for("messages.index", **{**here, "view": "threads"}),
    }


@bp.route("/<int:message_id>")
@login_required
def show(message_id: int):
    """A message with its body; a body not fetched yet is fetched by a job the page waits for."""
    try:
        message = mq.get_message(current_user, message_id)
    except NotFound:
        abort(404)
    if bodies.is_gone(message):
        info = _message_info(message)
        return render_template("messages/message.html", **_layout(m=message, info=info, gone=True)), 404
    _mark_read(message)
    info = _message_info(message)
    raw = bodies.cached_raw(message)
    if raw is None:
        job = job_body(body_jobs.start(message, current_user))
        return render_template("messages/message.html", **_layout(m=message, info=info, job=job))
    return render_template(
        "messages/message.html",
        **_layout(m=message, info=info, body=bodies.parse(raw), headers=bodies.headers(raw)),
    )


def _message_info(message) -> dict:
    info = mq.message_as_dict(message)
    account = db.session.get(Account, message.account_id)
    info["mailbox"] = account.description or account.email
    if info["folder_role"] in ROLE_LABELS:  # "Inbox" as the sidebar says it, not the server's INBOX
        info["folder"] = gettext(ROLE_LABELS[info["folder_role"]])
    info["pending"] = bool(mc.pending_ids([message.id]))
    info["move_targets"] = mq.move_targets(current_user, db.session.get(Folder, message.folder_id))
    return info


def _mark_read(message) -> None:
    """Opening a message marks it read, here and (by a job) on the server; the page never waits for it."""
    account = db.session.get(Account, message.account_id)
    if message.seen or not account.active or account.service_removed:
        return  # a mailbox that no longer syncs: nothing to write back to
    try:
        change_jobs.start(current_user, [message], "read", {})
    except (QueueUnavailable, Conflict):
        db.session.rollback()  # no queue, or the message is being moved: it stays unread for now


@bp.route("/<int:message_id>/attachments/<int:number>")
@login_required
def attachment(message_id: int, number: int):
    """Download an attachment; not cached yet: the body is fetched and the message page waits for it."""
    try:
        message = mq.get_message(current_user, message_id)
    except NotFound:
        abort(404)
    if bodies.is_gone(message):
        abort(404)
    raw = bodies.cached_raw(message)
    if raw is None:
        body_jobs.start(message, current_user)
        return redirect(url_for("messages.show", message_id=message.id))
    found = bodies.attachment(raw, number)
    if found is None:
        abort(404)
    return attachments.download(*found)


@bp.route("/thread")
@login_required
def thread():
    key = request.args.get("key", "")
    try:
        messages = mq.thread_messages(current_user, key)
    except NotFound:
        abort(404)
    return render_template("messages/thread.html", **_layout(messages=messages, thread_key=key))


@bp.route("/history")
@login_required
def history():
    """Every message exchanged with an address, each Message-ID once with the mailboxes it came through."""
    error, page, address = None, mq.Page(), request.args.get("address", "")
    try:
        address = mq.clean_address(address)
        page = mq.history(
            current_user, address, mq.parse_limit(request.args.get("limit")), request.args.get("cursor")
        )
    except Invalid as exc:
        # The address field's error alone (the page's one field); the URL's limit/cursor named as in the URL.
        error = "; ".join(v if k == "address" else f"{k}: {v}" for k, v in exc.fields.items())
    older_url = (
        url_for("messages.history", address=address, cursor=page.next_cursor) if page.next_cursor else None
    )
    return render_template(
        "messages/history.html", **_layout(address=address, page=page, error=error, older_url=older_url)
    ), (422 if error else 200)
