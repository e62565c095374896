"""What the language tests share: compiled catalogues, and the extraction `make translations` runs.

`make test` compiles the catalogues in its install step (Makefile: catalogues); a plain
``pytest`` run compiles here whatever .mo is missing or older than its .po, so the tests that
read Italian or Polish never read a stale catalogue.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "webapp" / "translations"
LANGUAGES = ("it", "pl")
#: The keywords of `make translations` (Makefile: BABEL_KEYWORDS), besides Babel's defaults.
KEYWORDS = ("_l", "lazy_gettext", "lazy_pgettext:1c,2", "N_")


def po_path(language: str) -> Path:
    return TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"


def read_catalogue(language: str):
    with po_path(language).open("rb") as fh:
        return read_po(fh, locale=language)


def compile_catalogues() -> None:
    for language in LANGUAGES:
        po = po_path(language)
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        catalogue = read_catalogue(language)
        tmp = mo.with_suffix(".mo.tmp")
        with tmp.open("wb") as fh:
            write_mo(fh, catalogue)
        tmp.replace(mo)  # atomic: a parallel test run never reads half a file


def extract(pot: Path) -> None:
    """Run the extraction of `make translations` into ``pot``."""
    keywords = [arg for keyword in KEYWORDS for arg in ("-k", keyword)]
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", *keywords,
         "--no-location", "--sort-output", "-o", str(pot), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
