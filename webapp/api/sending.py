"""API routes for sending: compose, scheduled sends, aliases, shared senders, signatures."""

from __future__ import annotations

from . import bp  # noqa: F401
