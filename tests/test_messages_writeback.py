"""Read state, flags and moves written back to a real Dovecot by the interactive-lane job.

Each change shows at once in the console (the row changes, ``pending`` until the job answers),
the job sends one ``UID STORE`` / ``UID MOVE`` per folder, a plain imapclient then sees the
change, a failure puts the row back with the reason, and a following sync agrees.
"""

from __future__ import annotations

import pytest
from rq.exceptions import AbandonedJobError
from rq.job import Job

from connectors import writeback
from tests.conftest import login
from tests.support.job_worker import run_burst
from tests.support.message_factory import make_account, make_folder, make_message
from tests.support.sync_support import imap_login, make_mailbox, server_flags, stored_flags
from webapp import settings_store
from webapp.extensions import db
from webapp.jobs import abandoned
from webapp.jobs import message_changes as change_jobs
from webapp.jobs.folders import list_folders
from webapp.jobs.sync import sync_account
from webapp.models import Folder, Message, MessageChange, User
from webapp.queue import get_redis


def _folder(account, name: str) -> Folder:
    return Folder.query.filter_by(account_id=account.id, name=name).one()


def _by_subject(account) -> dict[str, Message]:
    db.session.expire_all()
    return {m.subject: m for m in Message.query.filter_by(account_id=account.id)}


@pytest.fixture
def synced(users, clean_dovecot):
    """Alice's mailbox on Dovecot: INBOX with four messages, Trash (mapped, synced), Archive (not synced)."""
    clean_dovecot.add_messages("alice", 4, subject="Note")
    clean_dovecot.create_folder("alice", "Archive")
    settings_store.put("allowed_internal_hosts", ["127.0.0.1/32"])
    owner = db.session.get(User, users["alice"]["id"])
    account = make_mailbox(clean_dovecot, owner=owner, folders=())
    first = sync_account(account.id)
    assert first["ok"], first  # lists the folders (Trash gets its role), syncs INBOX
    trash = _folder(account, "Trash")
    assert trash.role == "trash"
    trash.sync = True
    db.session.commit()
    assert sync_account(account.id)["ok"]
    return account


def _act(api, ids, action, **extra):
    r = api.post("/api/v1/messages/actions", json={"ids": ids, "action": action, **extra})
    assert r.status_code == 202, r.get_json()
    return r.get_json()


def _agrees(dovecot, account, *names):
    """A sync finds nothing to put right: each folder's stored (UID, flags) equal the server's."""
    result = sync_account(account.id)
    assert result["ok"], result
    db.session.expire_all()
    for name in names:
        assert stored_flags(_folder(account, name).id) == server_flags(dovecot, name), name
    return result


def test_flags_and_moves_reach_the_server_and_the_next_sync_agrees(api, clean_dovecot, synced):
    m = _by_subject(synced)
    inbox_uids = {s: m[s].uid for s in m}

    # A selection of two: the rows change at once (pending), one job with one UID set.
    answer = _act(api["alice"], [m["Note 1"].id, m["Note 2"].id], "flag")
    assert len(answer["jobs"]) == 1 and sorted(answer["jobs"][0]["messages"]) == sorted(
        [m["Note 1"].id, m["Note 2"].id]
    )
    assert all(row["flagged"] and row["pending"] for row in answer["messages"])
    listed = api["alice"].get("/api/v1/messages?role=flagged").get_json()["messages"]
    assert {row["subject"] for row in listed} == {"Note 1", "Note 2"}
    # PATCH one: read.
    patch = api["alice"].patch(f"/api/v1/messages/{m['Note 1'].id}", json={"seen": True})
    assert patch.status_code == 202 and patch.get_json()["messages"][0]["seen"] is True
    # Move to Trash, and to a folder Mailroom does not sync.
    trash = _act(api["alice"], [m["Note 3"].id], "trash")["messages"][0]
    assert trash["folder"] == "Trash" and trash["uid"] is None and trash["pending"]
    archive = _folder(synced, "Archive")
    _act(api["alice"], [m["Note 4"].id], "move", folder=archive.id)

    run_burst()
    for job in answer["jobs"] + patch.get_json()["jobs"]:
        status = api["alice"].get(job["status_url"]).get_json()
        assert status["status"] == "finished" and status["result"]["ok"], status
    assert MessageChange.query.count() == 0  # every change settled

    inbox = server_flags(clean_dovecot, "INBOX")
    assert inbox[inbox_uids["Note 1"]] == "\\Flagged \\Seen" and inbox[inbox_uids["Note 2"]] == "\\Flagged"
    assert inbox_uids["Note 3"] not in inbox and inbox_uids["Note 4"] not in inbox
    with imap_login(clean_dovecot) as imap:
        imap.select_folder("Trash", readonly=True)
        (trash_uid,) = imap.search(["SUBJECT", "Note 3"])
        imap.select_folder("Archive", readonly=True)
        assert len(imap.search(["SUBJECT", "Note 4"])) == 1

    rows = _by_subject(synced)
    # Trash is synced and its state reached the new UID: the row carries it at once.
    assert rows["Note 3"].folder_id == _folder(synced, "Trash").id and rows["Note 3"].uid == trash_uid
    assert "Note 4" not in rows  # a folder Mailroom does not sync: the row left with the message
    assert rows["Note 1"].seen and rows["Note 1"].flagged and rows["Note 2"].flagged

    result = _agrees(clean_dovecot, synced, "INBOX", "Trash")
    assert result["inserted"] == 0, result  # nothing fetched twice
    assert Message.query.filter_by(account_id=synced.id, subject="Note 3").count() == 1


