"""Build step of the package: compile the translation catalogues into the wheel.

The metadata lives in setup.cfg.  Only the compiled ``messages.mo`` files are read at run time,
and they are not committed (.gitignore), so ``build_py`` compiles each committed ``.po`` with Babel
(a build requirement in pyproject.toml): into the build directory for a wheel, beside the ``.po``
for an editable install (which serves the source tree).  ``make catalogues`` does the same in a
checkout.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from setuptools import setup
from setuptools.command.build_py import build_py

CATALOGUES = Path("webapp") / "translations"


def compile_catalogues(source: Path, target: Path) -> list[str]:
    """Compile every ``<lang>/LC_MESSAGES/messages.po`` under ``source`` into the same place under
    ``target``; answers the files written.  Fuzzy entries are left out, as ``pybabel compile`` does."""
    written = []
    for po in sorted(source.glob("*/LC_MESSAGES/messages.po")):
        mo = target / po.relative_to(source).with_suffix(".mo")
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as handle:
            catalogue = read_po(handle, locale=po.parts[-3])
        with mo.open("wb") as handle:
            write_mo(handle, catalogue)
        written.append(str(mo))
    return written


class BuildPyWithCatalogues(build_py):
    """``build_py``, then the compiled catalogues beside the package's other data."""

    def run(self) -> None:
        super().run()
        target = CATALOGUES if self.editable_mode else Path(self.build_lib) / CATALOGUES
        for path in compile_catalogues(CATALOGUES, target):
            self.announce(f"compiled {path}", level=2)


setup(cmdclass={"build_py": BuildPyWithCatalogues})
