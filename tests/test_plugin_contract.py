"""Meta-tests of the plugin contract, as datasette keeps its own: every hook in
``connectors/hookspecs.py`` is documented in ``docs/plugins.md`` (a heading with the hook's
arguments) and exercised by a test that registers a plugin implementing it.

Adding a hook without its documentation or its test fails here, naming the hook.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from connectors import hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "plugins.md"
HEADING = re.compile(r"^### `(mailroom_\w+)\(([^)]*)\)`", re.M)

HOOKS = sorted(
    name
    for name, value in vars(hookspecs).items()
    if name.startswith("mailroom_") and callable(value) and hasattr(value, "mailroom_spec")
)


def _documented() -> dict[str, list[str]]:
    """Hook name -> the arguments its ``### `name(args)` `` heading lists."""
    return {
        name: [a.strip() for a in args.split(",") if a.strip()]
        for name, args in HEADING.findall(DOCS.read_text())
    }


def _is_hookimpl(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
    return name == "hookimpl"


def _implemented_in_tests() -> dict[str, list[str]]:
    """Hook name -> the test modules that define a ``@hookimpl`` of it (to register in the test)."""
    found: dict[str, list[str]] = {}
    for path in sorted(ROOT.glob("tests/**/test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef) and any(_is_hookimpl(d) for d in node.decorator_list):
                found.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    return found


def test_the_hook_list_is_read_from_hookspecs():
    assert len(HOOKS) >= 7 and "mailroom_service_presets" in HOOKS, HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_arguments(hook):
    documented = _documented()
    assert hook in documented, f"docs/plugins.md has no '### `{hook}(...)`' heading"
    spec_args = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert documented[hook] == spec_args, (
        f"docs/plugins.md lists {documented[hook]}, the hookspec {spec_args}"
    )


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_exercised_by_a_test_that_registers_a_plugin(hook):
    assert hook in _implemented_in_tests(), f"no test defines a @hookimpl of {hook} (register one in a test)"


def test_the_docs_describe_no_hook_that_does_not_exist():
    assert set(_documented()) <= set(HOOKS)
