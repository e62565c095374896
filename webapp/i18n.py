"""Languages: Flask-Babel bound to the app, and how a request's language and time zone are chosen.

English is the source language; Italian and Polish catalogues live in ``webapp/translations``
(``make translations`` extracts, updates and compiles them; see docs/translations.md).
A page's language is the signed-in user's choice, else the best match of the browser's
``Accept-Language``, else English.  The API answers in the language of ``Accept-Language`` only
(a script's header, not the person's page setting); codes and field names stay English.

Texts stored in English by jobs (a connection test's diagnosis, a mailbox's last error) are
translated when shown: :func:`translate_stored` looks the text up in the catalogue, and a text
built from a template with values (``The host name {host} could not be found.``) is matched
against the registered templates and rebuilt from the translated one.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from flask import Flask, has_request_context, request
from flask_babel import Babel, force_locale, format_date, format_time, get_locale, gettext, refresh
from flask_login import current_user

from connectors import i18n as marked
from connectors import plugins
from connectors.i18n import N_

from .errors import Invalid

#: The languages Mailroom ships; the first is the source language and the fallback.
LANGUAGES = ("en", "it", "pl")
#: Each language's name in itself, for the profile's choice.
LANGUAGE_NAMES = {"en": "English", "it": "Italiano", "pl": "Polski"}

babel = Babel()


def select_locale() -> str:
    """API: the ``Accept-Language`` header's best; pages: the user's choice, else the browser's."""
    if not has_request_context():
        return LANGUAGES[0]
    if not request.path.startswith("/api/"):
        chosen = getattr(current_user, "language", None)
        if chosen in LANGUAGES:
            return chosen
    return request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]


def select_timezone() -> str | None:
    """The signed-in user's time zone if they chose one, else the server's (BABEL_DEFAULT_TIMEZONE)."""
    if not has_request_context():
        return None
    return getattr(current_user, "time_zone", None) or None


def language_of(user) -> str:
    """The language a built-in text written for ``user`` follows (e.g. into a mail they send)."""
    chosen = getattr(user, "language", None)
    if chosen in LANGUAGES:
        return chosen
    return str(get_locale() or LANGUAGES[0]) if has_request_context() else LANGUAGES[0]


def in_language_of(user):
    """``with in_language_of(sender): gettext(...)``: texts in the sender's language."""
    return force_locale(language_of(user))


# --- the user's choice (My profile > Language and time) -----------------------------------


@lru_cache(maxsize=1)
def time_zones() -> tuple[str, ...]:
    """The IANA zone names this machine knows, sorted (``Europe/Rome``, ``Europe/Warsaw``, …)."""
    return tuple(sorted(zoneinfo.available_timezones()))


def clean_locale(data: dict) -> dict:
    """``{"language", "time_zone"}`` checked: a shipped language and an IANA zone, or empty (default)."""
    language = (data.get("language") or "").strip()
    zone = (data.get("time_zone") or "").strip()
    errors = {}
    if language and language not in LANGUAGES:
        errors["language"] = gettext("Choose one of the languages offered.")
    if zone and zone not in time_zones():
        errors["time_zone"] = gettext(
            "Unknown time zone: give an IANA name such as Europe/Rome or Europe/Warsaw."
        )
    if errors:
        raise Invalid(errors)
    return {"language": language or None, "time_zone": zone or None}


def update_locale(user, cleaned: dict) -> None:
    user.language = cleaned["language"]
    user.time_zone = cleaned["time_zone"]


# --- texts stored in English, translated when shown ---------------------------------------

_templates: list[str] = []


def register_templates(templates: Iterable[str]) -> None:
    """Texts built with ``str.format`` from these templates can be translated when shown.

    Each template must be marked for extraction (``N_``) where it is defined.
    """
    for template in templates:
        if template not in _templates:
            _templates.append(template)


_FIELD = re.compile(r"\{(\w+)(?:![rsa])?(?::[^}]*)?\}")


@dataclass(frozen=True)
class _Shape:
    """A template as its literal pieces around its fields, matched with ``str.find`` alone.

    Not a regular expression of ``(.*?)`` groups: on a text full of a template's separators (an
    email's subject or a server's answer is anyone's text) such a pattern backtracks for minutes
    before failing.  Each field here ends at the first place its following piece fits; the last
    piece ends the text.  When any reading of the text fits the template, this one does.
    """

    pieces: tuple[str, ...]  # one more than the fields
    fields: tuple[str, ...]

    def match(self, text: str) -> dict[str, str] | None:
        first, last = self.pieces[0], self.pieces[-1]
        if not self.fields:
            return {} if text == first else None
        end = len(text) - len(last)
        if end < len(first) or not text.startswith(first) or not text.endswith(last):
            return None
        values: dict[str, str] = {}
        start = len(first)
        for name, piece in zip(self.fields, (*self.pieces[1:-1], None), strict=True):
            stop = end if piece is None else text.find(piece, start, end)
            if stop < 0 or values.setdefault(name, text[start:stop]) != text[start:stop]:
                return None  # a piece missing, or a field used twice with two values
            start = stop + len(piece or "")
        return values


