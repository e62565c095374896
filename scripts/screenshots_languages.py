"""Screenshots of pages in Italian and Polish (issue 15), next to scripts/screenshots.py.

    .venv/bin/python scripts/screenshots_languages.py [--languages it,pl] [--pages admin-services]
                                                      [--widths 1366] [--out docs/screenshots]

Seeds the same demo data as scripts/screenshots.py (its ``build_app``, ``seed`` and ``page_urls``)
and opens each page in a Chromium whose language is the one asked for (the browser's
``Accept-Language``: the demo users chose none, so the console follows the browser). Each page is
written as ``<name>-<language>-<width>.png``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading

from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import screenshots as shots  # noqa: E402  (the demo data and pages of scripts/screenshots.py)

from webapp.queue import stop_embedded  # noqa: E402


def take(base: str, pages, out: str, widths: list[int], languages: list[str]) -> list[str]:
    os.makedirs(out, exist_ok=True)
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shots.CHROMIUM, args=shots.CHROMIUM_ARGS)
        for language in languages:
            for width in widths:
                contexts = {}
                for name, who, path in pages:
                    if who not in contexts:
                        contexts[who] = shots.signed_in(browser, base, who, width, language)
                    page = contexts[who]
                    page.goto(base + path)
                    try:
                        page.wait_for_load_state("networkidle", timeout=3_000)
                    except Exception:  # a polling page never goes idle; what it shows now is the picture
                        pass
                    lang = page.evaluate("document.documentElement.lang")
                    if lang != language:
                        raise SystemExit(f"{name}: the page is in {lang!r}, not {language!r}")
                    file = os.path.join(out, f"{name}-{language}-{width}.png")
                    page.screenshot(path=file, full_page=True)
                    written.append(file)
                for page in contexts.values():
                    page.context.close()
        browser.close()
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--languages", default="it,pl")
    parser.add_argument("--widths", default="1366")
    parser.add_argument("--pages", default="admin-services", help="page names of scripts/screenshots.py")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="mailroom-shots-") as instance:
        app = shots.build_app(instance)
        try:
            ids = shots.seed(app)
            server = make_server("127.0.0.1", 0, app, threaded=True)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                wanted = args.pages.split(",")
                pages = [p for p in shots.page_urls(app, ids) if p[0] in wanted]
                files = take(
                    f"http://127.0.0.1:{server.server_port}",
                    pages,
                    args.out,
                    [int(w) for w in args.widths.split(",")],
                    args.languages.split(","),
                )
            finally:
                server.shutdown()
        finally:
            stop_embedded(instance)
    print(f"{len(files)} screenshots in {args.out}: {', '.join(os.path.basename(f) for f in files)}")


if __name__ == "__main__":
    main()
