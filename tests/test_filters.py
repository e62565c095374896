"""Filters against a real Dovecot: rules run on new mail during sync, "Run now", validation, the API.

The server is checked with a separate imapclient connection; the store must match the server
after the next sync (the sync engine's own invariant).
"""

from __future__ import annotations

import pytest

from connectors.sync import SyncOptions, sync_folders
from tests.support.job_worker import run_burst
from tests.support.sync_support import folder_id, imap_login, make_mailbox, server_flags, stored_flags
from webapp import filters, settings_store
from webapp.extensions import db
from webapp.jobs.sync import sync_account
from webapp.jobs.sync_store import SqlSyncStore
from webapp.models import Folder, LogEntry, LogSource, Message


def mail(sender: str, subject: str, to: str = "alice@example.com", extra: str = "", n: int = 0) -> str:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{abs(hash((sender, subject, n)))}@t>\r\n"
        f"Date: Tue, 1 Oct 2024 10:00:00 +0000\r\n{extra}\r\nBody.\r\n"
    )


@pytest.fixture
def local(app):
    settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
    db.session.commit()


@pytest.fixture
def mailbox(app, local, clean_dovecot, users):
    clean_dovecot.create_folder("alice", "Archive")
    return make_mailbox(clean_dovecot, owner=users["alice"]["user"], folders=("INBOX", "Archive"))


def rule(account, conditions, actions, match="all", name="r"):
    cleaned = filters.clean_filter(
        account, {"name": name, "match": match, "conditions": conditions, "actions": actions}
    )
    return filters.create_filter(account, cleaned)