#: The shapes of every template so far, and how many of each list they were built from: both lists
#: only grow (modules register their templates when imported), so the shapes are rebuilt only then,
#: not on every stored text shown.
_shapes: list[tuple[_Shape, str]] = []
_shapes_of: tuple[int, int] = (0, 0)


def _patterns() -> list[tuple[_Shape, str]]:
    """Every registered or ``N_``-marked template as a :class:`_Shape`."""
    global _shapes, _shapes_of
    counts = (len(_templates), len(marked.TEMPLATES))
    if counts != _shapes_of:
        _shapes = [(shape, t) for t in [*_templates, *marked.TEMPLATES] for shape in _compile(t)]
        _shapes_of = counts
    return _shapes


def _compile(template: str) -> list[_Shape]:
    """``The host name {host} could not be found.`` -> its pieces and the field ``host`` (and a
    variant with the forms' "No" where the template says None: webapp.diagnosis.form_words)."""
    parts = _FIELD.split(template)
    shapes = [_Shape(tuple(parts[0::2]), tuple(parts[1::2]))]
    if "None" in template:
        shapes.append(_Shape(tuple(p.replace("None", '"No"') for p in parts[0::2]), tuple(parts[1::2])))
    return shapes


_PROTOCOL_PREFIX = re.compile(r"(IMAP|SMTP|POP3): (.+)", re.S)


def translate_stored(text: str | None) -> str:
    """An English text a job stored, in the request's language (unchanged when unknown)."""
    if not text or not isinstance(text, str):
        return text or ""
    translated = gettext(text)
    if translated != text or str(get_locale() or "en") == "en":
        return translated
    prefixed = _PROTOCOL_PREFIX.match(text)  # "IMAP: <sentence>" (a mailbox's last error)
    if prefixed:
        return f"{prefixed.group(1)}: {translate_stored(prefixed.group(2))}"
    for shape, template in _patterns():
        match = shape.match(text)
        if match is not None:
            values = {key: translate_stored(value) for key, value in match.items()}
            target = _FIELD.sub(lambda m: "{" + m.group(1) + "}", gettext(template))
            return target.format(**values)
    return _translate_sentences(text)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'“])")


def _translate_sentences(text: str) -> str:
    """A text made of several stored sentences, or of stored phrases joined with "; " (a filter's
    actions): each translated on its own where known."""
    parts = _SENTENCE_END.split(text)
    if len(parts) < 2:
        phrases = text.split("; ")
        return "; ".join(translate_stored(p) for p in phrases) if len(phrases) > 1 else text
    return " ".join(translate_stored(part) if part != text else part for part in parts)


def localize_error(error: dict | None) -> dict | None:
    """A stored diagnosis (``CheckReport`` error dict) with its sentences in the request's language."""
    if not error:
        return error
    out = dict(error)
    for key in ("message", "sentence", "detail", "field_label"):
        if out.get(key):
            out[key] = translate_stored(out[key])
    out["hints"] = [translate_stored(hint) for hint in error.get("hints") or []]
    return out


def localize_body(body: dict) -> dict:
    """An API error body (``error``, ``hint``, ``fields``) in the request's language; keys stay English."""
    out = dict(body)
    for key in ("error", "hint", "message"):
        if isinstance(out.get(key), str):
            out[key] = translate_stored(out[key])
    if isinstance(out.get("fields"), dict):
        out["fields"] = {k: translate_stored(v) if isinstance(v, str) else v for k, v in out["fields"].items()}
    return out


def localize_summary(summary: dict | None) -> dict | None:
    """A stored job result (a connection test's summary, a discovery's suggestion) with every
    diagnosis, description and note localized (for pages and the API)."""
    if not isinstance(summary, dict):
        return summary
    out = dict(summary)
    if isinstance(summary.get("checks"), dict):
        out["checks"] = {
            name: {**check, "error": localize_error(check.get("error"))} if isinstance(check, dict) else check
            for name, check in summary["checks"].items()
        }
    if isinstance(out.get("error"), str):
        out["error"] = translate_stored(out["error"])
    for key in ("description", "message"):  # a discovery's suggestion, a sync's sentence
        if isinstance(out.get(key), str):
            out[key] = translate_stored(out[key])
    if isinstance(out.get("notes"), list):
        out["notes"] = [translate_note(note) if isinstance(note, str) else note for note in out["notes"]]
    return out


