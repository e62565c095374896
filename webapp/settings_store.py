"""Console-wide settings kept in the ``settings`` table as JSON.

The known keys, their defaults and their validators live in :data:`SCHEMA`, so
the admin page, ``PATCH /api/v1/settings`` and the code that reads a setting
agree on what a valid value is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .errors import Invalid, Malformed
from .extensions import db
from .models import Setting


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError("must be true or false")


SCHEMA: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    # When False, "Other" is not offered and server details typed by hand are refused.
    "allow_manual_entry": (True, _bool),
}


def get(key: str) -> Any:
    default, _ = SCHEMA[key]
    row = db.session.get(Setting, key)
    return default if row is None else json.loads(row.value)


def all_settings() -> dict[str, Any]:
    stored = {row.key: json.loads(row.value) for row in Setting.query.all()}
    return {key: stored.get(key, default) for key, (default, _) in SCHEMA.items()}


def update(changes: Any) -> dict[str, Any]:
    """Validate and store ``changes`` (a mapping of key to value); all or nothing."""
    if not isinstance(changes, dict):
        raise Malformed("Send a JSON object of settings.")
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in SCHEMA:
            errors[key] = "unknown setting"
            continue
        try:
            cleaned[key] = SCHEMA[key][1](value)
        except ValueError as exc:
            errors[key] = str(exc)
    if errors:
        raise Invalid(errors)
    for key, value in cleaned.items():
        row = db.session.get(Setting, key)
        if row is None:
            db.session.add(Setting(key=key, value=json.dumps(value)))
        else:
            row.value = json.dumps(value)
    db.session.commit()
    return all_settings()
