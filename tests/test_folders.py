"""Folders against a real Dovecot: LIST with special-use, odd and non-ASCII names, roles, API, job.

Folders are created the way another mail client would (``doveadm mailbox
create``), messages are written into the Maildir, and every name Mailroom
stores is then used as-is in a SELECT to prove it still reaches the folder.
"""

from __future__ import annotations

import pytest
from imapclient import IMAPClient

from tests.support.job_worker import run_burst
from webapp import accounts, settings_store
from webapp.extensions import db
from webapp.jobs.folders import list_folders, refresh_folders
from webapp.jobs.session import open_client
from webapp.models import Account, Folder, LogEntry, Message

ODD_NAMES = [
    "Entrata/Posta ricevuta",
    "Über",
    "[Gmail]/Posta inviata",
    "Clienti & Fornitori",
    "Work/Projects 2024",
    "dot.name",
    "Größe/Ärger & Ölkännchen",
    "日本語",
]


def make_account(user, server, login: str = "alice", password: str | None = None, **extra) -> Account:
    """A hand-entered mailbox on the local Dovecot (plain IMAP on loopback, allowed by the settings)."""
    settings_store.update({"allowed_internal_hosts": ["127.0.0.1"]})
    data = {
        "manual": {
            "imap": {"host": "127.0.0.1", "port": server.imap_port, "security": "none"},
            "smtp": {"host": "127.0.0.1", "port": 2525, "security": "none"},
            "pop3": {"host": "127.0.0.1", "port": server.pop3_port, "security": "none"},
        },
        "username": login,
        "email": f"{login}@example.com",
        "password": password if password is not None else server.users[login],
        **extra,
    }
    return accounts.create_account(user, accounts.clean_account(user, data))


def refresh(account: Account) -> list[Folder]:
    with open_client(account, "imap") as client:
        return refresh_folders(account, client)


def by_display(account: Account) -> dict[str, Folder]:
    return {f.display_name: f for f in Folder.query.filter_by(account_id=account.id)}


def select_count(server, login: str, raw_name: str) -> int:
    """SELECT a folder by the stored name, sent exactly as stored (no re-encoding), with another client."""
    with IMAPClient("127.0.0.1", server.imap_port, ssl=False) as other:
        other.login(login, server.users[login])
        other.folder_encode = False
        return other.select_folder(raw_name, readonly=True)[b"EXISTS"]


@pytest.fixture
def alice_box(app, users, clean_dovecot):
    return make_account(users["alice"]["user"], clean_dovecot)


# Listing and roles ---------------------------------------------------------------------------


def test_first_listing_maps_special_use_roles_and_syncs_only_inbox(alice_box, clean_dovecot):
    clean_dovecot.add_messages("alice", 3)
    clean_dovecot.add_messages("alice", 2, folder="Sent")
    folders = refresh(alice_box)

    assert folders[0].name == "INBOX"
    rows = by_display(alice_box)
    assert set(rows) == {"INBOX", "Drafts", "Sent", "Junk", "Trash"}
    assert {name: f.role for name, f in rows.items()} == {
        "INBOX": "inbox",
        "Drafts": "drafts",
        "Sent": "sent",
        "Junk": "spam",
        "Trash": "trash",
    }
    assert {name: f.special_use for name, f in rows.items()} == {
        "INBOX": None,
        "Drafts": "\\Drafts",
        "Sent": "\\Sent",
        "Junk": "\\Junk",
        "Trash": "\\Trash",
    }
    assert [name for name, f in rows.items() if f.sync] == ["INBOX"]
    assert rows["INBOX"].message_count == 3 and rows["Sent"].message_count == 2  # LIST-STATUS
    assert all(f.delimiter == "/" and f.exists_on_server for f in rows.values())
    assert "\\Sent" in rows["Sent"].attributes.split()


