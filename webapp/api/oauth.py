"""API routes for oauth (registered on the /api/v1 blueprint)."""

from __future__ import annotations

from . import bp  # noqa: F401
