"""In Chromium: "Sync now" shows the sync's progress live, then its result and the last sync time,
without reloading; a real ``mailroom worker`` runs the job against the real Dovecot."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.servers.proxy import CuttingProxy
from tests.support.sync_support import folder_id, make_mailbox, server_flags, stored_flags

from .conftest import USERS, login, serve

pytestmark = pytest.mark.browser


@pytest.fixture
def live(make_app, clean_dovecot, tmp_path):
    from webapp import settings_store
    from webapp.extensions import db
    from webapp.users import create_user

    app = make_app(WTF_CSRF_ENABLED=True)
    users = {}
    with app.app_context():
        settings_store.update({"allowed_internal_hosts": ["127.0.0.1"]})
        for name, admin in USERS:
            users[name] = {"id": create_user(name, f"{name}-console-pw", admin=admin).id}
        db.session.commit()
        db.session.remove()
    with serve(app, users, worker_dir=tmp_path) as live:
        yield live


@pytest.fixture
def slow_link(clean_dovecot):
    with CuttingProxy("127.0.0.1", clean_dovecot.imap_port, bytes_per_second=250_000) as link:
        yield link


def test_sync_now_shows_progress_then_result(live, page, clean_dovecot, slow_link):
    from webapp.extensions import db
    from webapp.models import User

    clean_dovecot.add_messages("alice", 3000)
    # slow_link (about 250 KB/s) so the sync lasts a few seconds and its progress can be seen;
    # on loopback 3,000 messages sync in 0.4 s, faster than the page's first poll.
    with live.app.app_context():
        account = make_mailbox(clean_dovecot, owner=db.session.get(User, live.users["alice"]["id"]))
        account.imap_port = slow_link.port
        db.session.commit()
        account_id = account.id
        db.session.remove()
    login(page, live, "alice")
    row = page.locator(f'tbody[data-account-id="{account_id}"]')
    row.get_by_role("button", name="Sync now").click()
    expect(row.locator(".sync-progress")).to_have_text(
        re.compile(r"Folder 1 of 1 · [\d,]+ of 3,000"), timeout=60_000
    )
    expect(row.locator(".sync-result")).to_contain_text("new: 3000,", timeout=120_000)
    expect(row.locator(".last-sync")).to_contain_text("synced")
    assert "/mailboxes" in page.url  # no navigation happened
    with live.app.app_context():
        from webapp.models import Account

        account = db.session.get(Account, account_id)
        assert stored_flags(folder_id(account)) == server_flags(clean_dovecot)
        db.session.remove()


@pytest.fixture
def live_fast_waits(make_app, clean_dovecot, tmp_path):
    from webapp import settings_store
    from webapp.extensions import db
    from webapp.users import create_user

    app = make_app(WTF_CSRF_ENABLED=True, CONNECTION_WAIT_SECONDS=0.5)
    users = {}
    with app.app_context():
        settings_store.update({"allowed_internal_hosts": ["127.0.0.1"]})
        for name, admin in USERS:
            users[name] = {"id": create_user(name, f"{name}-console-pw", admin=admin).id}
        db.session.commit()
        db.session.remove()
    with serve(app, users, worker_dir=tmp_path) as live:
        yield live


def test_sync_now_with_no_free_connection_says_it_waits(live_fast_waits, page, clean_dovecot):
    """The service allows one connection at a time and another worker holds it: the row says the sync
    waits and when it runs again (not an error); once the connection is free the sync runs by itself."""
    from webapp.extensions import db
    from webapp.jobs import connection_slots
    from webapp.models import Account, Service, User

    live = live_fast_waits
    clean_dovecot.add_messages("alice", 2)
    with live.app.app_context():
        service = Service(name="Local Dovecot", max_connections=1)
        service.set_endpoint(
            "imap", {"host": "127.0.0.1", "port": clean_dovecot.imap_port, "security": "none"}
        )
        service.set_endpoint("smtp", {"host": "127.0.0.1", "port": 25, "security": "none"})
        db.session.add(service)
        db.session.flush()
        account = make_mailbox(clean_dovecot, owner=db.session.get(User, live.users["alice"]["id"]))
        account.manual, account.service_id = False, service.id
        db.session.commit()
        account_id = account.id
        limit = connection_slots.limit_for(account, "127.0.0.1")
        assert connection_slots.try_acquire(limit, "another-worker", 120)
        db.session.remove()
    login(page, live, "alice")
    row = page.locator(f'tbody[data-account-id="{account_id}"]')
    row.get_by_role("button", name="Sync now").click()
    waiting = row.locator(".sync-result.running")
    expect(waiting).to_contain_text("connection(s) Mailroom may hold at once", timeout=60_000)
    expect(waiting).to_contain_text("The sync runs again in about")
    with live.app.app_context():
        connection_slots.release(limit, "another-worker")
        for _ in range(300):
            db.session.expire_all()
            if db.session.get(Account, account_id).last_synced_at is not None:
                break
            page.wait_for_timeout(100)
        assert db.session.get(Account, account_id).last_sync_error is None
        assert db.session.get(Account, account_id).last_synced_at is not None
        db.session.remove()
