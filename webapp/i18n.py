"""Languages: Flask-Babel bound to the app, and how a request's language and time zone are chosen.

English is the source language; Italian and Polish catalogues live in ``webapp/translations``
(``make translations`` extracts, updates and compiles them; see docs/translations.md).
A request's language is the signed-in user's choice, else the best match of the browser's
``Accept-Language``, else English.  Codes and field names in API answers stay English.
"""

from __future__ import annotations

from flask import Flask, request
from flask_babel import Babel
from flask_login import current_user

#: The languages Mailroom ships; the first is the source language and the fallback.
LANGUAGES = ("en", "it", "pl")

babel = Babel()


def select_locale() -> str:
    """The signed-in user's language if they chose one, else the browser's best, else English."""
    chosen = getattr(current_user, "language", None) if current_user else None
    if chosen in LANGUAGES:
        return chosen
    if request:
        return request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]
    return LANGUAGES[0]


def select_timezone() -> str | None:
    """The signed-in user's time zone if they chose one, else the server's (Babel's default)."""
    return getattr(current_user, "time_zone", None) or None if current_user else None


def init_app(app: Flask) -> None:
    """Bind Flask-Babel: ``_``, ``ngettext`` and the date/number filters in every template."""
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
