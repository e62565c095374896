"""My profile's form."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField


class ProfileForm(FlaskForm):
    first_name = StringField("First name")
    last_name = StringField("Last name")
    job_title = StringField("Role", description="Your job title, as the signature shows it")
    phone = StringField("Phone")
