"""The templates hold no inline script, style or event handler: the Content-Security-Policy
(webapp/security_headers.py) refuses them, so any left would silently stop working."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parent.parent / "webapp" / "templates"
STATIC = TEMPLATES.parent / "static"

FORBIDDEN = {
    "inline <script> (no src)": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "<style> element": re.compile(r"<style\b", re.I),
    "style= attribute": re.compile(r"\sstyle\s*=", re.I),
    "on…= event attribute": re.compile(r"\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def _templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*") if p.is_file())


def test_there_are_templates_to_scan():
    assert len(_templates()) > 20


@pytest.mark.parametrize("path", _templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_inline_script_style_or_handler(path: Path):
    text = path.read_text(encoding="utf-8")
    found = [
        f"{path.relative_to(TEMPLATES)}:{text.count(chr(10), 0, m.start()) + 1}: {what}: {m.group(0).strip()}"
        for what, pattern in FORBIDDEN.items()
        for m in pattern.finditer(text)
    ]
    assert not found, "\n".join(found)


def test_every_script_a_template_loads_exists():
    names = {
        name
        for path in _templates()
        for name in re.findall(r"filename='([^']+\.js)'", path.read_text(encoding="utf-8"))
    }
    assert names and all((STATIC / name).is_file() for name in names), names
