"""Input that no database can hold is refused before a view runs: one place per concern.

:func:`init_app` installs the guards on every request, pages and API alike:

* ``<int:...>`` in every URL is :class:`IdConverter`: 1 to 2**31-1 (PostgreSQL's ``integer``,
  the narrower of the two databases), else the route does not match and the answer is a 404.
* :func:`check_request` (``before_request``) refuses NUL characters (PostgreSQL cannot store
  them in text) and lone surrogates (no database driver can encode them): in a path
  parameter a 404 (nothing is stored under such a name), in the query string, the form and
  the JSON body a 422 naming the field; and a JSON body that is not valid JSON or is nested
  deeper than :data:`MAX_JSON_DEPTH` is a 400.  A page whose view is marked :func:`form_page`
  shows such a form value as a field error on its own form instead (:func:`form_problems`,
  read by webapp.forms.posted), the other input kept.
* :mod:`webapp.column_limits` refuses a string longer than its column (422 naming it).
* A :class:`~webapp.errors.DomainError` escaping a page view is a 4xx page, not a 500.

JSON requests (the API, and the pages' fetch calls) get ``{"error", "fields"}``; pages get
the same sentences in HTML.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, current_app, g, jsonify, render_template, request
from flask_babel import gettext as _
from flask_sqlalchemy.session import Session as FlaskSession
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from connectors.i18n import N_

from . import column_limits
from .errors import DomainError, Invalid, Malformed, NotFound
from .extensions import db
from .i18n import localize_body
from .look import describe
from .validation import MAX_ID

#: Real bodies nest four levels at most (a filter's conditions); deeper is refused before use.
MAX_JSON_DEPTH = 32

#: Routing errors under this prefix answer JSON (the API blueprint's own handler never sees them).
API_PREFIX = "/api/"

BAD_JSON = N_("The JSON body is not valid or is too deeply nested.")  # translated in the answer


def decimal_up_to(limit: int) -> str:
    """A regex matching exactly the decimal numbers 1..``limit`` (ASCII digits, no leading zero)."""
    digits = str(limit)
    parts = [f"[1-9][0-9]{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    for i, digit in enumerate(digits):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            parts.append(f"{digits[:i]}[{low}-{int(digit) - 1}][0-9]{{{len(digits) - i - 1}}}")
    return "|".join([*parts, digits])


class IdConverter(IntegerConverter):
    """``<int:...>``: only an id either database can hold matches; anything else is a 404.

    The range is in the regex, not only in ``to_python``: werkzeug checks converters after
    the methods, so a rejected value would answer 405 where a route has other methods.
    """

    regex = decimal_up_to(MAX_ID)

    def __init__(
        self, map, fixed_digits: int = 0, min: int | None = 1, max: int | None = MAX_ID, signed=False
    ):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def text_problem(value: str, *, name: bool = False) -> str | None:
    """Why ``value`` cannot be stored as text, or None when it can.

    ``name``: ``value`` is a field's name, not its value; each case is one whole sentence
    so that a translation never leaves half of it in English."""
    if "\x00" in value:
        if name:
            return N_("the field name must not contain NUL characters")
        return N_("must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            if name:
                return N_("the field name is not valid Unicode (it contains a lone surrogate)")
            return N_("is not valid Unicode (it contains a lone surrogate)")
    return None


def form_page(view):
    """Mark a page view whose form shows :func:`form_problems` under its fields (webapp.forms.posted
    does): a NUL in a field is then an error on the same form, the other input kept."""
    view.shows_form_problems = True
    return view


def form_problems() -> dict[str, str]:
    """``{form field: problem}`` the guard let through to a :func:`form_page` view."""
    return g.get("form_problems") or {}


def _defer_to_form(fields: dict[str, str]) -> bool:
    """Hand ``fields`` (form value problems only) to a :func:`form_page` view, its form made safe to show."""
    view = current_app.view_functions.get(request.endpoint or "")
    if not getattr(view, "shows_form_problems", False) or request.is_json or not request.form:
        return False
    if not set(fields) <= set(request.form.keys()):
        return False  # a field name itself is unusable: no form field to show it under
    g.form_problems = fields
    request.form = ImmutableMultiDict([(key, _storable(value)) for key, value in request.form.items(multi=True)])
    return True


def _storable(value: str) -> str:
    """``value`` with NULs and lone surrogates as U+FFFD, so the page can show it back."""
    return "".join("\ufffd" if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in value)


def pair_problems(pairs) -> dict[str, str]:
    """``{field: problem}`` for the keys and values of query-string or form pairs."""
    fields: dict[str, str] = {}
    for key, value in pairs:
        problem = text_problem(key, name=True)
        if problem:
            fields[_printable(key)] = problem
        elif isinstance(value, str) and (problem := text_problem(value)):
            fields[key] = problem
    return fields


def json_problems(body: Any) -> dict[str, str]:
    """``{"a.b.0": problem}`` for the strings of a parsed JSON body; walked without recursion.

    Raises :class:`Malformed` when the body nests deeper than :data:`MAX_JSON_DEPTH`.
    """
    fields: dict[str, str] = {}
    stack: list[tuple[str, Any, int]] = [("", body, 0)]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise Malformed(BAD_JSON)
        if isinstance(value, str):
            if problem := text_problem(value):
                fields[path or "body"] = problem
        elif isinstance(value, dict):
            for key, item in value.items():
                if problem := text_problem(key, name=True):
                    fields[_join(path, _printable(key))] = problem
                    continue
                stack.append((_join(path, key), item, depth + 1))
        elif isinstance(value, list):
            stack.extend((_join(path, str(i)), item, depth + 1) for i, item in enumerate(value))
    return fields


def parse_json_body() -> Any:
    """The request's JSON (cached by Flask for the view), or None when it sent none.

    A body that is not JSON, or so deeply nested that the parser runs out of stack
    (``RecursionError``, which Flask does not catch), is a 400.
    """
    if not request.is_json:
        return None
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        raise Malformed(BAD_JSON) from None
    if body is None and request.get_data(cache=True).strip():
        raise Malformed(BAD_JSON)
    return body


def check_request() -> Any:
    """``before_request``: refuse what cannot be stored, naming the field, before any view runs."""
    try:
        for name, value in (request.view_args or {}).items():
            if isinstance(value, str) and (problem := text_problem(value)):
                raise NotFound(_("Nothing is found at this address (%(name)s %(problem)s).", name=name, problem=_(problem)))
        fields = pair_problems(request.args.items(multi=True))
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            in_form = pair_problems(request.form.items(multi=True))
            if in_form and (fields or not _defer_to_form(in_form)):
                fields.update(in_form)
            body = parse_json_body()
            if body is not None:
                fields.update(json_problems(body))
        if fields:
            raise Invalid(fields)
    except DomainError as exc:
        return domain_error(exc)
    return None


def domain_error(exc: DomainError):
    """A DomainError as JSON for JSON requests and the API, else as a small HTML page."""
    db.session.rollback()
    if request.blueprint == "api" or request.is_json or request.accept_mimetypes.best == "application/json":
        return jsonify(localize_body(exc.as_dict())), exc.status, getattr(exc, "headers", None) or {}
    return render_template("bad_input.html", error=exc), exc.status, getattr(exc, "headers", None) or {}


def api_http_error(exc: HTTPException):
    """A 404 or 405 met while routing (an id out of range, say) under ``/api/``: JSON like the API's."""
    if request.path.startswith(API_PREFIX):
        return jsonify({"error": describe(exc)}), exc.code
    return exc


def init_app(app: Flask) -> None:
    """Install the guards; call before the blueprints register so their routes use IdConverter."""
    app.url_map.converters["int"] = IdConverter
    app.before_request(check_request)
    app.register_error_handler(DomainError, domain_error)
    app.register_error_handler(HTTPException, api_http_error)
    column_limits.install(FlaskSession)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _printable(name: str) -> str:
    """A field name that can itself be sent back in JSON (NULs and surrogates escaped)."""
    return json.dumps(name)[1:-1]
