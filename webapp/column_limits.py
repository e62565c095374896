"""String lengths come from the model columns, so a validator or the API description cannot drift.

:func:`column_length` answers a column's width for validators and the OpenAPI description;
:func:`refuse_overlong` (a ``before_flush`` hook, during requests) refuses a value longer than its
``varchar(n)`` as a 422 naming the column, where PostgreSQL would raise a DataError (a 500)
and SQLite would silently store it.
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context
from flask_babel import gettext as _
from sqlalchemy import String, event, inspect
from sqlalchemy.orm import InstrumentedAttribute, Session

from .errors import Invalid


def column_length(attribute: InstrumentedAttribute) -> int | None:
    """The ``n`` of ``String(n)`` behind a model attribute (``Alias.display_name`` → 320), or None."""
    column_type = attribute.property.columns[0].type
    return column_type.length if isinstance(column_type, String) else None


def overlong_fields(obj: Any) -> dict[str, str]:
    """``{attribute: "must be at most n characters"}`` for each string longer than its column."""
    fields: dict[str, str] = {}
    for attr in inspect(obj).mapper.column_attrs:
        column_type = attr.columns[0].type
        if not isinstance(column_type, String) or not column_type.length:
            continue
        value = getattr(obj, attr.key, None)
        if isinstance(value, str) and len(value) > column_type.length:
            fields[attr.key] = _("must be at most %(length)s characters", length=column_type.length)
    return fields


def refuse_overlong(session: Session, flush_context, instances) -> None:
    """Before a flush in a request: a 422 naming every over-long field of the new and changed rows."""
    if not has_request_context():
        return  # workers cut what they store from mail servers themselves (connectors.envelope)
    fields: dict[str, str] = {}
    for obj in (*session.new, *session.dirty):
        fields.update(overlong_fields(obj))
    if fields:
        raise Invalid(fields)


def install(session_class: type[Session] | Session) -> None:
    """Listen on ``session_class`` (Flask-SQLAlchemy's session) once; safe to call per app."""
    if not event.contains(session_class, "before_flush", refuse_overlong):
        event.listen(session_class, "before_flush", refuse_overlong)
