"""My profile › Password and API tokens: the forms (webapp/users.py and webapp/api_tokens.py decide)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

#: Expiry choices of a token made on the page (the API takes any 1-3650 days).
TOKEN_DAYS = (30, 90, 365)


class PasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"))
    new_password = PasswordField(_l("New password"))
    confirm = PasswordField(_l("Repeat the new password"))


class TokenForm(FlaskForm):
    name = StringField(_l("Name"), description=_l("What the token is for, e.g. “backup script”"))
    days = SelectField(
        _l("Expires after"),
        choices=[SelectChoice(str(d), _l("%(num)d days", num=d)) for d in TOKEN_DAYS],
        default="90",
    )
