"""Browser fixtures: the app served on a real port (CSRF on), headless Chromium through Playwright.

Playwright's own browser download does not work on these machines, so the
Debian ``chromium`` binary is launched instead (see /work/shared/NOTES.md).
On a failing test, a screenshot of every open page goes into the test's
pytest tmp dir.  With ``MAILROOM_SHOTS=/some/dir`` set, the tests also save
a few named screenshots there (see :func:`shot`), for looking at the pages.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from flask import Flask
from werkzeug.serving import make_server

from webapp.extensions import db

CHROMIUM = os.environ.get("MAILROOM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DEFAULT_TIMEOUT_MS = 10_000
USERS = (("admin", True), ("alice", False), ("bob", False))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@dataclass
class LiveServer:
    url: str
    app: Flask
    users: dict = field(default_factory=dict)

    def password(self, name: str) -> str:
        return f"{name}-console-pw"


@contextmanager
def serve(app: Flask, users: dict, worker_dir=None) -> Iterator[LiveServer]:
    """Serve ``app`` on 127.0.0.1:<free port> (and run a real ``mailroom worker`` when
    ``worker_dir`` is given, for pages whose buttons enqueue jobs); stop both afterwards."""
    from tests.support.job_worker import WorkerProcess

    worker = WorkerProcess(app, worker_dir, burst=False).start().wait_ready() if worker_dir else None
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="live-server", daemon=True
    )
    thread.start()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{server.server_port}", app=app, users=users)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        if worker is not None:
            worker.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def live_server(make_app):
    """The app with CSRF on, the three users of ``users`` created, served on 127.0.0.1:<free port>."""
    from webapp.users import create_user

    app = make_app(WTF_CSRF_ENABLED=True)
    users = {}
    with app.app_context():
        for name, admin in USERS:
            user = create_user(name, f"{name}-console-pw", admin=admin)
            users[name] = {"id": user.id, "password": f"{name}-console-pw"}
        db.session.remove()
    with serve(app, users) as live:
        yield live


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, request, tmp_path):
    """A factory of pages, each in its own context (own cookies: one per logged-in person)."""
    contexts = []

    def make():
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    failed = any(
        getattr(request.node, f"rep_{when}", None) and getattr(request.node, f"rep_{when}").failed
        for when in ("setup", "call")
    )
    for i, context in enumerate(contexts):
        if failed:
            for j, pg in enumerate(context.pages):
                try:
                    pg.screenshot(path=str(tmp_path / f"failure-{i}-{j}.png"), full_page=True)
                except Exception:  # a crashed page must not hide the real failure
                    pass
        context.close()
    if failed and contexts:
        print(f"\nbrowser screenshots of the failure: {tmp_path}")


@pytest.fixture
def page(new_page):
    return new_page()


def login(page, live_server, username: str, password: str | None = None):
    """Log in through the form; ends on the page the console lands on (My mailboxes)."""
    page.goto(live_server.url + "/login")
    page.fill("#username", username)
    page.fill("#password", password or live_server.password(username))
    page.click("button[type=submit]:has-text('Log in')")
    page.wait_for_url(lambda url: "/login" not in url)
    return page


def shot(page, name: str) -> None:
    """Save a full-page screenshot under $MAILROOM_SHOTS (only when that is set)."""
    folder = os.environ.get("MAILROOM_SHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)