def test_odd_and_non_ascii_names_round_trip(alice_box, clean_dovecot):
    for i, name in enumerate(ODD_NAMES, start=1):
        clean_dovecot.create_folder("alice", name)
        clean_dovecot.add_messages("alice", i, folder=name)
    refresh(alice_box)
    rows = by_display(alice_box)

    assert set(ODD_NAMES) <= set(rows)
    assert rows["Über"].name == "&ANw-ber"  # modified UTF-7, as the server sent it
    assert rows["Clienti & Fornitori"].name == "Clienti &- Fornitori"
    assert rows["日本語"].name == "&ZeVnLIqe-"
    assert rows["[Gmail]/Posta inviata"].name == "[Gmail]/Posta inviata"
    for i, name in enumerate(ODD_NAMES, start=1):
        row = rows[name]
        assert row.name.isascii()
        assert select_count(clean_dovecot, "alice", row.name) == i, name
        assert row.message_count == i
    # Parents that only group others are listed, and cannot be synced or hold a role.
    for parent in ("Entrata", "[Gmail]", "Work", "Größe"):
        assert rows[parent].exists_on_server and not rows[parent].sync
        assert {"\\noselect", "\\nonexistent"} & {a.lower() for a in rows[parent].attributes.split()}
    assert rows["Entrata/Posta ricevuta"].delimiter == "/"

    # The connection Mailroom itself uses reaches the folders by the stored names too.
    with open_client(alice_box, "imap") as client:
        client.imap.folder_encode = False
        for name in ODD_NAMES:
            assert client.imap.select_folder(rows[name].name, readonly=True)[b"EXISTS"] >= 1


def test_dot_delimiter(app, users, dovecot_factory):
    server = dovecot_factory(ssl=False, separator=".")
    account = make_account(users["alice"]["user"], server)
    for name in ("Lavoro.Progetti 2024", "Über.Ärger", "Entrata.Posta ricevuta", "A/B"):
        server.create_folder("alice", name)
    server.add_messages("alice", 2, folder="Lavoro.Progetti 2024")
    server.add_messages("alice", 1, folder="A/B")
    refresh(account)
    rows = by_display(account)

    assert {"Lavoro", "Lavoro.Progetti 2024", "Über.Ärger", "Entrata.Posta ricevuta", "A/B"} <= set(rows)
    assert all(f.delimiter == "." for f in rows.values())
    assert rows["Über.Ärger"].name == "&ANw-ber.&AMQ-rger"
    assert select_count(server, "alice", rows["Lavoro.Progetti 2024"].name) == 2
    assert select_count(server, "alice", rows["A/B"].name) == 1
    assert rows["Sent"].role == "sent"


def test_provider_plugins_fill_roles_without_special_use(app, users, dovecot_factory):
    # No SPECIAL-USE flags at all: Gmail's Italian names and generic German ones are recognised.
    server = dovecot_factory(ssl=False, special_use={})
    account = make_account(users["alice"]["user"], server)
    for name in ("[Gmail]/Posta inviata", "[Gmail]/Bozze", "[Gmail]/Cestino", "[Gmail]/Spam", "Papierkorb"):
        server.create_folder("alice", name)
    refresh(account)
    roles = {f.display_name: f.role for f in Folder.query.filter_by(account_id=account.id) if f.role}
    assert roles == {
        "INBOX": "inbox",
        "[Gmail]/Posta inviata": "sent",
        "[Gmail]/Bozze": "drafts",
        "[Gmail]/Spam": "spam",
        "[Gmail]/Cestino": "trash",  # the provider plugin outranks the generic "Papierkorb"
    }


