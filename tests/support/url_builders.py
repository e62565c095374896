"""Werkzeug's URL builders compiled once per test process instead of once per app.

The suite builds a fresh app for nearly every test (``make_app``).  Most of ``create_app``'s
time goes into werkzeug compiling two URL-builder functions per route (an ``ast`` tree and
``compile()`` for each of some 150 rules, about 90% of the call).  A builder's code depends only
on the rule's parsed parts, its defaults and whether unknown arguments are appended; it reaches
the rule's converters through the rule it is bound to when called.  So the same code can serve
every app of the process: :func:`reuse_compiled_url_builders` keeps each compiled function by
those inputs.  Production builds one app per process and is not touched.
"""

from __future__ import annotations

import functools

from werkzeug.routing.rules import Rule


def _key(rule: Rule, append_unknown: bool) -> tuple | None:
    try:
        defaults = tuple(sorted((k, repr(v)) for k, v in (rule.defaults or {}).items()))
        converters = tuple(sorted((k, type(v).__qualname__) for k, v in rule._converters.items()))
        return (rule.rule, tuple(rule._trace), defaults, converters, append_unknown)
    except (AttributeError, TypeError):  # another werkzeug: compile as it would
        return None


def reuse_compiled_url_builders() -> None:
    original = getattr(Rule, "_compile_builder", None)
    if original is None or getattr(original, "_mailroom_cached", False):
        return
    compiled: dict[tuple, object] = {}

    @functools.wraps(original)
    def compile_builder(self: Rule, append_unknown: bool = True):
        key = _key(self, append_unknown)
        if key is None:
            return original(self, append_unknown)
        if key not in compiled:
            compiled[key] = original(self, append_unknown)
        return compiled[key]

    compile_builder._mailroom_cached = True  # type: ignore[attr-defined]
    Rule._compile_builder = compile_builder  # type: ignore[method-assign]