def test_a_failed_write_back_puts_the_message_back_and_says_why(api, client, users, clean_dovecot, synced):
    clean_dovecot.create_folder("alice", "Projects")
    m = _by_subject(synced)
    projects = _folder_after_listing(synced, "Projects")
    _act(api["alice"], [m["Note 1"].id], "move", folder=projects.id)
    _act(api["alice"], [m["Note 2"].id], "flag")
    assert _by_subject(synced)["Note 1"].folder_id == projects.id
    # Meanwhile the target folder goes on the server, and so does Note 2 (another client).
    clean_dovecot.delete_folder("alice", "Projects")
    with imap_login(clean_dovecot) as imap:
        imap.select_folder("INBOX")
        imap.move([m["Note 2"].uid], "Trash")
    run_burst()

    rows = _by_subject(synced)
    inbox = _folder(synced, "INBOX")
    assert rows["Note 1"].folder_id == inbox.id and rows["Note 1"].uid == m["Note 1"].uid  # put back
    assert rows["Note 2"].flagged is False  # put back
    failed = {c.message_pk: c for c in MessageChange.query.filter_by(state="failed")}
    assert "Projects" in failed[m["Note 1"].id].error and "no longer exists" in failed[m["Note 1"].id].error
    assert "no longer in" in failed[m["Note 2"].id].error
    # The console shows the notices, and they can be dismissed.
    login(client, "alice", users["alice"]["password"])
    page = client.get("/messages/").get_data(as_text=True)
    assert "Moving “Note 1” to Projects" in page and "no longer exists" in page
    first = next(iter(failed.values()))
    assert client.post(f"/messages/notices/{first.id}/dismiss").status_code == 302
    assert MessageChange.query.filter_by(state="failed").count() == 1

    # A worker killed mid-job (RQ's abandoned-job path runs the failure callback): put back too.
    before = _by_subject(synced)["Note 3"].seen
    answer = _act(api["alice"], [m["Note 3"].id], "unread" if before else "read")
    assert _by_subject(synced)["Note 3"].seen is not before
    job = Job.fetch(answer["jobs"][0]["job_id"], connection=get_redis())
    change_jobs.on_write_back_failure(job, None, AbandonedJobError, AbandonedJobError(), None)
    assert _by_subject(synced)["Note 3"].seen is before
    assert MessageChange.query.filter_by(message_pk=m["Note 3"].id).one().error == abandoned.SENTENCE
    run_burst()  # the job, if it still runs, finds nothing pending

    # The next sync agrees with the server: Note 2 went to Trash elsewhere, nothing else changed.
    _agrees(clean_dovecot, synced, "INBOX", "Trash")
    rows = _by_subject(synced)
    assert rows["Note 2"].folder_id == _folder(synced, "Trash").id and not rows["Note 2"].flagged


def _folder_after_listing(account, name: str) -> Folder:
    """A folder made on the server after the first sync: list the folders again (as the folder page does)."""
    list_folders(account.id)
    return _folder(account, name)