def subjects(dovecot, folder: str) -> dict[int, str]:
    with imap_login(dovecot) as c:
        c.select_folder(folder, readonly=True)
        uids = c.search("ALL")
        fetched = c.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]) if uids else {}
        return {
            uid: item[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().split(":", 1)[1].strip()
            for uid, item in fetched.items()
        }


def assert_store_matches(dovecot, account):
    for name in ("INBOX", "Archive"):
        assert stored_flags(folder_id(account, name)) == server_flags(dovecot, name), name


def test_filter_moves_new_mail_on_the_server_and_the_store_follows(mailbox, clean_dovecot):
    d = clean_dovecot
    archive = folder_id(mailbox, "Archive")
    rule(
        mailbox,
        [{"field": "from", "op": "contains", "value": "boss@corp.test"}],
        [{"type": "move", "folder_id": archive}],
    )
    d.add_message("alice", mail("Boss <boss@corp.test>", "old one"))
    first = sync_account(mailbox.id)
    assert first["ok"] and "automation" not in first  # the first sync of a mailbox is not new mail
    assert list(subjects(d, "INBOX").values()) == ["old one"]

    d.add_message("alice", mail("Boss <boss@corp.test>", "Quarterly numbers"))
    d.add_message("alice", mail("Friend <friend@else.test>", "Lunch?"))
    result = sync_account(mailbox.id)
    assert result["automation"]["filters"] == {"matched": 1, "marked_read": 0, "flagged": 0, "moved": 1}
    assert sorted(subjects(d, "INBOX").values()) == ["Lunch?", "old one"]
    assert list(subjects(d, "Archive").values()) == ["Quarterly numbers"]
    # COPYUID let the row follow at once, under its new UID.
    moved = Message.query.filter_by(subject="Quarterly numbers").one()
    assert moved.folder_id == archive and moved.uid == 1
    assert_store_matches(d, mailbox)
    sync_account(mailbox.id)
    assert_store_matches(d, mailbox)
    assert Message.query.filter_by(subject="Quarterly numbers").count() == 1
    log = LogEntry.query.filter_by(account_id=mailbox.id, source=LogSource.INCOMING.value).all()
    assert any("Quarterly numbers" in e.message and "moved to Archive" in e.message for e in log)


def test_row_is_dropped_when_the_target_got_other_mail_and_the_next_sync_finds_it(mailbox, clean_dovecot):
    d = clean_dovecot
    archive = folder_id(mailbox, "Archive")
    rule(
        mailbox,
        [{"field": "subject", "op": "contains", "value": "invoice"}],
        [{"type": "move", "folder_id": archive}],
    )
    sync_account(mailbox.id)
    d.add_message("alice", mail("a@b.test", "Filed by hand"), folder="Archive")  # not synced yet
    d.add_message("alice", mail("shop@b.test", "Your INVOICE 42"))
    assert sync_account(mailbox.id)["automation"]["filters"]["moved"] == 1
    # Storing the moved row above the unsynced UID 1 would hide that message from the engine.
    assert sorted(subjects(d, "Archive").values()) == ["Filed by hand", "Your INVOICE 42"]
    sync_account(mailbox.id)
    assert_store_matches(d, mailbox)
    assert Message.query.filter_by(folder_id=archive).count() == 2


@pytest.mark.parametrize("use_uidplus", [True, False])
def test_move_without_move_capability(app, mailbox, clean_dovecot, use_uidplus):
    d = clean_dovecot
    app.config["FILTERS_USE_MOVE"] = False
    app.config["FILTERS_USE_UIDPLUS"] = use_uidplus
    archive = folder_id(mailbox, "Archive")
    rule(
        mailbox,
        [{"field": "to", "op": "equals", "value": "team@corp.test"}],
        [{"type": "move", "folder_id": archive}],
    )
    sync_account(mailbox.id)
    d.add_message("alice", mail("x@y.test", "To the team", to="Team <team@corp.test>"))
    d.add_message("alice", mail("x@y.test", "To me"))
    assert sync_account(mailbox.id)["automation"]["filters"]["matched"] == 1
    assert list(subjects(d, "Archive").values()) == ["To the team"]
    inbox = server_flags(d, "INBOX")
    if use_uidplus:
        assert sorted(subjects(d, "INBOX").values()) == ["To me"]
    else:  # COPY and \Deleted only: never an EXPUNGE that could remove other deleted mail
        assert sorted(subjects(d, "INBOX").values()) == ["To me", "To the team"]
        assert sorted(inbox.values()) == ["", "\\Deleted"]
        assert LogEntry.query.filter(LogEntry.message.contains("neither MOVE nor UIDPLUS")).count() == 1
    sync_account(mailbox.id)
    assert_store_matches(d, mailbox)


def test_mark_read_and_flag_with_any_and_all(mailbox, clean_dovecot):
    d = clean_dovecot
    rule(
        mailbox,
        [
            {"field": "from", "op": "contains", "value": "news"},
            {"field": "subject", "op": "contains", "value": "weekly"},
        ],
        [{"type": "mark_read"}],
        match="all",
        name="weekly news",
    )
    rule(
        mailbox,
        [
            {"field": "subject", "op": "equals", "value": "urgent"},
            {"field": "from", "op": "equals", "value": "ceo@corp.test"},
        ],
        [{"type": "flag"}],
        match="any",
        name="important",
    )
    sync_account(mailbox.id)
    d.add_message("alice", mail("news@paper.test", "The weekly digest"))  # all: read
    d.add_message("alice", mail("news@paper.test", "Breaking"))  # only one of all: nothing
    d.add_message("alice", mail("x@y.test", "URGENT"))  # any: flagged
    d.add_message("alice", mail("CEO <ceo@corp.test>", "hello"))  # any: flagged
    d.add_message("alice", mail("x@y.test", "urgent stuff"))  # equals, not contains: nothing
    sync_account(mailbox.id)
    by_subject = {v: k for k, v in subjects(d, "INBOX").items()}
    flags = server_flags(d, "INBOX")
    assert flags[by_subject["The weekly digest"]] == "\\Seen"
    assert flags[by_subject["Breaking"]] == ""
    assert flags[by_subject["URGENT"]] == "\\Flagged"
    assert flags[by_subject["hello"]] == "\\Flagged"
    assert flags[by_subject["urgent stuff"]] == ""
    assert stored_flags(folder_id(mailbox)) == flags  # rows updated at once
    sync_account(mailbox.id)
    assert_store_matches(d, mailbox)
    row = Message.query.filter_by(subject="URGENT").one()
    assert row.flagged and not row.seen


def test_header_conditions_fetch_the_header_from_the_server(mailbox, clean_dovecot):
    d = clean_dovecot
    rule(
        mailbox,
        [{"field": "header", "header": "X-Project", "op": "equals", "value": "Apollo"}],
        [{"type": "flag"}],
    )
    rule(
        mailbox,
        [{"field": "header", "header": "X-Spam-Flag", "op": "contains", "value": "yes"}],
        [{"type": "mark_read"}],
    )
    sync_account(mailbox.id)
    d.add_message("alice", mail("a@b.test", "p1", extra="X-Project: apollo\r\n"))
    d.add_message("alice", mail("a@b.test", "p2", extra="X-Project: apollo 13\r\n"))
    d.add_message("alice", mail("a@b.test", "spam", extra="X-Spam-Flag: YES\r\n"))
    sync_account(mailbox.id)
    by_subject = {v: k for k, v in subjects(d, "INBOX").items()}
    flags = server_flags(d, "INBOX")
    assert flags[by_subject["p1"]] == "\\Flagged"
    assert flags[by_subject["p2"]] == ""
    assert flags[by_subject["spam"]] == "\\Seen"


def test_first_sync_does_not_run_filters(mailbox, clean_dovecot):
    d = clean_dovecot
    rule(mailbox, [{"field": "subject", "op": "contains", "value": "x"}], [{"type": "flag"}])
    d.add_messages("alice", 5, subject="x")
    assert "automation" not in sync_account(mailbox.id)
    assert set(server_flags(d, "INBOX").values()) == {""}
    d.add_messages("alice", 1, subject="x")
    assert sync_account(mailbox.id)["automation"]["filters"]["flagged"] == 1


def test_run_now_on_a_folder(api, mailbox, clean_dovecot):
    d = clean_dovecot
    archive = folder_id(mailbox, "Archive")
    d.add_message("alice", mail("boss@corp.test", "one"))
    d.add_message("alice", mail("boss@corp.test", "two"))
    d.add_message("alice", mail("other@corp.test", "three"))
    sync_account(mailbox.id)
    created = api["alice"].post(
        f"/api/v1/accounts/{mailbox.id}/filters",
        json={
            "name": "boss",
            "conditions": [{"field": "from", "op": "contains", "value": "boss@"}],
            "actions": [{"type": "mark_read"}, {"type": "move", "folder_id": archive}],
        },
    )
    assert created.status_code == 201, created.json
    inbox = folder_id(mailbox)
    assert api["bob"].post(f"/api/v1/accounts/{mailbox.id}/folders/{inbox}/run-filters").status_code == 404
    response = api["alice"].post(f"/api/v1/accounts/{mailbox.id}/folders/{inbox}/run-filters")
    assert response.status_code == 202
    run_burst()
    body = api["alice"].get(response.json["status_url"]).json
    assert body["status"] == "finished" and body["result"]["ok"], body
    assert body["result"]["moved"] == 2 and body["result"]["checked"] == 3
    assert list(subjects(d, "INBOX").values()) == ["three"]
    assert sorted(subjects(d, "Archive").values()) == ["one", "two"]
    assert set(server_flags(d, "Archive").values()) == {"\\Seen"}
    db.session.expire_all()
    sync_account(mailbox.id)
    assert_store_matches(d, mailbox)


def test_invalid_rules_are_refused_with_field_errors(api, mailbox, clean_dovecot, users):
    url = f"/api/v1/accounts/{mailbox.id}/filters"
    archive = folder_id(mailbox, "Archive")
    response = api["alice"].post(
        url,
        json={
            "match": "some",
            "conditions": [
                {"field": "from", "op": "contains", "value": "  "},
                {"field": "body", "op": "contains", "value": "x"},
                {"field": "header", "op": "equals", "value": "x"},
                {"field": "subject", "op": "like", "value": "x"},
            ],
            "actions": [{"type": "move", "folder_id": 999999}, {"type": "delete"}],
        },
    )
    assert response.status_code == 422
    fields = response.json["fields"]
    assert set(fields) == {
        "match",
        "conditions[0].value",
        "conditions[1].field",
        "conditions[2].header",
        "conditions[3].op",
        "actions[0].folder_id",
        "actions[1].type",
    }
    assert api["alice"].post(url, json={"conditions": [], "actions": []}).json["fields"].keys() == {
        "conditions",
        "actions",
    }
    # A folder of another mailbox, and one gone from the server, are refused too.
    other = make_mailbox(clean_dovecot, owner=users["bob"]["user"], user="bob")
    gone = db.session.get(Folder, archive)
    gone.exists_on_server = False
    db.session.commit()
    for target in (folder_id(other), archive):
        response = api["alice"].post(
            url,
            json={
                "conditions": [{"field": "subject", "value": "x"}],
                "actions": [{"type": "move", "folder_id": target}],
            },
        )
        assert response.status_code == 422 and "actions[0].folder_id" in response.json["fields"]
    assert Folder.query.count() == 3 and filters.ordered(mailbox) == []


def test_filter_api_crud_and_order(api, mailbox):
    url = f"/api/v1/accounts/{mailbox.id}/filters"
    ids = []
    for name in ("a", "b", "c"):
        r = api["alice"].post(
            url,
            json={
                "name": name,
                "conditions": [{"field": "subject", "value": name}],
                "actions": [{"type": "flag"}],
            },
        )
        assert r.status_code == 201 and r.json["position"] == len(ids)
        ids.append(r.json["id"])
    assert api["bob"].get(url).status_code == 404
    moved = api["alice"].post(f"{url}/{ids[2]}/move", json={"position": 0})
    assert [f["name"] for f in moved.json] == ["c", "a", "b"]
    moved = api["alice"].post(f"{url}/{ids[2]}/move", json={"direction": "down"})
    assert [f["name"] for f in moved.json] == ["a", "c", "b"]
    patched = api["alice"].patch(f"{url}/{ids[0]}", json={"enabled": False, "position": 2})
    assert patched.status_code == 200 and not patched.json["enabled"]
    assert [(f["name"], f["position"]) for f in api["alice"].get(url).json] == [("c", 0), ("b", 1), ("a", 2)]
    assert api["alice"].patch(f"{url}/{ids[0]}", json={"conditions": []}).status_code == 422
    assert api["alice"].delete(f"{url}/{ids[2]}").status_code == 204
    assert [(f["name"], f["position"]) for f in api["alice"].get(url).json] == [("b", 0), ("a", 1)]
    assert api["alice"].get(f"{url}/{ids[2]}").status_code == 404


def test_sync_engine_reports_only_new_mail(app, local, clean_dovecot, users):
    """``new_uids``: empty for a first pass, the fetched UIDs of an incremental run."""
    d = clean_dovecot
    account = make_mailbox(d, owner=users["alice"]["user"])
    d.add_messages("alice", 3)

    def run():
        with imap_login(d) as imap:
            return sync_folders(
                imap,
                SqlSyncStore(account.id),
                [(folder_id(account), "INBOX")],
                options=SyncOptions(batch_size=2),
            )

    first = run()
    assert first.inserted == 3 and first.new_uids == {} and first.as_dict()["folders"][0]["new"] == 0
    d.add_messages("alice", 2)
    second = run()
    assert second.new_uids == {folder_id(account): [4, 5]} and second.as_dict()["folders"][0]["new"] == 2
    # A new UIDVALIDITY (the folder recreated elsewhere): the reseed stores old mail, not new mail.
    d.create_folder("alice", "Other")
    d.add_messages("alice", 2, folder="Other")
    other = Folder(account_id=account.id, name="Other", display_name="Other", sync=True)
    db.session.add(other)
    db.session.commit()
    with imap_login(d) as imap:
        assert sync_folders(imap, SqlSyncStore(account.id), [(other.id, "Other")]).new_uids == {}
    d.delete_folder("alice", "Other")
    d.create_folder("alice", "Other")
    d.add_messages("alice", 3, folder="Other")
    with imap_login(d) as imap:
        stats = sync_folders(imap, SqlSyncStore(account.id), [(other.id, "Other")])
    assert stats.folders[0].path == "reseeded" and stats.inserted == 3 and stats.new_uids == {}


def test_a_move_the_server_refuses_leaves_the_message_and_says_so(mailbox, clean_dovecot):
    """The target was deleted elsewhere (the store does not know yet): the server refuses the move,
    the message stays where it is, in the store too, and the log says it was not moved."""
    d = clean_dovecot
    archive = folder_id(mailbox, "Archive")
    rule(
        mailbox,
        [{"field": "subject", "op": "contains", "value": "report"}],
        [{"type": "move", "folder_id": archive}],
    )
    sync_account(mailbox.id)
    db.session.get(Folder, archive).sync = False  # the sync leaves it alone; it still "exists"
    db.session.commit()
    with imap_login(d) as c:
        c.delete_folder("Archive")
    d.add_message("alice", mail("a@b.test", "Weekly report"))
    result = sync_account(mailbox.id)
    assert result["automation"]["filters"] == {"matched": 1, "marked_read": 0, "flagged": 0, "moved": 0}
    assert list(subjects(d, "INBOX").values()) == ["Weekly report"]
    assert Message.query.filter_by(subject="Weekly report").one().folder_id == folder_id(mailbox, "INBOX")
    log = LogEntry.query.filter_by(account_id=mailbox.id, source=LogSource.INCOMING.value).all()
    assert any("Weekly report" in e.message and "not moved to Archive" in e.message for e in log), [
        e.message for e in log
    ]
