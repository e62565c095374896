"""What a person reads after a sync: decoded folder names, a deleted folder's diagnosis, POP3 counts.

Real Dovecot (IMAP and POP3), a real RQ worker, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import login
from tests.support.job_worker import run_burst
from tests.support.sync_support import make_mailbox
from webapp import settings_store
from webapp.extensions import db
from webapp.jobs.folders import list_folders
from webapp.models import Account, Folder, LogEntry, Message

from .test_pop3_sync import make_account

#: Modified UTF-7 on the wire: what a person must never read.
WIRE = re.compile(r"&[A-Za-z0-9+,]+-")


@pytest.fixture
def local(app):
    settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
    db.session.commit()


@pytest.fixture
def mailbox(app, local, clean_dovecot, users):
    """Alice's mailbox with 日本語 and Entrata/Über on the server, listed and marked for sync."""
    clean_dovecot.create_folder("alice", "日本語")
    clean_dovecot.create_folder("alice", "Entrata/Über")
    clean_dovecot.add_messages("alice", 2, folder="日本語")
    clean_dovecot.add_messages("alice", 3, folder="Entrata/Über")
    account = make_mailbox(clean_dovecot, owner=users["alice"]["user"], folders=())
    assert list_folders(account.id)["ok"]
    for folder in Folder.query.filter_by(account_id=account.id):
        folder.sync = folder.display_name in ("日本語", "Entrata/Über")
    db.session.commit()
    return account


def _sync(api_client, account_id: int) -> dict:
    response = api_client.post(f"/api/v1/accounts/{account_id}/sync")
    assert response.status_code == 202, response.json
    run_burst()
    body = api_client.get(response.json["status_url"]).json
    assert body["status"] == "finished", body
    return body


def _people_text(account_id: int) -> str:
    """Every log sentence of the mailbox: what the email log page shows."""
    db.session.expire_all()
    return "\n".join(e.message for e in LogEntry.query.filter_by(account_id=account_id))


def test_folder_names_are_decoded_in_progress_results_and_log(api, mailbox):
    names = {f.name: f.display_name for f in Folder.query.filter_by(account_id=mailbox.id)}
    assert names["&ZeVnLIqe-"] == "日本語" and names["Entrata/&ANw-ber"] == "Entrata/Über"

    body = _sync(api["alice"], mailbox.id)
    assert body["result"]["ok"] and body["result"]["inserted"] == 5
    # The last folder reported in the job's live progress (folders sync in id order).
    last = Folder.query.filter_by(account_id=mailbox.id, sync=True).order_by(Folder.id.desc()).first()
    assert body["progress"]["folder_name"] == last.display_name
    assert {f["display_name"] for f in body["result"]["folders"]} == {"日本語", "Entrata/Über"}
    # The folder listing's log details and result name folders decoded too.
    refreshed = Folder.query.filter_by(account_id=mailbox.id).count()
    listing = LogEntry.query.filter(
        LogEntry.account_id == mailbox.id, LogEntry.message.like("Folder list refreshed%")
    ).one()
    assert {"日本語", "Entrata/Über"} <= set(json.loads(listing.details)["new"]) and refreshed >= 3
    assert not WIRE.search(_people_text(mailbox.id))


