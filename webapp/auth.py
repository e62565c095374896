"""Console accounts: session log-in for the pages, bearer tokens for the API, roles."""

from __future__ import annotations

import hashlib
import secrets
from functools import wraps

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired

from .extensions import db, login_manager
from .models import ApiToken, Role, User, utcnow

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.login_message_category = "info"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


def admin_required(view):
    """Pages for administrators only: anyone else gets 403."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def create_user(username: str, password: str, admin: bool = False) -> User:
    if not username or not username.strip():
        raise ValueError("the username is empty")
    if len(password) < 8:
        raise ValueError("the password must be at least 8 characters")
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


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User) -> str:
    """A new API token for ``user``; only its hash is stored, so it is shown once."""
    token = "mr_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_hash=_hash(token)))
    db.session.commit()
    return token


def user_for_token(token: str) -> User | None:
    row = ApiToken.query.filter_by(token_hash=_hash(token)).first()
    if row is None:
        return None
    row.last_used_at = utcnow()
    db.session.commit()
    return row.user


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = User.query.filter_by(username=form.username.data.strip()).first()
        if user is None or not user.check_password(form.password.data):
            form.password.errors.append("Wrong username or password.")
        else:
            # Unread notifications (a removed service, …) are shown by base.html on every page.
            login_user(user)
            next_url = request.args.get("next", "")
            if not next_url.startswith("/") or next_url.startswith("//"):
                next_url = url_for("mailboxes.index")
            return redirect(next_url)
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/")
def home():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for("mailboxes.index"))
