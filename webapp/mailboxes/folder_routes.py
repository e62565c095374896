"""The mailbox's folder page: which folders to sync, which folder has each role, refresh from the server.

Registered on the ``mailboxes`` blueprint.  The form posts every choice at
once (a "sync" checkbox per folder, one select per role) and the rules of
webapp.folders apply, as for the API.  "Refresh folder list" enqueues the
listing job; the page polls it and then swaps in the re-rendered form.
"""

from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError

from .. import folders as folder_rules
from ..errors import DomainError
from ..extensions import db
from ..forms import ActionForm
from ..jobs import folders as folder_jobs
from ..models import Account, Folder
from . import bp
from .common import _own_account
from .jobs import accepted


def _context(account: Account, errors: dict[str, str] | None = None, chosen: dict | None = None) -> dict:
    rows = folder_rules.ordered(account)
    current = {row.role: row.id for row in rows if row.role}
    return {
        "account": account,
        "folders": rows,
        "form": ActionForm(),
        "errors": errors or {},
        "roles": [(role, folder_rules.ROLE_LABELS[role]) for role in folder_rules.ROLES],
        "chosen_roles": chosen if chosen is not None else current,
        "selectable": folder_rules.selectable,
        "depth": folder_rules.depth,
        "leaf_name": folder_rules.leaf_name,
    }


@bp.route("/<int:account_id>/folders", methods=["GET", "POST"])
@login_required
def folders(account_id: int):
    account = _own_account(account_id)
    if request.method == "POST":
        if not ActionForm().validate_on_submit():
            abort(400)
        errors, chosen = _save(account)
        if not errors:
            flash(_("Folder settings saved."), "success")
            return redirect(url_for("mailboxes.folders", account_id=account.id))
        return render_template("mailboxes/folders.html", **_context(account, errors, chosen)), 422
    return render_template("mailboxes/folders.html", **_context(account))


def _save(account: Account) -> tuple[dict[str, str], dict]:
    """Validate and apply the posted form; answers (field errors, the role choices as posted)."""
    rows = {row.id: row for row in Folder.query.filter_by(account_id=account.id)}
    errors: dict[str, str] = {}
    wanted_sync: set[int] = set()
    for value in request.form.getlist("sync"):
        row = rows.get(int(value)) if value.isascii() and value.isdigit() else None
        if row is None:
            errors["sync"] = _("Unknown folder.")
        elif not folder_rules.selectable(row) or not row.exists_on_server:
            errors["sync"] = _('"%(display_name)s" cannot be synced: it cannot be opened on the server.', display_name=row.display_name)
        else:
            wanted_sync.add(row.id)
    roles: dict[str, Folder | None] = {}
    chosen: dict[str, int] = {}
    used: dict[int, str] = {}
    for role in folder_rules.ROLES:
        field = f"role_{role}"
        value = request.form.get(field, "")
        if value == "":
            roles[role] = None
            continue
        row = rows.get(int(value)) if value.isascii() and value.isdigit() else None
        if row is None:
            errors[field] = _("Unknown folder.")
            continue
        chosen[role] = row.id
        if not folder_rules.selectable(row) or not row.exists_on_server:
            errors[field] = _('"%(display_name)s" cannot be opened on the server, so it cannot hold a role.', display_name=row.display_name)
        elif row.id in used:
            errors[field] = (
                _('"%(display_name)s" is already the %(role)s folder.', display_name=row.display_name, role=_(folder_rules.ROLE_LABELS[used[row.id]]))
            )
        else:
            used[row.id] = role
            roles[role] = row
    if errors:
        return errors, chosen
    try:
        for row in rows.values():
            # Folders that cannot be synced show a disabled box, which browsers do not post: leave them be.
            if folder_rules.selectable(row) and row.exists_on_server:
                row.sync = row.id in wanted_sync
        folder_rules.set_roles(account, roles)
        db.session.commit()
    except IntegrityError:
        # Another change gave a role to a different folder at the same instant.
        db.session.rollback()
        return {"form": "The folders were changed at the same time elsewhere; check and save again."}, chosen
    return {}, chosen


@bp.route("/<int:account_id>/folders/<int:folder_id>/remove", methods=["POST"])
@login_required
def remove_folder(account_id: int, folder_id: int):
    """Drop a folder deleted on the server, with its messages (the folder form's CSRF token)."""
    account = _own_account(account_id)
    folder = db.session.get(Folder, folder_id)
    if folder is None or folder.account_id != account.id:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    name = folder.display_name
    try:
        folder_rules.remove_folder(folder)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(_('"%(name)s" and its messages were removed from Mailroom.', name=name), "success")
    return redirect(url_for("mailboxes.folders", account_id=account.id))


@bp.route("/<int:account_id>/folders/form")
@login_required
def folders_form(account_id: int):
    """The form's inside, re-rendered for the page after a refresh job finished."""
    return render_template("mailboxes/_folders_form.html", **_context(_own_account(account_id)))


@bp.route("/<int:account_id>/folders/refresh", methods=["POST"])
@login_required
def refresh_folders(account_id: int):
    """Enqueue the folder listing (CSRF token in the X-CSRFToken header); the page polls the job."""
    account = _own_account(account_id)
    try:
        job = folder_jobs.start(account, current_user)
    except DomainError as exc:
        return jsonify(exc.as_dict()), exc.status
    return accepted(job)
