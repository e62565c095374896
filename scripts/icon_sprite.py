"""Build webapp/static/vendor/lucide/icons.svg: the Lucide icons the console uses, as one SVG sprite.

    cd /tmp && npm pack lucide-static@1.62.0 && tar xzf lucide-static-1.62.0.tgz
    .venv/bin/python scripts/icon_sprite.py /tmp/package/icons

Each icon becomes ``<symbol id="NAME">``; templates draw one with ``icon(NAME, label)`` from
templates/_icons.html (``<svg><use href="…/icons.svg#NAME">``). To use a new icon, add its name
to ICONS and run this again; only the icons listed here are shipped.
"""

from __future__ import annotations

import os
import re
import sys

VERSION = "1.62.0"
ICONS = sorted(
    """
    activity arrow-down at-sign arrow-left arrow-right arrow-up ban calendar-clock check circle circle-check
    circle-help circle-x clock copy eye eye-off filter flag folder folder-tree forward house inbox
    key-round lock log-out mail mail-open mails menu paperclip pencil plug plus refresh-cw reply
    reply-all scroll-text send server settings signature square-pen star trash-2 triangle-alert
    user users x
    """.split()
)
OUT = os.path.join(os.path.dirname(__file__), "..", "webapp", "static", "vendor", "lucide", "icons.svg")


def symbol(folder: str, name: str) -> str:
    with open(os.path.join(folder, f"{name}.svg")) as fh:
        text = fh.read()
    body = re.search(r"<svg[^>]*>(.*)</svg>", text, re.S).group(1)
    shapes = " ".join(line.strip() for line in body.strip().splitlines())
    return f'<symbol id="{name}" viewBox="0 0 24 24">{shapes}</symbol>'


def main(folder: str) -> None:
    symbols = "\n".join(symbol(folder, name) for name in ICONS)
    with open(OUT, "w") as fh:
        fh.write(
            f"<!-- lucide-static v{VERSION} (ISC licence, see LICENSE beside this file); "
            f"built by scripts/icon_sprite.py -->\n"
            '<svg xmlns="http://www.w3.org/2000/svg">\n' + symbols + "\n</svg>\n"
        )
    print(f"{len(ICONS)} icons -> {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main(sys.argv[1])
