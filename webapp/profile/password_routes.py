"""My profile › Password: one's own password, with the current one; other browsers are signed out."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required

from .. import passwords, sessions, users
from ..errors import DomainError
from ..extensions import db
from ..forms import apply_errors
from . import bp
from .password_forms import PasswordForm


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password():
    form = PasswordForm()
    status = 200
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            ended = users.change_own_password(
                user, form.current_password.data or "", form.new_password.data or "", form.confirm.data or ""
            )
        except DomainError as exc:
            db.session.rollback()
            apply_errors(form, exc.fields)
            status = exc.status
        else:
            sessions.start(user)  # this browser stays signed in, under a new session id
            others = max(0, ended - 1)
            flash(
                _("Password changed.")
                + " "
                + ngettext(
                    "%(num)d other signed-in browser was signed out.",
                    "%(num)d other signed-in browsers were signed out.",
                    others,
                ),
                "success",
            )
            return redirect(url_for("profile.password"))
    return render_template("profile/password.html", form=form, min_length=passwords.min_length()), status