def test_user_role_choices_survive_refresh(alice_box, clean_dovecot, api):
    clean_dovecot.create_folder("alice", "Posta inviata")
    refresh(alice_box)
    rows = by_display(alice_box)
    url = f"/api/v1/accounts/{alice_box.id}/folders/"

    # Sent moves to "Posta inviata" (the old holder loses it), Spam is set to none, Archive-like sync on.
    r = api["alice"].patch(url + str(rows["Posta inviata"].id), json={"role": "sent", "sync": True})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["role"] == "sent" and r.get_json()["sync"] is True
    assert api["alice"].patch(url + str(rows["Junk"].id), json={"role": None}).status_code == 200
    assert api["alice"].patch(url + str(rows["INBOX"].id), json={"sync": False}).status_code == 200

    clean_dovecot.create_folder("alice", "Nuova")
    db.session.expire_all()
    refresh(alice_box)
    db.session.expire_all()
    rows = by_display(alice_box)
    assert rows["Posta inviata"].role == "sent" and rows["Posta inviata"].sync
    assert rows["Sent"].role is None
    assert rows["Junk"].role is None  # "no Spam folder" is a choice too
    assert not rows["INBOX"].sync
    assert rows["Nuova"].role is None and not rows["Nuova"].sync
    assert Folder.query.filter_by(account_id=alice_box.id, role="sent").count() == 1

    # And back: between the two moves one goes to a lower id (updated first within a flush), so the
    # old holder must be cleared in an earlier flush or the partial unique index refuses the change.
    assert rows["Sent"].id != rows["Posta inviata"].id
    r = api["alice"].patch(url + str(rows["Sent"].id), json={"role": "sent"})
    assert r.status_code == 200, r.get_json()
    db.session.expire_all()
    assert [f.display_name for f in Folder.query.filter_by(account_id=alice_box.id, role="sent")] == ["Sent"]


def test_vanished_folder_keeps_its_messages_and_comes_back(alice_box, clean_dovecot, api):
    clean_dovecot.create_folder("alice", "Old & Gone")
    refresh(alice_box)
    old = by_display(alice_box)["Old & Gone"]
    db.session.add(Message(account_id=alice_box.id, folder_id=old.id, uid=1, subject="kept"))
    db.session.commit()
    old_id = old.id

    clean_dovecot.delete_folder("alice", "Old & Gone")
    listed = refresh(alice_box)
    assert "Old & Gone" not in {f.display_name for f in listed}
    db.session.expire_all()
    old = db.session.get(Folder, old_id)
    assert old.exists_on_server is False
    assert Message.query.filter_by(folder_id=old_id).count() == 1
    r = api["alice"].patch(f"/api/v1/accounts/{alice_box.id}/folders/{old_id}", json={"sync": True})
    assert r.status_code == 422 and "sync" in r.get_json()["fields"]

    clean_dovecot.create_folder("alice", "Old & Gone")
    refresh(alice_box)
    db.session.expire_all()
    assert db.session.get(Folder, old_id).exists_on_server is True
    assert Folder.query.filter_by(account_id=alice_box.id, name="Old &- Gone").count() == 1


def test_role_of_a_renamed_folder_moves_to_its_new_name(app, users, dovecot_factory):
    server = dovecot_factory(ssl=False, special_use={})
    account = make_account(users["alice"]["user"], server)
    server.create_folder("alice", "Inviata")
    refresh(account)
    assert by_display(account)["Inviata"].role == "sent"

    server.rename_folder("alice", "Inviata", "Posta inviata")
    refresh(account)
    db.session.expire_all()
    rows = by_display(account)
    assert rows["Inviata"].role is None and not rows["Inviata"].exists_on_server
    assert rows["Posta inviata"].role == "sent"


# API -----------------------------------------------------------------------------------------


def test_api_lists_folders_with_their_fields(alice_box, clean_dovecot, api):
    clean_dovecot.create_folder("alice", "Über")
    refresh(alice_box)
    r = api["alice"].get(f"/api/v1/accounts/{alice_box.id}/folders")
    assert r.status_code == 200
    body = r.get_json()
    assert body[0]["name"] == "INBOX" and body[0]["role"] == "inbox" and body[0]["sync"] is True
    uber = next(f for f in body if f["display_name"] == "Über")
    assert uber["name"] == "&ANw-ber" and uber["delimiter"] == "/"
    assert set(uber) >= {
        "id",
        "name",
        "display_name",
        "delimiter",
        "attributes",
        "special_use",
        "role",
        "sync",
        "exists_on_server",
        "message_count",
        "last_synced_at",
        "last_error",
    }
    sent = next(f for f in body if f["display_name"] == "Sent")
    assert sent["special_use"] == "\\Sent" and "\\Sent" in sent["attributes"]


