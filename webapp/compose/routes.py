"""The compose page's views (see the package docstring)."""

from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import attachments, mailbox_usability, send_queue, sending
from ..errors import Conflict, DomainError, Forbidden, Invalid, NotFound, QueueUnavailable
from ..extensions import db
from ..input_guard import form_page
from ..jobs import send as send_job
from ..look import STATE_WORDS, state_icon
from ..models import Account
from . import bp
from .common import form_fields, render_form, zone_name

FINAL_STATES = ("sent", "failed", "cancelled", "held")
#: The words of the state badges (each state has its own colour in mailroom.css, .badge.state-*).
#: Their words are look.STATE_WORDS' (context "message state": one message, not a folder view).
STATE_LABELS = {
    state: STATE_WORDS[state]
    for state in ("scheduled", "queued", "sending", "sent", "failed", "cancelled", "held")
}


@bp.app_template_filter("outgoing_state_label")
def outgoing_state_label(state: str) -> str:
    return str(STATE_LABELS[state]) if state in STATE_LABELS else state


@bp.app_template_global("held_note")
def held_note() -> str:
    """Why a held message waits and what its owner may do (webapp/send_holds.py)."""
    return _("Held while this account was disabled: its time has passed. Send it now, edit it or cancel it.")


@bp.app_template_global("waiting_from")
def waiting_from(account_id: int) -> list:
    """The signed-in user's scheduled messages from a mailbox, for the removed-service notification."""
    rows = mailbox_usability.waiting_messages(db.session.get(Account, account_id)) if account_id else []
    return [r for r in rows if r.state == "scheduled" and r.user_id == current_user.id]


def _stranded(row) -> str | None:
    """Why the mailbox a message was to go from cannot send any more, if it cannot."""
    account = db.session.get(Account, row.account_id) if row.account_id else None
    return mailbox_usability.send_blocker(account) if account is not None else None


def _own(outgoing_id: int):
    try:
        return sending.get_outgoing(current_user, outgoing_id)
    except NotFound:
        abort(404)


@bp.route("/", methods=["GET", "POST"])
@login_required
@form_page
def compose():
    """Write a message; "Send" sends now, "Send later" schedules it for the chosen time."""
    if request.method == "GET":
        return render_form("compose/compose.html", {}, {})
    later = request.form.get("action") == "later"
    try:
        fields = form_fields(request.form, request.files, later=later)
        row, _ = send_queue.submit(current_user, fields, "compose")
    except (Invalid, Forbidden, Conflict, QueueUnavailable) as exc:
        db.session.rollback()
        errors = dict(exc.fields) or {"form": exc.message}
        return render_form("compose/compose.html", request.form, errors, exc.status, error=exc.message)
    return redirect(url_for("compose.status", outgoing_id=row.id))


@bp.get("/outgoing")
@login_required
def outgoing():
    """Everything the user sent, is sending, scheduled or failed to send, newest first."""
    state = request.args.get("state") or None
    try:
        rows = sending.list_outgoing(current_user, state, 200)
    except Invalid:
        abort(400)
    return render_template("compose/outgoing.html", rows=rows, state=state, title="Outgoing")


@bp.get("/scheduled")
@login_required
def scheduled():
    """The special "Scheduled" folder: messages waiting for their time (or held), with Cancel and Edit."""
    rows = sending.list_outgoing(current_user, "scheduled,held", 500)
    rows.sort(key=lambda r: r.send_at or r.created_at)
    return render_template("compose/outgoing.html", rows=rows, state="scheduled", title="Scheduled")


@bp.get("/outgoing/<int:outgoing_id>")
@login_required
def status(outgoing_id: int):
    row = _own(outgoing_id)
    return render_template(
        "compose/status.html",
        row=row,
        info=sending.outgoing_as_dict(row, full=True),
        final=FINAL_STATES,
        labels={state: str(word) for state, word in STATE_LABELS.items()},
        icons={state: state_icon(state) for state in STATE_LABELS},
        stranded=_stranded(row) if row.state == "scheduled" else None,
        zone=zone_name(),
    )


@bp.get("/outgoing/<int:outgoing_id>/state")
@login_required
def state(outgoing_id: int):
    """The message's state as JSON, polled by the status page."""
    return jsonify(sending.outgoing_as_dict(_own(outgoing_id)))


@bp.post("/outgoing/<int:outgoing_id>/cancel")
@login_required
def cancel(outgoing_id: int):
    row = _own(outgoing_id)
    try:
        sending.cancel(row)
        flash(_('"%(subject)s" will not be sent.', subject=row.subject or "(no subject)"), "success")
    except Conflict as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for("compose.scheduled"))


@bp.route("/outgoing/<int:outgoing_id>/attachments/<int:attachment_id>")
@login_required
def attachment(outgoing_id: int, attachment_id: int):
    """Download an attachment of one's own outgoing message (another user's: 404)."""
    row = _own(outgoing_id)
    found = next((a for a in row.attachments if a.id == attachment_id), None)
    if found is None:
        abort(404)
    return attachments.download(found.filename, found.content_type, found.data)


@bp.route("/outgoing/<int:outgoing_id>/edit", methods=["GET", "POST"])
@login_required
@form_page
def edit(outgoing_id: int):
    """Edit a scheduled message; saving re-schedules it (attachments are kept unless new ones are chosen)."""
    row = _own(outgoing_id)
    if row.state not in ("scheduled", "held"):
        flash(_("This message is %(state)s; it can no longer be edited.", state=row.state), "error")
        return redirect(url_for("compose.status", outgoing_id=row.id))
    if request.method == "GET":
        fields = sending.as_fields(row)
        values = {
            "from": row.from_addr,
            "to": ", ".join(fields["to"]),
            "cc": ", ".join(fields["cc"]),
            "bcc": ", ".join(fields["bcc"]),
            "subject": row.subject,
            "body": row.html_body if row.html_body and not row.text_body else (row.text_body or ""),
            "as_html": bool(row.html_body and not row.text_body),
            "send_at": fields["send_at"],
        }
        return render_form("compose/compose.html", values, {}, editing=row, stranded=_stranded(row))
    try:
        later = request.form.get("action") != "send"
        fields = form_fields(request.form, request.files, later=later)
        if not later:
            fields["send_at"] = None  # "Send now"
        if "html" in fields:
            fields["text"] = None
        else:
            fields["html"] = None
        send_job.reschedule(row, fields)
    except DomainError as exc:
        db.session.rollback()
        errors = dict(exc.fields) or {"form": exc.message}
        return render_form(
            "compose/compose.html",
            request.form,
            errors,
            exc.status,
            error=exc.message,
            editing=row,
            stranded=_stranded(row),
        )
    flash(_("The scheduled message was saved."), "success")
    return redirect(url_for("compose.scheduled"))
