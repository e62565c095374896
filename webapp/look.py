"""The console's look that is not a template: error pages, and the word and icon of each state.

HTTP errors (400, 403, 404, 405, 413, 429, 500) met by a page are answered with
``errors/http.html`` in the console's layout: a heading, a sentence and a way back.  The API
(``/api/…``) and JSON callers keep the JSON body the API has always answered
(``{"error": description}``); ``/metrics`` keeps werkzeug's plain answer.

Every state badge (``state_badge(state)`` in templates/_badges.html) takes its word and icon
from :data:`STATE_WORDS` and :data:`STATE_ICONS`, and its colour from ``.badge.state-<state>``
in static/mailroom.css, so one state looks and reads the same on every page.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, current_app, jsonify, render_template, request
from flask_babel import gettext, lazy_pgettext
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from connectors.i18n import N_

from .extensions import db
from .unavailable import wants_json

log = logging.getLogger(__name__)

#: The word of each state, whatever it is the state of (a mailbox, an outgoing message, a job,
#: a user, a worker).  Mailbox words equal AccountState.label (tests/test_error_pages.py checks).
STATE_WORDS = {
    # mailboxes
    "new": _l("Not tested yet"),
    "connected": _l("Connected"),
    "auth_error": _l("Authentication error"),
    "connection_error": _l("Connection error"),
    "service_removed": _l("Service removed"),
    "disabled": _l("Disabled"),
    "needs_sign_in": _l("Needs to sign in again"),
    # outgoing messages: "message state", one message (it "messaggio" m., pl "wiadomość" f.), so
    # "Sent"/"Scheduled" do not take the folder views' plural words
    "scheduled": lazy_pgettext("message state", "Scheduled"),
    "queued": lazy_pgettext("message state", "Queued"),
    "sending": lazy_pgettext("message state", "Sending"),
    "sent": lazy_pgettext("message state", "Sent"),
    "failed": lazy_pgettext("message state", "Failed"),
    "cancelled": lazy_pgettext("message state", "Cancelled"),
    "held": lazy_pgettext("message state", "Held"),
    # jobs, workers, users, anything else
    "started": _l("Running"),
    "finished": _l("Done"),
    "busy": _l("Busy"),
    "idle": _l("Idle"),
    "active": _l("Active"),
    "removed": _l("Removed"),
    "error": _l("Error"),
}
#: The icon drawn before the word (templates/_icons.html names), so colour is never the only sign.
STATE_ICONS = {
    "new": "circle-help",
    "connected": "circle-check",
    "auth_error": "key-round",
    "connection_error": "plug",
    "service_removed": "ban",
    "disabled": "ban",
    "needs_sign_in": "lock",
    "scheduled": "calendar-clock",
    "queued": "clock",
    "sending": "send",
    "sent": "check",
    "failed": "circle-x",
    "cancelled": "x",
    "held": "lock",
    "started": "refresh-cw",
    "finished": "check",
    "busy": "activity",
    "idle": "clock",
    "active": "circle-check",
    "removed": "trash-2",
    "error": "triangle-alert",
}


def state_word(state: str | None) -> str:
    if not state:
        return ""
    word = STATE_WORDS.get(state)
    return str(word) if word is not None else state.replace("_", " ").capitalize()


def state_icon(state: str | None) -> str:
    return STATE_ICONS.get(state or "", "circle")


#: Each error page's heading and sentence.
ERROR_TEXTS = {
    400: (
        _l("This request cannot be used"),
        _l("Something in it was not what this page expects. Go back, check what you entered and try again."),
    ),
    403: (
        _l("You may not open this page"),
        _l(
            "It is for administrators, or it belongs to another person. If you need it, ask an administrator."
        ),
    ),
    404: (
        _l("Nothing is here"),
        _l("The address may be mistyped, or what it pointed to was removed or belongs to someone else."),
    ),
    405: (
        _l("This address does not answer that kind of request"),
        _l("Use the page's own buttons and links rather than typing the address."),
    ),
    413: (
        _l("That is too large"),
        _l("The upload is larger than this server accepts. Try a smaller file, or several smaller ones."),
    ),
    429: (_l("Too many requests"), _l("Wait a minute, then try again.")),
    500: (
        _l("Something went wrong on our side"),
        _l(
            "The error was recorded for the administrators. Try again; if it happens again, tell them what you were doing."
        ),
    ),
}


#: The JSON answer's sentence for an error that carries werkzeug's own English description (a
#: description a view gave is its own and kept).
API_TEXTS = {
    400: N_("The request could not be understood."),
    403: N_("You may not use this address."),
    404: N_("Nothing is at this address: check the path, or what it named was removed."),
    405: N_("This address does not answer that method."),
    413: N_("The request is larger than this server accepts."),
    429: N_("Too many requests: wait a minute, then try again."),
}
CSRF_TEXT = N_("The form expired or came from another page (CSRF check): reload the page and try again.")


def describe(exc: HTTPException) -> str:
    """``exc``'s sentence for a JSON answer, in the reader's language."""
    if isinstance(exc, CSRFError):
        return gettext(CSRF_TEXT)
    if exc.code in API_TEXTS and exc.description == type(exc).description:
        return gettext(API_TEXTS[exc.code])
    return exc.description or ""


def _way_back() -> str | None:
    """The page the person came from, when it is one of ours and not this one."""
    referrer = request.referrer
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.netloc != request.host or parts.path == request.path:
        return None
    return referrer


def http_error(exc: HTTPException):
    if exc.response is not None or request.blueprint == "metrics" or exc.code not in ERROR_TEXTS:
        return exc
    if exc.code >= 500:
        db.session.rollback()
    if wants_json():
        description = describe(exc) if exc.code < 500 else gettext("Internal server error.")
        return jsonify({"error": description}), exc.code, _headers(exc)
    heading, sentence = ERROR_TEXTS[exc.code]
    try:
        html = render_template(
            "errors/http.html",
            code=exc.code,
            heading=heading,
            sentence=sentence,
            back=_way_back(),
            error_page=True,
        )
    except Exception:  # the layout itself failed (the database is down, say): a plain page still answers
        log.exception("The error page for %s could not be rendered", exc.code)
        html = f"<!doctype html><title>{exc.code}</title><h1>{heading}</h1><p>{sentence}</p><p><a href='/'>Mailroom</a></p>"
    return html, exc.code, _headers(exc)


def _headers(exc: HTTPException) -> dict[str, str]:
    headers = dict(exc.get_headers())
    headers.pop("Content-Type", None)
    return headers


def has_endpoint(name: str) -> bool:
    """Whether this build has the page (templates link to pages other pieces of work add)."""
    return name in current_app.view_functions


def init_app(app: Flask) -> None:
    for code in ERROR_TEXTS:
        app.register_error_handler(code, http_error)
    app.jinja_env.globals.update(
        state_word=state_word, state_icon=state_icon, has_endpoint=has_endpoint, way_back=_way_back
    )
