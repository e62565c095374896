"""Administration › Users: the forms (they collect text; webapp/users.py decides)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField


class NewUserForm(FlaskForm):
    username = StringField(_l("Username"), description=_l("Letters, digits and . _ - @ + (no spaces)"))
    password = PasswordField(_l("Password"))
    confirm = PasswordField(_l("Repeat the password"))
    admin = BooleanField(_l("Administrator"))


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"))
    confirm = PasswordField(_l("Repeat the new password"))