def test_api_owner_or_admin_only(alice_box, clean_dovecot, api, client, users):
    refresh(alice_box)
    folder = by_display(alice_box)["Sent"]
    base = f"/api/v1/accounts/{alice_box.id}/folders"
    assert client.get(base).status_code == 401
    assert api["bob"].get(base).status_code == 404
    assert api["bob"].patch(f"{base}/{folder.id}", json={"sync": True}).status_code == 404
    assert api["bob"].post(base + "/refresh").status_code == 404
    assert api["admin"].get(base).status_code == 200
    # A folder id of another mailbox, reached through one's own mailbox: 404 as well.
    bob_box = make_account(users["bob"]["user"], clean_dovecot, "bob")
    r = api["bob"].patch(f"/api/v1/accounts/{bob_box.id}/folders/{folder.id}", json={"sync": True})
    assert r.status_code == 404
    assert api["alice"].patch(f"{base}/999999", json={"sync": True}).status_code == 404


def test_api_patch_validation(alice_box, clean_dovecot, api):
    clean_dovecot.create_folder("alice", "Entrata/Posta ricevuta")
    refresh(alice_box)
    rows = by_display(alice_box)
    url = f"/api/v1/accounts/{alice_box.id}/folders/{rows['Sent'].id}"
    cases = [
        ({"sync": "yes"}, "sync"),
        ({"sync": 1}, "sync"),
        ({"role": "archive"}, "role"),
        ({"role": "Sent"}, "role"),
        ({"colour": "red"}, "colour"),
    ]
    for body, field in cases:
        r = api["alice"].patch(url, json=body)
        assert r.status_code == 422, body
        assert field in r.get_json()["fields"], r.get_json()
    assert api["alice"].patch(url, data="sync=1", headers={"Content-Type": "text/plain"}).status_code == 400
    assert api["alice"].patch(url, json=["sync"]).status_code == 400

    parent = f"/api/v1/accounts/{alice_box.id}/folders/{rows['Entrata'].id}"
    r = api["alice"].patch(parent, json={"sync": True})
    assert r.status_code == 422 and "Noselect" in r.get_json()["fields"]["sync"]
    r = api["alice"].patch(parent, json={"role": "sent"})
    assert r.status_code == 422 and "role" in r.get_json()["fields"]
    db.session.expire_all()
    assert not db.session.get(Folder, rows["Entrata"].id).sync
    assert db.session.get(Folder, rows["Sent"].id).role == "sent"  # nothing changed by refused requests


def test_api_refresh_runs_the_job(alice_box, clean_dovecot, api):
    clean_dovecot.create_folder("alice", "Über")
    r = api["alice"].post(f"/api/v1/accounts/{alice_box.id}/folders/refresh")
    assert r.status_code == 202
    job = r.get_json()
    assert r.headers["Location"] == job["status_url"]
    db.session.remove()
    run_burst()
    status = api["alice"].get(job["status_url"]).get_json()
    assert status["status"] == "finished" and status["kind"] == "list_folders"
    # People read the result: the decoded name, never the wire's modified UTF-7 (issue 12, point 4).
    assert status["result"]["ok"] is True and "Über" in status["result"]["new"]
    assert "&ANw-ber" not in status["result"]["new"]
    assert api["bob"].get(job["status_url"]).status_code == 404
    names = {
        f["display_name"] for f in api["alice"].get(f"/api/v1/accounts/{alice_box.id}/folders").get_json()
    }
    assert {"INBOX", "Über", "Sent"} <= names


def test_api_refresh_refused_for_pop3_mailbox(app, users, clean_dovecot, api):
    account = make_account(users["alice"]["user"], clean_dovecot, incoming_protocol="pop3")
    r = api["alice"].post(f"/api/v1/accounts/{account.id}/folders/refresh")
    assert r.status_code == 409


# The job -------------------------------------------------------------------------------------


