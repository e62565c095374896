"""Console accounts: the sign-in pages, users, passwords and roles.

The checks live beside it: webapp/sign_in.py (throttling, safe redirects),
webapp/sessions.py (server-side sessions), webapp/api_tokens.py (bearer tokens).
"""

from __future__ import annotations

import secrets
from functools import wraps

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired

from . import sessions
from .api_tokens import issue_token, user_for_token  # noqa: F401  (the names callers import from here)
from .extensions import db, login_manager
from .models import Role, User
from .sign_in import SignInRefused, safe_next, sign_in

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.login_message_category = "info"
# The session row, not a long-lived cookie, decides who is signed in (webapp/sessions.py).
login_manager.user_loader(sessions.user_for_request)


def admin_required(view):
    """Pages for administrators only: anyone else gets 403."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def _check_password_rules(password: str) -> None:
    if len(password) < 8:
        raise ValueError("the password must be at least 8 characters")


def create_user(username: str, password: str, admin: bool = False) -> User:
    if not username or not username.strip():
        raise ValueError("the username is empty")
    _check_password_rules(password)
    if User.query.filter_by(username=username.strip()).first():
        raise ValueError(f"a user named {username!r} exists already")
    user = User(username=username.strip(), role=(Role.ADMIN if admin else Role.USER).value)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def ensure_admin(password: str | None) -> str | None:
    """On a first start with no users, create ``admin``; return the generated password, if one was."""
    if db.session.query(User.id).first() is not None:
        return None
    generated = None
    if not password:
        password = generated = secrets.token_urlsafe(12)
    create_user("admin", password, admin=True)
    return generated


def change_password(user: User, new_password: str) -> int:
    """Set a new password and sign ``user`` out everywhere; return how many sessions ended.

    Every page or command that changes a password goes through here, so a browser
    signed in with the old password (perhaps someone else's) stops working at once.
    A page changing the person's own password signs them in again afterwards.
    API tokens are separate credentials and stay (revoke them with ``tokens revoke``).
    """
    _check_password_rules(new_password)
    user.set_password(new_password)
    ended = sessions.end_all(user)
    db.session.commit()
    return ended


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


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
