"""The sign-in page, logout and the home redirect."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required, login_user, logout_user

from connectors.i18n import N_

from .. import sessions
from ..extensions import login_manager
from ..sign_in import SignInRefused, safe_next, sign_in
from . import bp
from .forms import LoginForm

login_manager.login_view = "auth.login"
login_manager.login_message_category = "info"
# Flask-Login's own sentence is English; ours is flashed in the reader's language (the browser's here).
login_manager.login_message = N_("Sign in to open this page.")
login_manager.localize_callback = gettext
# The session row, not a long-lived cookie, decides who is signed in (webapp/sessions.py).
login_manager.user_loader(sessions.user_for_request)


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form)
    try:
        user = sign_in(form.username.data, form.password.data, request.remote_addr or "")
    except SignInRefused as exc:
        form.password.errors = [exc.message]
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
        # A wrong password stays a plain 200 form page; throttling answers 429.
        return render_template("auth/login.html", form=form), 429 if exc.status == 429 else 200, headers
    sessions.end()  # a previous sign-in in this browser: its row goes, no fixation
    login_user(user)  # no remember-me cookie: the session row decides
    sessions.start(user)
    # Unread notifications (a removed service, …) are shown by base.html on every page.
    return redirect(safe_next(request.args.get("next")) or url_for("mailboxes.index"))


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    sessions.end()
    logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/")
def home():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for("mailboxes.index"))