def test_a_folder_deleted_on_the_server_is_folder_missing_with_its_hint_and_can_be_dropped(
    app, api, client, users, mailbox, clean_dovecot
):
    first = _sync(api["alice"], mailbox.id)
    assert first["result"]["ok"]
    gone = Folder.query.filter_by(account_id=mailbox.id, display_name="Entrata/Über").one()
    gone_id = gone.id
    assert Message.query.filter_by(folder_id=gone_id).count() == 3
    clean_dovecot.delete_folder("alice", "Entrata/Über")

    body = _sync(api["alice"], mailbox.id)
    result = body["result"]
    assert result["ok"] is False
    assert 'Failed: The folder "Entrata/Über" no longer exists on the server.' in result["message"]
    (failed,) = [f for f in result["folders"] if f["error"]]
    assert failed["error_class"] == "folder_missing" and failed["display_name"] == "Entrata/Über"
    assert "remove it from the synced folders" in failed["hint"] and "Sent or Trash" in failed["hint"]
    assert "doesn't exist" in failed["raw_error"]  # the server's own words stay, as raw text
    assert body["progress"]["folder_name"] == "日本語"

    db.session.expire_all()
    folder = db.session.get(Folder, gone_id)
    assert folder.exists_on_server is False
    assert folder.last_error.startswith('The folder "Entrata/Über" no longer exists on the server.')
    assert "status failed" not in folder.last_error and "Mailbox doesn't exist" not in folder.last_error
    account = db.session.get(Account, mailbox.id)
    assert account.last_sync_error == 'The folder "Entrata/Über" no longer exists on the server.'
    text = _people_text(mailbox.id)
    assert 'The folder "Entrata/Über" no longer exists on the server.' in text
    assert not WIRE.search(text), text

    # The folder page says so and offers to drop it; the drop needs the form's CSRF token.
    login(client, "alice", users["alice"]["password"])
    page = client.get(f"/mailboxes/{mailbox.id}/folders").get_data(as_text=True)
    assert "no longer exists on the server" in page and "remove it from the synced folders" in page
    action = f"/mailboxes/{mailbox.id}/folders/{gone_id}/remove"
    assert f'formaction="{action}"' in page
    kept = Folder.query.filter_by(account_id=mailbox.id, display_name="日本語").one()
    assert f"/folders/{kept.id}/remove" not in page  # only folders gone from the server
    response = client.post(action, data={})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Folder, gone_id) is None
    assert Message.query.filter_by(folder_id=gone_id).count() == 0
    assert Message.query.filter_by(folder_id=kept.id).count() == 2
    # The next sync is clean.
    assert _sync(api["alice"], mailbox.id)["result"]["ok"]


def test_dropping_a_folder_is_csrf_protected_and_refused_while_on_the_server(
    make_app, local, users, clean_dovecot
):
    from tests.conftest import Api

    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
        from webapp.api_tokens import issue_token
        from webapp.users import create_user

        owner = create_user("carol", "carol-console-pw")
        account = make_mailbox(clean_dovecot, owner=owner, folders=("INBOX", "Gone"))
        gone = Folder.query.filter_by(account_id=account.id, name="Gone").one()
        gone.exists_on_server = False
        inbox = Folder.query.filter_by(account_id=account.id, name="INBOX").one()
        db.session.commit()
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
            r'name="csrf_token" value="([^"]+)"', page
        )
        client.post(
            "/login", data={"username": "carol", "password": "carol-console-pw", "csrf_token": token.group(1)}
        )
        url = f"/mailboxes/{account.id}/folders/{gone.id}/remove"
        assert client.post(url, data={}).status_code == 400  # no CSRF token
        assert db.session.get(Folder, gone.id) is not None
        api = Api(client, issue_token(owner))
        still = api.delete(f"/api/v1/accounts/{account.id}/folders/{inbox.id}")
        assert still.status_code == 409 and "still on the server" in still.json["error"]
        assert api.delete(f"/api/v1/accounts/{account.id}/folders/{gone.id}").status_code == 204
        other = Api(client, issue_token(create_user("dave", "dave-console-pw")))
        assert other.delete(f"/api/v1/accounts/{account.id}/folders/{inbox.id}").status_code == 404
        db.session.remove()


def test_a_pop3_sync_result_says_what_was_downloaded(api, app, users, clean_dovecot):
    clean_dovecot.add_messages("alice", 3)
    account = make_account(users["alice"]["id"], clean_dovecot.pop3_port)
    first = _sync(api["alice"], account.id)["result"]
    assert first["ok"] and first["downloaded"] == 3
    assert first["message"] == (
        "New messages downloaded over POP3: 3 (downloaded before: 0, on the server: 3); "
        "messages are left on the server."
    )
    clean_dovecot.add_messages("alice", 1, subject="Later")
    second = _sync(api["alice"], account.id)["result"]
    assert second["message"] == (
        "New messages downloaded over POP3: 1 (downloaded before: 3, on the server: 4); "
        "messages are left on the server."
    )
    third = _sync(api["alice"], account.id)["result"]
    assert third["message"].startswith("New messages downloaded over POP3: 0 (downloaded before: 4,")

    account.pop3_leave_on_server = False
    db.session.commit()
    clean_dovecot.add_messages("alice", 2, subject="Even later")
    fourth = _sync(api["alice"], account.id)["result"]
    assert fourth["message"] == (
        "New messages downloaded over POP3: 2 (downloaded before: 4, on the server: 6); "
        "deleted from the server: 6."
    )
    logged = LogEntry.query.filter_by(account_id=account.id).order_by(LogEntry.id.desc()).first()
    assert logged.message == fourth["message"]
    assert json.loads(logged.details)["counts"]["deleted"] == 6