def translate_note(note: str) -> str:
    """A discovery note, ``<source>: <why>; <why>``: the source's name kept, each reason translated."""
    source, separator, detail = note.partition(": ")
    if not separator:
        return translate_stored(note)
    return f"{source}: " + "; ".join(translate_stored(part) for part in detail.split("; "))


def current_locale() -> str:
    """The request's language code (``<html lang>``)."""
    return str(get_locale() or LANGUAGES[0])


# --- texts the page scripts write themselves -----------------------------------------------

#: Sentences webapp/static/*.js writes into a page (``mailroomT(text, values)``); base.html hands
#: their translations to the scripts in ``<meta name="mailroom-texts">``.
JS_TEXTS = (
    N_("Sync queued…"),
    N_("Syncing…"),
    N_("Folder {folder} of {folders} · {done} of {total}"),
    N_("{message} The sync runs again in about {seconds} s."),
    N_("The sync failed."),
    N_("Sync finished."),
    N_("Testing…"),
    N_("queued"),
    N_("started"),
    N_("finished"),
    N_("failed"),
    N_("The test could not run."),
    N_("Choose {service}"),
    N_("You already typed the {names} server; the suggestion differs: {suggestion}."),
    N_("Use the suggestion"),
    N_("Looking up settings…"),
    N_("The lookup could not run."),
    N_("Copied"),
    N_("Select and copy the field"),
    N_("The folder list could not be refreshed."),
    N_("Refreshing the folder list…"),
    N_("Folder list refreshed: {folders} folders."),
    N_("Running the filters…"),
    N_("The filters could not be run."),
    N_("This message is no longer on the server: it was moved or deleted there since the last sync."),
    N_("The message could not be fetched: {error} Reload the page to try again."),
    N_("The message could not be fetched: {error}"),
    N_("unknown error"),
)


def js_texts() -> dict[str, str]:
    """English -> the request's language, for the page scripts (empty in English)."""
    if current_locale() == LANGUAGES[0]:
        return {}
    return {text: gettext(text) for text in JS_TEXTS}


# --- dates ----------------------------------------------------------------------------------


def when(value: datetime | None) -> str:
    """A stored (naive UTC) time in the reader's zone and language: ``29 lis 2026, 20:40``."""
    if not value:
        return ""
    return f"{format_date(value, 'medium')}, {format_time(value, 'short')}"


# --- the app --------------------------------------------------------------------------------


def server_time_zone() -> str:
    """This machine's IANA zone (``TZ``, else where /etc/localtime points), else UTC: the zone of
    people who chose none (``BABEL_DEFAULT_TIMEZONE`` in the config overrides it)."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        candidates.append(os.path.realpath("/etc/localtime").split("/zoneinfo/", 1)[1])
    except (IndexError, OSError):
        pass
    return next((zone for zone in candidates if zone in time_zones()), "UTC")


def translation_directories() -> list[str]:
    """Mailroom's catalogues first, then each plugin's (``mailroom_translation_directories``)."""
    dirs = ["translations"]
    for answer in plugins.get_plugin_manager().hook.mailroom_translation_directories():
        for path in [answer] if isinstance(answer, str) else answer or []:
            if isinstance(path, str) and path and path not in dirs:
                dirs.append(str(path))
    return dirs


def init_app(app: Flask) -> None:
    """Bind Flask-Babel: ``_``, ``ngettext`` and the date/number filters in every template."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", ";".join(translation_directories()))
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", server_time_zone())
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    # Flask-Babel caches the language on ``g``, which lives as long as the app context: a test
    # client (or anything else) running several requests in one app context must not carry the
    # first request's language into the next.
    app.before_request(refresh)
    # One Babel object serves every app of the process; its catalogue cache must not hand a new
    # app (with other plugins' catalogue directories) the catalogues loaded for an earlier one.
    domain = babel.__dict__.get("domain_instance")  # made (cached) on first use, in a request
    if domain is not None:
        domain.cache.clear()
    app.jinja_env.filters["tr"] = translate_stored
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["localize_error"] = localize_error
    app.jinja_env.filters["localize_summary"] = localize_summary
    app.jinja_env.globals["LANGUAGE_NAMES"] = LANGUAGE_NAMES
    app.jinja_env.globals["current_locale"] = current_locale
    app.jinja_env.globals["js_texts"] = js_texts

