"""Administration › Users: list, create, disable (after a confirmation page), enable,
reset password, make or unmake administrator.

Every action is a POST carrying the CSRF token and goes through :mod:`webapp.users`, the
same functions the API and ``mailroom users`` call, so the last active administrator is
kept whichever door is used.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from .. import passwords, users
from ..auth.decorators import admin_required
from ..errors import DomainError, NotFound
from ..extensions import db
from ..forms import ActionForm, apply_errors
from . import bp
from .users_forms import NewUserForm, ResetPasswordForm


def _user_or_404(user_id: int):
    try:
        return users.get_user(user_id)
    except NotFound:
        abort(404)


def _refused(exc: DomainError) -> None:
    db.session.rollback()
    flash(next(iter(exc.fields.values()), exc.message), "error")


@bp.route("/users", endpoint="users")
@admin_required
def users_list():
    return render_template(
        "admin/users.html",
        rows=users.list_users(),
        action_form=ActionForm(),
        me=current_user.id,
        last_admin=users.last_active_admin_id(),
    )


@bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def user_new():
    form = NewUserForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = users.create_user(
                form.username.data or "",
                form.password.data or "",
                form.admin.data,
                confirm=form.confirm.data or "",
            )
        except DomainError as exc:
            db.session.rollback()
            apply_errors(form, exc.fields)
            status = exc.status
        else:
            flash(_("User %(name)s created.", name=user.username), "success")
            return redirect(url_for("admin.users"))
    return render_template("admin/users_new.html", form=form, min_length=passwords.min_length()), status


@bp.route("/users/<int:user_id>/password", methods=["GET", "POST"])
@admin_required
def user_password(user_id: int):
    user = _user_or_404(user_id)
    if user.id == current_user.id:  # one's own: with the current password, without being signed out
        return redirect(url_for("profile.password"))
    form = ResetPasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            ended = users.reset_password(
                user, form.password.data or "", form.confirm.data or "", actor=current_user
            )
        except DomainError as exc:
            db.session.rollback()
            apply_errors(form, exc.fields)
            status = exc.status
        else:
            flash(
                _(
                    "Password of %(name)s changed; %(count)d signed-in session(s) ended.",
                    name=user.username,
                    count=ended,
                ),
                "success",
            )
            return redirect(url_for("admin.users"))
    return render_template(
        "admin/users_password.html", form=form, user=user, min_length=passwords.min_length()
    ), status


@bp.route("/users/<int:user_id>/disable", methods=["GET", "POST"])
@admin_required
def user_disable(user_id: int):
    """GET: what disabling will stop, and the button; POST: disable."""
    user = _user_or_404(user_id)
    form = ActionForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            users.disable_user(user, actor=current_user)
        except DomainError as exc:
            _refused(exc)
        else:
            flash(
                _(
                    "%(name)s is disabled: signed out everywhere, API tokens refused, mailboxes not synced.",
                    name=user.username,
                ),
                "success",
            )
        return redirect(url_for("admin.users"))
    return render_template(
        "admin/users_disable.html", user=user, impact=users.disable_impact(user), form=form
    )


@bp.route("/users/<int:user_id>/enable", methods=["POST"])
@admin_required
def user_enable(user_id: int):
    user = _user_or_404(user_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    users.enable_user(user, actor=current_user)
    flash(_("%(name)s is enabled again.", name=user.username), "success")
    return redirect(url_for("admin.users"))


@bp.route("/users/<int:user_id>/role", methods=["POST"])
@admin_required
def user_role(user_id: int):
    """``admin=1`` makes an administrator, ``admin=0`` a user."""
    user = _user_or_404(user_id)
    if not ActionForm().validate_on_submit() or request.form.get("admin") not in ("0", "1"):
        abort(400)
    make_admin = request.form["admin"] == "1"
    try:
        users.set_admin(user, make_admin, actor=current_user)
    except DomainError as exc:
        _refused(exc)
        return redirect(url_for("admin.users"))
    if make_admin:
        flash(_("%(name)s is now an administrator.", name=user.username), "success")
        return redirect(url_for("admin.users"))
    flash(_("%(name)s is no longer an administrator.", name=user.username), "success")
    # Having made oneself a user, the administration pages are closed: go home.
    return redirect(url_for("auth.home") if user.id == current_user.id else url_for("admin.users"))