def test_a_sync_meanwhile_keeps_pending_changes_and_stores_no_duplicate(api, clean_dovecot, synced):
    m = _by_subject(synced)
    top = max(m.values(), key=lambda row: row.uid)
    _act(api["alice"], [m["Note 1"].id], "flag")
    _act(api["alice"], [top.id], "trash")
    with imap_login(clean_dovecot) as imap:  # another client answers Note 1 meanwhile
        imap.select_folder("INBOX")
        imap.add_flags([m["Note 1"].uid], ["\\Answered"])
    assert sync_account(synced.id)["ok"]  # runs before the write-back jobs
    rows = _by_subject(synced)
    assert (
        rows["Note 1"].flagged and "\\Answered" in rows["Note 1"].flags
    )  # both: the server's and the pending
    assert Message.query.filter_by(account_id=synced.id, subject=top.subject).count() == 1
    assert rows[top.subject].folder_id == _folder(synced, "Trash").id

    # Mail arrives in Trash after that sync: the moved message's new UID is above a message the
    # store has not got, so its row waits under its placeholder until the next sync adopts it.
    clean_dovecot.add_messages("alice", 1, folder="Trash", subject="Elsewhere")
    with imap_login(clean_dovecot) as imap:
        imap.select_folder("Trash", readonly=True)  # Dovecot gives it its UID now
    run_burst()
    assert server_flags(clean_dovecot, "INBOX")[m["Note 1"].uid] == "\\Answered \\Flagged"
    placed = MessageChange.query.filter_by(message_pk=top.id).one()
    new_uid = placed.new_uid
    assert placed.state == "placed" and new_uid and _by_subject(synced)[top.subject].uid < 0
    # Its body is fetched from where the server has it now.
    assert api["alice"].get(f"/api/v1/messages/{top.id}").status_code == 202
    run_burst()
    body = api["alice"].get(f"/api/v1/messages/{top.id}").get_json()
    assert body["body"]["text"].startswith("Body of message") and body["uid"] is None
    result = _agrees(clean_dovecot, synced, "INBOX", "Trash")
    assert result["inserted"] == 2, result  # "Elsewhere 1", and the moved row adopted, not stored twice
    rows = _by_subject(synced)
    assert rows[top.subject].uid == new_uid and "Elsewhere 1" in rows
    assert Message.query.filter_by(account_id=synced.id, subject=top.subject).count() == 1
    assert MessageChange.query.count() == 0


@pytest.mark.parametrize("use_move, use_uidplus", [(False, True), (False, False)])
def test_move_without_the_move_extension(clean_dovecot, use_move, use_uidplus):
    clean_dovecot.add_messages("alice", 3, subject="Old")
    with imap_login(clean_dovecot) as imap:
        imap.select_folder("INBOX")
        uids = imap.search("ALL")
        moved = writeback.move(
            imap, "INBOX", uids[:2], "Trash", folder_label="Inbox", target_label="Trash",
            use_move=use_move, use_uidplus=use_uidplus,
        )  # fmt: skip
        assert moved.command == "COPY" and moved.expunged is use_uidplus
        assert sorted(moved.new_uids) == uids[:2]  # Dovecot answers COPYUID to COPY either way
        left = imap.search(["NOT", "DELETED"])
        assert left == uids[2:]
        assert (imap.search("ALL") == uids[2:]) is use_uidplus  # without UIDPLUS: marked, not expunged
        imap.select_folder("Trash", readonly=True)
        assert sorted(imap.search("ALL")) == sorted(moved.new_uids.values())
        with pytest.raises(Exception) as info:
            writeback.move(imap, "INBOX", uids[2:], "Nowhere", folder_label="Inbox", target_label="Nowhere")
        assert info.value.error_class.value == "folder_missing" and "Nowhere" in info.value.message


