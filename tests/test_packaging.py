"""A wheel built from the sources carries the compiled catalogues, and setuptools builds it without
warning about data folders missing from the packages (setup.py, setup.cfg).

A copy of the tree's sources (no compiled ``.mo``, no caches) is built by the venv's pip as
``pip wheel .`` builds a clean checkout: in an isolated build environment with pyproject.toml's
build requirements (setuptools, wheel, Babel) from the package index.
"""

from __future__ import annotations

import gettext
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "webapp", "connectors", "plugins")


def _copy_sources(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.mo", "*.pyc")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)


def test_the_wheel_holds_compiled_catalogues_and_builds_without_package_warnings(tmp_path):
    tree, dist = tmp_path / "tree", tmp_path / "dist"
    tree.mkdir()
    _copy_sources(tree)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(dist), "."],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = build.stdout + build.stderr
    assert build.returncode == 0, output[-3000:]
    assert "absent from the `packages` configuration" not in output
    (wheel,) = dist.glob("mailroom-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for language in ("it", "pl"):
            mo = f"webapp/translations/{language}/LC_MESSAGES/messages.mo"
            assert mo in names, sorted(n for n in names if "translations" in n)
            archive.extract(mo, tmp_path / "unpacked")
        assert "webapp/templates/errors/http.html" in names  # a data folder the warnings named
        assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]
    italian = gettext.translation("messages", tmp_path / "unpacked" / "webapp" / "translations", ["it"])
    assert italian.gettext("Sign in") == "Accedi"
