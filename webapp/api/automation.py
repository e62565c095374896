"""API routes for automation (registered on the /api/v1 blueprint)."""

from __future__ import annotations

from . import bp  # noqa: F401
