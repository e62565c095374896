"""Administration > Locked sign-ins: accounts locked after too many failed sign-ins, with Unlock."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from .. import throttle
from ..auth.decorators import admin_required
from ..errors import DomainError
from ..forms import ActionForm
from ..models import User
from . import bp


@bp.route("/locked-sign-ins")
@admin_required
def locked_sign_ins():
    try:
        locks = throttle.locked_accounts()
    except DomainError as exc:
        flash(exc.message, "error")
        locks = []
    names = {lock.username for lock in locks}
    known = {u.username for u in User.query.filter(User.username.in_(names))} if names else set()
    return render_template("admin/locked_sign_ins.html", locks=locks, known=known, action_form=ActionForm())


@bp.route("/locked-sign-ins/unlock", methods=["POST"])
@admin_required
def unlock_sign_in():
    if not ActionForm().validate_on_submit():
        abort(400)
    username = request.form.get("username", "")
    try:
        was_locked = throttle.unlock(username)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(f"Unlocked {username}." if was_locked else f"{username} was not locked.", "success")
    return redirect(url_for("admin.locked_sign_ins"))