def test_job_lists_and_logs(alice_box, clean_dovecot):
    result = list_folders(alice_box.id)
    assert result["ok"] is True and result["folders"] == 5 and "INBOX" in result["new"]
    db.session.expire_all()
    assert db.session.get(Account, alice_box.id).state == "connected"
    entry = LogEntry.query.filter_by(account_id=alice_box.id, source="Sync").one()
    assert entry.level == "info" and "5 folders" in entry.message

    clean_dovecot.delete_folder("alice", "Trash")
    again = list_folders(alice_box.id)
    # Trash is auto-created by the configuration, so it comes straight back; nothing is gone.
    assert again["ok"] is True and again["new"] == []


def test_job_auth_failure_marks_the_mailbox(app, users, clean_dovecot):
    account = make_account(users["alice"]["user"], clean_dovecot, password="wrong-password-1")
    result = list_folders(account.id)
    assert result["ok"] is False and result["error"]["class"] == "auth"
    db.session.expire_all()
    account = db.session.get(Account, account.id)
    assert account.state == "auth_error" and account.last_error.startswith("IMAP:")
    entry = LogEntry.query.filter_by(account_id=account.id, source="IMAP Auth").one()
    assert entry.level == "error" and "Folder list failed" in entry.message
    assert "wrong-password-1" not in (entry.details or "") + entry.message
    assert Folder.query.filter_by(account_id=account.id).count() == 0


def test_job_connection_failure_is_classified(app, users, clean_dovecot):
    from tests.servers.net import free_ports

    account = make_account(users["alice"]["user"], clean_dovecot)
    account.imap_port = free_ports(1, "127.0.0.1")[0]  # nothing listens there
    db.session.commit()
    result = list_folders(account.id)
    assert result["ok"] is False and result["error"]["class"] == "refused"
    db.session.expire_all()
    assert db.session.get(Account, account.id).state == "connection_error"


def test_job_on_disabled_mailbox(app, users, clean_dovecot):
    account = make_account(users["alice"]["user"], clean_dovecot, active=False)
    result = list_folders(account.id)
    assert result == {"ok": False, "error": "The mailbox is disabled."}
    assert list_folders(999999)["ok"] is False


# Page ----------------------------------------------------------------------------------------


def test_page_saves_sync_and_roles_and_validates(alice_box, clean_dovecot, client, users):
    from tests.conftest import login

    clean_dovecot.create_folder("alice", "Entrata/Posta ricevuta")
    clean_dovecot.create_folder("alice", "Über")
    refresh(alice_box)
    rows = by_display(alice_box)
    login(client, "alice", users["alice"]["password"])
    url = f"/mailboxes/{alice_box.id}/folders"
    html = client.get(url).get_data(as_text=True)
    assert "Über" in html and "Posta ricevuta" in html and "Sent folder" in html

    form = {
        "sync": [str(rows["Über"].id), str(rows["INBOX"].id)],
        "role_inbox": str(rows["INBOX"].id),
        "role_drafts": "",
        "role_sent": str(rows["Entrata/Posta ricevuta"].id),
        "role_spam": str(rows["Junk"].id),
        "role_trash": str(rows["Trash"].id),
    }
    r = client.post(url, data=form)
    assert r.status_code == 302
    db.session.expire_all()
    rows = by_display(alice_box)
    assert rows["Über"].sync and rows["INBOX"].sync and not rows["Sent"].sync
    assert rows["Entrata/Posta ricevuta"].role == "sent" and rows["Sent"].role is None
    assert rows["Drafts"].role is None

    bad = dict(form, role_trash=str(rows["Junk"].id), sync=[str(rows["Entrata"].id)])
    r = client.post(url, data=bad)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert 'data-field="role_trash"' in html and 'data-field="sync"' in html
    db.session.expire_all()
    assert by_display(alice_box)["Trash"].role == "trash"

    other = make_account(users["bob"]["user"], clean_dovecot, "bob")
    assert client.get(f"/mailboxes/{other.id}/folders").status_code == 404
    assert client.post(f"/mailboxes/{other.id}/folders/refresh").status_code == 404
    assert f'href="/mailboxes/{alice_box.id}/folders"' in client.get("/mailboxes/").get_data(as_text=True)
