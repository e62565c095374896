"""Screenshots of the console's main pages, for the README and for reviewing the look.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--widths 1366,390]

Starts Mailroom on its embedded default in a temporary folder (SQLite + embedded Redis),
seeds demo data (an administrator and a user, corporate services, mailboxes in several
states, folders, messages with a cached body, outgoing messages in every state, email log
entries), serves it on 127.0.0.1 and opens each page in Chromium (Playwright, the Debian
``chromium`` binary) at every width, as the person the page is for. Each page is written as
``<name>-<width>.png`` (full page) under ``--out``. No worker runs: no mail server is asked
anything, so the pictures show stored states only.

``make screenshots`` runs it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
from datetime import datetime, timedelta

from cryptography.fernet import Fernet
from flask import url_for
from flask_migrate import upgrade
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support.message_factory import make_account, make_folder, make_message  # noqa: E402
from webapp import create_app, email_log, service_catalog  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import (  # noqa: E402
    Account,
    LogLevel,
    LogSource,
    MessageBody,
    Notification,
    OutgoingMessage,
)
from webapp.queue import start_embedded, stop_embedded  # noqa: E402
from webapp.users import create_user  # noqa: E402

CHROMIUM = os.environ.get("MAILROOM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
PASSWORDS = {"admin": "admin-demo-password", "alice": "alice-demo-password"}
LONG_ERROR = (
    "Authentication failed: the server answered [AUTHENTICATIONFAILED] Invalid credentials "
    "(Failure) for alice.longname-with-a-very-long-local-part@subsidiary.example-corporation.com; "
    "check the password or create an app password."
)

#: What sticks out past the window's right edge (the innermost such elements), or null.
OVERFLOW = """() => {
  const width = window.innerWidth;
  if (document.documentElement.scrollWidth <= width) return null;
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const r = el.getBoundingClientRect();
    const inner = [...el.children].some((c) => c.getBoundingClientRect().right > width + 0.5);
    if (r.right > width + 0.5 && !inner) out.push(`${el.tagName}.${[...el.classList].join(".")}`);
    if (out.length >= 5) break;
  }
  return {scrollWidth: document.documentElement.scrollWidth, culprits: out};
}"""

#: (file name, who looks, endpoint, its arguments as names of seeded ids). A page whose
#: endpoint this version lacks is left out.
PAGES = [
    ("login", None, "auth.login", {}),
    ("mailboxes", "alice", "mailboxes.index", {}),
    ("mailbox-connect", "alice", "mailboxes.connect", {}),
    ("mailbox-edit", "alice", "mailboxes.edit", {"account_id": "account_id"}),
    ("mailbox-folders", "alice", "mailboxes.folders", {"account_id": "account_id"}),
    ("mailbox-filters", "alice", "mailboxes.filters_page", {"account_id": "account_id"}),
    ("messages", "alice", "messages.index", {}),
    ("message", "alice", "messages.show", {"message_id": "message_id"}),
    ("compose", "alice", "compose.compose", {}),
    ("outgoing", "alice", "compose.outgoing", {}),
    ("outgoing-status", "alice", "compose.status", {"outgoing_id": "failed_id"}),
    ("profile", "alice", "profile.index", {}),
    ("user-log", "alice", "mailboxes.log", {}),
    ("admin-services", "admin", "admin.services", {}),
    ("admin-service-form", "admin", "admin.edit_service", {"service_id": "service_id"}),
    ("admin-users", "admin", "admin.users", {}),
    ("admin-log", "admin", "admin.log", {}),
    ("admin-operations", "admin", "admin.operations_page", {}),
    ("admin-oauth-apps", "admin", "admin.oauth_apps_list", {}),
    ("admin-senders", "admin", "admin.senders", {}),
    ("error-404", "alice", None, {}),
]


def build_app(instance: str):
    config = {
        "INSTANCE_PATH": instance,
        "SQLALCHEMY_DATABASE_URI": "sqlite:///" + os.path.join(instance, "demo.sqlite3"),
        "REDIS_URL": start_embedded(instance),
        "SECRET_KEYS": Fernet.generate_key().decode(),
        "SECRET_KEY": os.urandom(16).hex(),
    }
    app = create_app(config)
    with app.app_context():
        upgrade()
    return app


def seed(app) -> dict:
    """Demo data: what an administrator and a user of a small company would have."""
    with app.app_context():
        admin = create_user("admin", PASSWORDS["admin"], admin=True)
        alice = create_user("alice", PASSWORDS["alice"])
        service_catalog.sync_builtin_services()
        corp = service_catalog.create_service(
            service_catalog.clean_service(
                {
                    "name": "Corporate mail (Dovecot)",
                    "imap": {"host": "imap.corp.example", "port": 993, "security": "tls"},
                    "smtp": {"host": "smtp.corp.example", "port": 465, "security": "tls"},
                }
            )
        )
        main = make_account(alice.id, "alice@corp.example", description="Work", is_main=True)
        shared = make_account(alice.id, "sales@corp.example", description="Sales desk")
        broken = make_account(
            alice.id, "alice.longname-with-a-very-long-local-part@subsidiary.example-corporation.com"
        )
        main.state, shared.state = "connected", "connection_error"
        broken.state, broken.last_error = "auth_error", LONG_ERROR
        broken.last_error_at = shared.last_error_at = datetime(2026, 11, 29, 8, 15)
        shared.last_error = "The server did not answer within 20 s (imap.corp.example:993)."
        ids = {"account_id": main.id, "service_id": corp.id}
        ids.update(_seed_messages(main))
        ids.update(_seed_outgoing(alice, main))
        _seed_log(admin, main, broken)
        db.session.add(
            Notification(
                user_id=alice.id,
                account_id=shared.id,
                kind="demo",
                level="warning",
                message="The service of sales@corp.example answers slowly; syncs may lag.",
            )
        )
        db.session.commit()
        db.session.remove()
        return ids


def _seed_messages(account: Account) -> dict:
    inbox = make_folder(account, "INBOX", "inbox", display_name="Inbox")
    for name, role in (("Sent", "sent"), ("Drafts", "drafts"), ("Trash", "trash"), ("Projects", None)):
        make_folder(account, name, role)
    people = [("Carol Jones", "carol@partner.example"), ("Dan Miller", "dan@supplier.example")]
    first = None
    for i in range(12):
        name, addr = people[i % 2]
        m = make_message(
            inbox,
            subject=["Quarterly figures", "Invoice 2026-031", "Meeting on Thursday"][i % 3] + f" ({i + 1})",
            from_addr=addr,
            from_name=name,
            to=("alice@corp.example",),
            date=datetime(2026, 11, 20, 9, 0) + timedelta(hours=5 * i),
            message_id=f"<demo-{i}@partner.example>",
            flagged=i % 5 == 0,
            seen=i % 3 != 0,
            preview="Hello Alice, please find the figures for the third quarter attached; the totals",
        )
        first = first or m
    raw = (
        "From: Carol Jones <carol@partner.example>\r\nTo: alice@corp.example\r\n"
        "Subject: Quarterly figures (1)\r\nMessage-ID: <demo-0@partner.example>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Hello Alice,\r\n\r\nplease find the figures for the third quarter below.\r\n\r\n"
        "A very long link: https://reports.partner.example/q3/" + "x" * 180 + "\r\n\r\nCarol\r\n"
    )
    db.session.add(MessageBody(message_pk=first.id, raw=raw.encode()))
    db.session.commit()
    return {"message_id": first.id, "folder_id": inbox.id}


def _seed_outgoing(user, account: Account) -> dict:
    now = datetime.utcnow()
    rows = {}
    for i, (state, subject) in enumerate(
        (
            ("sent", "Offer for the new office"),
            ("failed", "Contract draft"),
            ("scheduled", "Reminder: quarterly review"),
            ("queued", "Minutes of today's meeting"),
            ("cancelled", "Old announcement"),
        )
    ):
        row = OutgoingMessage(
            user_id=user.id,
            account_id=account.id,
            from_addr=account.email,
            to_addrs=json.dumps(["carol@partner.example"]),
            subject=subject,
            text_body="Hello Carol,\n\nsee below.\n",
            message_id=f"<out-{i}@corp.example>",
            state=state,
            send_at=now + timedelta(days=1) if state == "scheduled" else None,
            sent_at=now if state == "sent" else None,
            error=LONG_ERROR if state == "failed" else None,
            error_class="auth" if state == "failed" else None,
        )
        db.session.add(row)
        db.session.flush()
        rows[f"{state}_id"] = row.id
    db.session.commit()
    return rows


def _seed_log(admin, account: Account, broken: Account) -> None:
    email_log.record(LogSource.SYNC, LogLevel.INFO, "Synced folders: 4; new: 12, flag changes: 0, removed: 0 (4 FETCH, 1.2 s).", account=account)
    email_log.record(LogSource.IMAP_AUTH, LogLevel.ERROR, LONG_ERROR, account=broken)
    email_log.record(LogSource.SMTP_AUTH, LogLevel.WARNING, "The server is slow to answer.", account=account)
    email_log.record(
        LogSource.ADMIN, LogLevel.INFO, "Changed the company signature.", user=admin, created_by="admin"
    )
    db.session.commit()


def page_urls(app, ids: dict) -> list[tuple[str, str | None, str]]:
    out = []
    with app.test_request_context():
        for name, who, endpoint, args in PAGES:
            if endpoint is None:
                out.append((name, who, "/no-such-page"))
            elif endpoint in app.view_functions:
                out.append((name, who, url_for(endpoint, **{a: ids[v] for a, v in args.items()})))
    return out


def take(base: str, pages, out: str, widths: list[int], language: str | None = None) -> list[str]:
    os.makedirs(out, exist_ok=True)
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for width in widths:
            contexts = {}
            for name, who, path in pages:
                if who not in contexts:
                    contexts[who] = signed_in(browser, base, who, width, language)
                page = contexts[who]
                page.goto(base + path)
                try:
                    page.wait_for_load_state("networkidle", timeout=3_000)
                except Exception:  # a polling page never goes idle; what it shows now is the picture
                    pass
                wide = page.evaluate(OVERFLOW)
                if wide:
                    print(f"{name} at {width} px scrolls sideways: {wide}")
                file = os.path.join(out, f"{name}-{width}.png")
                page.screenshot(path=file, full_page=True)
                written.append(file)
            for page in contexts.values():
                page.context.close()
        browser.close()
    return written


def signed_in(browser, base: str, who: str | None, width: int, language: str | None = None):
    """A page signed in as ``who`` (None: signed out), its browser asking for ``language`` if given."""
    viewport = {"width": width, "height": 900 if width > 600 else 844}
    context = browser.new_context(viewport=viewport, **({"locale": language} if language else {}))
    page = context.new_page()
    if who:
        page.goto(base + "/login")
        page.fill("#username", who)
        page.fill("#password", PASSWORDS[who])
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url)
    return page


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--widths", default="1366,390")
    parser.add_argument("--pages", default="", help="only these names, comma-separated (admin-services,…)")
    parser.add_argument("--language", default=None, help="the browser's language (it, pl); default English")
    args = parser.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="mailroom-shots-") as instance:
        app = build_app(instance)
        try:
            ids = seed(app)
            server = make_server("127.0.0.1", 0, app, threaded=True)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                pages = [p for p in page_urls(app, ids) if not args.pages or p[0] in args.pages.split(",")]
                files = take(f"http://127.0.0.1:{server.server_port}", pages, args.out, widths, args.language)
            finally:
                server.shutdown()
        finally:
            stop_embedded(instance)
    print(f"{len(files)} screenshots in {args.out}")


if __name__ == "__main__":
    main()
