"""My profile's forms: the signature's sender fields, and the console's language and time."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField

from ..i18n import LANGUAGE_NAMES, time_zones


class ProfileForm(FlaskForm):
    first_name = StringField(_l("First name"))
    last_name = StringField(_l("Last name"))
    job_title = StringField(_l("Role"), description=_l("Your job title, as the signature shows it"))
    phone = StringField(_l("Phone"))


class LocaleForm(FlaskForm):
    """Language and time: empty means the browser's language / the server's time zone.

    The choices are only offered here; :func:`webapp.i18n.clean_locale` decides (its errors
    name the field), so the form does not pre-validate them.
    """

    language = SelectField(_l("Language"), validate_choice=False)
    time_zone = SelectField(
        _l("Time zone"),
        validate_choice=False,
        description=_l("Dates and times on every page are shown in this zone."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.language.choices = [("", _l("The browser's language"))] + list(LANGUAGE_NAMES.items())
        self.time_zone.choices = [("", _l("The server's time zone"))] + [(zone, zone) for zone in time_zones()]
