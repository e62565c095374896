"""Layering rules import-linter cannot see (it checks modules, not the names taken from them)."""

from __future__ import annotations

import ast
from pathlib import Path

WEBAPP = Path(__file__).resolve().parent.parent / "webapp"


def _builds_urls(path: Path) -> bool:
    """Does the module take ``url_for`` from Flask (``from flask import url_for`` or ``flask.url_for``)?"""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "flask":
            if any(alias.name == "url_for" for alias in node.names):
                return True
        if isinstance(node, ast.Attribute) and node.attr == "url_for":
            return True
    return False


def test_services_and_jobs_build_no_urls():
    """URLs are the web layer's (blueprint packages): a service or a job builds none, so it needs
    no request context and can run in a worker, the CLI or a test; the views pass URLs in or add
    them to what the service answers (``webapp.api.sending_routes._outgoing``,
    ``webapp.mailboxes.oauth_routes.callback_url``)."""
    blueprints = {p.parent.name for p in WEBAPP.glob("*/__init__.py")} - {"jobs"}
    outside = [p for p in WEBAPP.rglob("*.py") if p.relative_to(WEBAPP).parts[0] not in blueprints]
    assert outside and any(p.name == "sending.py" for p in outside)
    assert [str(p.relative_to(WEBAPP)) for p in outside if _builds_urls(p)] == []
