"""The stylesheets: each rule lives in one place.

messages.css is loaded after mailroom.css on the messages pages, so a rule copied into it wins
over mailroom.css's and a later fix made there is silently undone (the flag star kept a colour
under 3:1 contrast that way)."""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "webapp" / "static"


def top_level_selectors(css: str) -> set[str]:
    """The selectors of the rules outside @media blocks, one entry per comma-separated selector."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    css = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*\s*\}", "", css)
    selectors = set()
    for head in re.findall(r"([^{}]+)\{[^{}]*\}", css):
        selectors.update(" ".join(s.split()) for s in head.split(","))
    return selectors


def test_messages_css_repeats_no_rule_of_mailroom_css():
    shared = top_level_selectors((STATIC / "mailroom.css").read_text())
    own = top_level_selectors((STATIC / "messages.css").read_text())
    assert own, "messages.css parsed to nothing"
    assert sorted(own & shared) == []