def test_bad_requests_name_the_field_and_other_users_messages_are_404(api, users, client):
    alice = make_account(users["alice"]["id"], "alice@example.com")
    inbox = make_folder(alice)
    mine = make_message(inbox, uid=5)
    bobs = make_message(make_folder(make_account(users["bob"]["id"], "bob@example.com")), uid=5)
    other = make_folder(make_account(users["alice"]["id"], "alice@home.example"), name="Other", role=None)
    post = api["alice"].post
    assert (
        post("/api/v1/messages/actions", json={"ids": [mine.id, bobs.id], "action": "flag"}).status_code
        == 404
    )
    assert api["alice"].patch(f"/api/v1/messages/{bobs.id}", json={"seen": True}).status_code == 404
    cases = [
        ({"ids": [], "action": "flag"}, "ids"),
        ({"ids": ["1"], "action": "flag"}, "ids.0"),
        ({"ids": [mine.id], "action": "delete"}, "action"),
        ({"ids": [mine.id], "action": "move"}, "folder"),
        ({"ids": [mine.id], "action": "move", "folder": other.id}, "folder"),
        ({"ids": [mine.id], "action": "trash"}, "action"),  # no folder mapped as Trash
        ({"ids": [mine.id], "action": "flag", "extra": 1}, "extra"),
    ]
    for body, field in cases:
        r = post("/api/v1/messages/actions", json=body)
        assert r.status_code == 422 and field in r.get_json()["fields"], (body, r.get_json())
    assert "Trash" in post("/api/v1/messages/actions", json=cases[5][0]).get_json()["fields"]["action"]
    for body, field in (({"seen": "yes"}, "seen"), ({}, "seen"), ({"read": True}, "read")):
        r = api["alice"].patch(f"/api/v1/messages/{mine.id}", json=body)
        assert r.status_code == 422 and field in r.get_json()["fields"], r.get_json()
    db.session.expire_all()
    assert MessageChange.query.count() == 0 and not db.session.get(Message, mine.id).flagged
    # The page's own endpoint (JSON from the page's script): the same rules, the same answer.
    login(client, "alice", users["alice"]["password"])
    assert client.post("/messages/actions", json={"ids": [bobs.id], "action": "flag"}).status_code == 404
    r = client.post("/messages/actions", json={"ids": [mine.id], "action": "move", "folder": "x"})
    assert r.status_code == 422 and "folder" in r.get_json()["fields"]
    assert client.post("/messages/actions", data="[]", content_type="application/json").status_code == 400
    r = client.post("/messages/actions", json={"ids": [mine.id], "action": "flag"})
    assert r.status_code == 202 and r.get_json()["messages"][0] == {
        "id": mine.id, "seen": False, "flagged": True, "folder_id": inbox.id, "pending": True
    }  # fmt: skip


def test_opening_a_message_marks_it_read_on_the_server(client, users, clean_dovecot, synced):
    m = _by_subject(synced)["Note 2"]
    login(client, "alice", users["alice"]["password"])
    assert client.get(f"/messages/{m.id}").status_code == 200
    db.session.expire_all()
    assert db.session.get(Message, m.id).seen  # at once
    run_burst()
    assert "\\Seen" in server_flags(clean_dovecot, "INBOX")[m.uid].split()
    assert MessageChange.query.count() == 0


def test_a_server_that_is_down_puts_the_change_back_with_the_diagnosis(api, users, dovecot_factory):
    server = dovecot_factory()
    server.add_messages("alice", 2, subject="Down")
    settings_store.put("allowed_internal_hosts", ["127.0.0.1/32"])
    account = make_mailbox(server, owner=db.session.get(User, users["alice"]["id"]))
    assert sync_account(account.id)["ok"]
    m = _by_subject(account)
    answer = _act(api["alice"], [m["Down 1"].id, m["Down 2"].id], "flag")
    server.kill()
    try:
        run_burst()
    finally:
        server.restart()  # up again on the same ports, with the same mail
    status = api["alice"].get(answer["jobs"][0]["status_url"]).get_json()["result"]
    assert status["ok"] is False and status["class"] == "refused", status
    assert status["error"].startswith("The connection was refused.")
    assert not any(s["flagged"] for s in status["states"])
    assert not any(row.flagged for row in _by_subject(account).values())  # put back
    assert {c.error for c in MessageChange.query.filter_by(state="failed")} == {status["error"]}
    _agrees(server, account, "INBOX")


def test_odd_values_are_422_never_500(api, users):
    mine = make_message(make_folder(make_account(users["alice"]["id"], "alice@example.com")), uid=5)
    post = api["alice"].post
    for body, field in (
        ({"ids": [2**70], "action": "flag"}, "ids.0"),
        ({"ids": [True], "action": "flag"}, "ids.0"),
        ({"ids": list(range(1, 502)), "action": "flag"}, "ids"),
        ({"ids": [mine.id], "action": "move", "folder": 2**70}, "folder"),
        ({"ids": [mine.id], "action": "move", "folder": True}, "folder"),
        ({"ids": [mine.id], "action": ["flag"]}, "action"),
    ):
        r = post("/api/v1/messages/actions", json=body)
        assert r.status_code == 422 and field in r.get_json()["fields"], (body, r.get_json())
    assert (
        api["alice"]
        .patch(f"/api/v1/messages/{mine.id}", data="x", content_type="application/json")
        .status_code
        == 400
    )
