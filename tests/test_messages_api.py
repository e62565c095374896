"""The messages API, and bodies fetched on demand from a real Dovecot through the RQ job."""

from __future__ import annotations

import email.message
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest
from imapclient import IMAPClient

from tests.support.job_worker import run_burst
from tests.support.message_factory import make_account, make_folder, make_message
from webapp import message_bodies
from webapp.extensions import db
from webapp.models import LogEntry, MessageBody

T0 = datetime(2026, 3, 1, 12, 0)


@pytest.fixture
def mailboxes(users):
    """Alice: two mailboxes (inbox + sent, and an inbox); bob: one inbox."""
    alice, bob = users["alice"]["id"], users["bob"]["id"]
    a1, a2 = make_account(alice, "alice@work.example"), make_account(alice, "alice@home.example")
    folders = {
        "a1_inbox": make_folder(a1),
        "a1_sent": make_folder(a1, name="Sent", role="sent"),
        "a2_inbox": make_folder(a2),
        "b_inbox": make_folder(make_account(bob, "bob@example.com")),
    }
    return {"a1": a1, "a2": a2, **folders}


def test_folder_messages_paginate_with_cursor(api, mailboxes):
    inbox = mailboxes["a1_inbox"]
    made = [make_message(inbox, subject=f"m{i}", date=T0 + timedelta(minutes=i % 3)) for i in range(7)]
    url = f"/api/v1/accounts/{inbox.account_id}/messages?folder={inbox.id}&limit=3"
    seen, cursor = [], None
    while True:
        r = api["alice"].get(url + (f"&cursor={cursor}" if cursor else ""))
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        assert len(body["messages"]) <= 3
        seen += [m["id"] for m in body["messages"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    expected = [m.id for m in sorted(made, key=lambda m: (m.date, m.id), reverse=True)]
    assert seen == expected
    # Without a folder: the whole mailbox (its Sent too), not the other mailbox.
    sent = make_message(mailboxes["a1_sent"], date=T0 + timedelta(days=1))
    make_message(mailboxes["a2_inbox"], date=T0 + timedelta(days=2))
    whole = api["alice"].get(f"/api/v1/accounts/{inbox.account_id}/messages?limit=200").get_json()
    assert [m["id"] for m in whole["messages"]] == [sent.id, *expected] and whole["next_cursor"] is None
    first = api["alice"].get(url).get_json()["messages"][0]
    assert first["folder"] == "INBOX" and first["folder_role"] == "inbox" and first["from"]["address"]
    assert first["date"].endswith("Z") and first["flags"] == []


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=lots", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("folder=abc", "folder"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(api, mailboxes, query, field):
    inbox = mailboxes["a1_inbox"]
    folder = "" if "folder" in query or field == "folder" else f"folder={inbox.id}&"
    r = api["alice"].get(f"/api/v1/accounts/{inbox.account_id}/messages?{folder}{query}")
    assert r.status_code == 422 and field in r.get_json()["fields"], r.get_json()


def test_other_users_items_are_404_and_admins_read_through_accounts(api, mailboxes):
    alice_inbox, bob_inbox = mailboxes["a1_inbox"], mailboxes["b_inbox"]
    secret = make_message(
        alice_inbox, subject="alice only", message_id="<s@x>", from_addr="carol@example.com"
    )
    db.session.add(MessageBody(message_pk=secret.id, raw=b"Subject: alice only\r\n\r\nhello\r\n"))
    db.session.commit()
    bob = api["bob"]
    assert (
        bob.get(f"/api/v1/accounts/{alice_inbox.account_id}/messages?folder={alice_inbox.id}").status_code
        == 404
    )
    # Bob's own mailbox with Alice's folder id: still not found.
    assert (
        bob.get(f"/api/v1/accounts/{bob_inbox.account_id}/messages?folder={alice_inbox.id}").status_code
        == 404
    )
    assert bob.get(f"/api/v1/messages/{secret.id}").status_code == 404
    assert bob.get(f"/api/v1/threads/{quote('<s@x>', safe='')}").status_code == 404
    assert bob.get("/api/v1/history?address=carol@example.com").get_json()["history"] == []
    assert bob.get("/api/v1/messages?role=inbox").get_json()["messages"] == []
    assert api["alice"].get("/api/v1/messages?role=inbox").status_code == 200
    admin = api["admin"]
    # Views are one's own for administrators too ...
    assert admin.get("/api/v1/messages?role=inbox").get_json()["messages"] == []
    assert admin.get(f"/api/v1/messages/{secret.id}").status_code == 404
    # ... and the accounts/<id> endpoints let them read any mailbox.
    listed = admin.get(f"/api/v1/accounts/{alice_inbox.account_id}/messages?folder={alice_inbox.id}")
    assert [m["id"] for m in listed.get_json()["messages"]] == [secret.id]
    one = admin.get(f"/api/v1/accounts/{alice_inbox.account_id}/messages/{secret.id}")
    assert one.status_code == 200 and one.get_json()["body"]["text"].strip() == "hello"
    wrong = admin.get(f"/api/v1/accounts/{bob_inbox.account_id}/messages/{secret.id}")
    assert wrong.status_code == 404
    anonymous = api["alice"].client
    assert anonymous.get("/api/v1/messages", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert anonymous.get(f"/api/v1/messages/{secret.id}").status_code == 401


def test_unified_flagged_search_threads_and_history(api, mailboxes):
    a1_inbox, a2_inbox, a1_sent = mailboxes["a1_inbox"], mailboxes["a2_inbox"], mailboxes["a1_sent"]
    root = make_message(
        a1_inbox, subject="Budget", message_id="<b@x>", from_addr="carol@example.com", date=T0
    )
    copy = make_message(
        a2_inbox, subject="Budget", message_id="<b@x>", from_addr="carol@example.com", date=T0
    )
    reply = make_message(
        a1_sent,
        subject="Re: Budget",
        message_id="<b2@x>",
        references="<b@x>",
        from_addr="alice@work.example",
        to=("carol@example.com",),
        flagged=True,
        date=T0 + timedelta(hours=1),
    )
    other = make_message(a2_inbox, subject="Party", from_name="Dave", from_addr="dave@example.com", date=T0)
    alice = api["alice"]

    inbox = alice.get("/api/v1/messages?role=inbox").get_json()["messages"]
    assert {m["id"] for m in inbox} == {root.id, copy.id, other.id}
    assert [m["id"] for m in alice.get("/api/v1/messages?role=sent").get_json()["messages"]] == [reply.id]
    assert [m["id"] for m in alice.get("/api/v1/messages?role=flagged").get_json()["messages"]] == [reply.id]
    assert [m["id"] for m in alice.get("/api/v1/messages?role=inbox&q=DAVE").get_json()["messages"]] == [
        other.id
    ]
    bad = alice.get("/api/v1/messages?role=outbox")
    assert bad.status_code == 422 and "role" in bad.get_json()["fields"]
    assert alice.get("/api/v1/messages?q=" + "x" * 201).get_json()["fields"].keys() == {"q"}

    threads = alice.get("/api/v1/threads?role=inbox").get_json()["threads"]
    # Equal dates: the thread whose newest message has the higher id comes first.
    assert [(t["thread_key"], t["count"]) for t in threads] == [(f"#{other.id}", 1), ("<b@x>", 2)]
    whole = alice.get("/api/v1/threads/" + quote("<b@x>", safe="")).get_json()
    assert [m["id"] for m in whole["messages"]] == sorted([root.id, copy.id]) + [reply.id]

    hist = alice.get("/api/v1/history?address=Carol@Example.com").get_json()
    assert hist["address"] == "carol@example.com"
    assert [h["message_id"] for h in hist["history"]] == ["<b2@x>", "<b@x>"]
    assert {c["account"] for c in hist["history"][1]["copies"]} == {
        "alice@work.example",
        "alice@home.example",
    }
    missing = alice.get("/api/v1/history")
    assert missing.status_code == 422 and "address" in missing.get_json()["fields"]
    assert alice.get("/api/v1/history?address=carol&limit=5").status_code == 422


# -- bodies from Dovecot --------------------------------------------------------------------


def rich_message(subject: str = "Grüße") -> bytes:
    msg = email.message.EmailMessage()
    msg["From"] = "Zoë Müller <zoe@example.org>"
    msg["To"] = "alice@example.com"
    msg["Subject"] = subject
    msg["Message-ID"] = "<body.1@example.org>"
    msg["Date"] = "Tue, 03 Mar 2026 10:00:00 +0100"
    msg.set_content("Grüße aus Köln.\nSecond line.\n")
    msg.add_alternative(
        '<p onclick="x()">Grüße <b>aus</b> Köln.<script>alert(1)</script>'
        '<img src="https://tracker.example/p.gif"><a href="javascript:evil()">x</a></p>',
        subtype="html",
    )
    msg.add_attachment(
        b"\x00\x01binary" * 100, maintype="application", subtype="octet-stream", filename="a.bin"
    )
    return msg.as_bytes().replace(b"\n", b"\r\n")


def server_uids(dovecot, folder: str = "INBOX") -> tuple[int, list[int]]:
    with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False) as imap:
        imap.login("alice", dovecot.users["alice"])
        info = imap.select_folder(folder, readonly=True)
        return int(info[b"UIDVALIDITY"]), sorted(imap.search("ALL"))


@pytest.fixture
def alice_on_dovecot(users, clean_dovecot):
    account = make_account(
        users["alice"]["id"],
        "alice@example.com",
        port=clean_dovecot.imap_port,
        security="none",
        username="alice",
        password=clean_dovecot.users["alice"],
    )
    return account


def test_body_is_fetched_on_demand_through_the_job_and_cached(api, clean_dovecot, alice_on_dovecot):
    clean_dovecot.add_message("alice", rich_message())
    clean_dovecot.add_message("alice", rich_message("Über"), folder="Über")
    uidvalidity, uids = server_uids(clean_dovecot)
    inbox = make_folder(alice_on_dovecot, uidvalidity=uidvalidity)
    message = make_message(inbox, uid=uids[0], subject="Grüße", message_id="<body.1@example.org>")
    # Folder names are kept as the server sends them (modified UTF-7): commands must use them as they are.
    _, uber_uids = server_uids(clean_dovecot, "Über")
    uber = make_folder(alice_on_dovecot, name="&ANw-ber", display_name="Über", role=None)
    in_uber = make_message(uber, uid=uber_uids[0])

    first = api["alice"].get(f"/api/v1/messages/{message.id}")
    assert first.status_code == 202, first.get_json()
    body = first.get_json()
    assert body["body"] is None and body["job_id"] and body["id"] == message.id
    # Asking again while the job waits gives the same job, not a second fetch.
    assert api["alice"].get(f"/api/v1/messages/{message.id}").get_json()["job_id"] == body["job_id"]
    run_burst()
    status = api["alice"].get(body["status_url"]).get_json()
    assert status["status"] == "finished" and status["result"]["ok"] is True, status

    done = api["alice"].get(f"/api/v1/messages/{message.id}")
    assert done.status_code == 200
    got = done.get_json()["body"]
    assert got["text"].startswith("Grüße aus Köln.\nSecond line.")
    (attachment,) = got["attachments"]
    assert attachment["download_url"] == f"/api/v1/messages/{message.id}/attachments/1"
    assert {k: attachment[k] for k in ("number", "filename", "content_type", "size")} == {
        "number": 1,
        "filename": "a.bin",
        "content_type": "application/octet-stream",
        "size": 800,
    }
    html = got["html"]
    assert "Grüße <b>aus</b> Köln." in html
    for banned in ("script", "alert", "onclick", "img", "tracker", "javascript"):
        assert banned not in html, html
    # BODY.PEEK: opening the message in the console does not mark it read on the server.
    with IMAPClient("127.0.0.1", port=clean_dovecot.imap_port, ssl=False) as imap:
        imap.login("alice", "secret-alice-pw")
        imap.select_folder("INBOX", readonly=True)
        assert b"\\Seen" not in imap.get_flags(uids[0])[uids[0]]

    assert api["alice"].get(f"/api/v1/messages/{in_uber.id}").status_code == 202
    run_burst()
    assert api["alice"].get(f"/api/v1/messages/{in_uber.id}").get_json()["body"]["text"].startswith("Grüße")


def test_a_message_gone_from_the_server_is_a_clear_404(api, clean_dovecot, alice_on_dovecot):
    clean_dovecot.add_message("alice", rich_message())
    uidvalidity, uids = server_uids(clean_dovecot)
    inbox = make_folder(alice_on_dovecot, uidvalidity=uidvalidity)
    expunged = make_message(inbox, uid=uids[-1] + 50)
    lost_folder = make_folder(alice_on_dovecot, name="Deleted/Folder", role=None)
    in_lost = make_message(lost_folder, uid=1)
    reseeded = make_folder(alice_on_dovecot, name="Junk", role="spam", uidvalidity=1)
    old_uidvalidity = make_message(reseeded, uid=1)

    for message in (expunged, in_lost, old_uidvalidity):
        assert api["alice"].get(f"/api/v1/messages/{message.id}").status_code == 202
    run_burst()
    for message in (expunged, in_lost, old_uidvalidity):
        r = api["alice"].get(f"/api/v1/messages/{message.id}")
        assert r.status_code == 404 and "no longer on the server" in r.get_json()["error"], r.get_json()
    assert db.session.get(MessageBody, expunged.id) is None


def test_a_failed_fetch_is_reported_and_logged_without_secrets(api, clean_dovecot, users):
    account = make_account(
        users["alice"]["id"], "alice@example.com", port=clean_dovecot.imap_port, security="none",
        username="alice", password="wrong-password-123",
    )  # fmt: skip
    message = make_message(make_folder(account), uid=1)
    body = api["alice"].get(f"/api/v1/messages/{message.id}").get_json()
    run_burst()
    status = api["alice"].get(body["status_url"]).get_json()
    assert status["result"]["ok"] is False and status["result"]["gone"] is False
    entry = LogEntry.query.filter_by(account_id=account.id).one()
    assert entry.level == "error" and "wrong-password-123" not in (entry.message + (entry.details or ""))
    # Not gone: asking again tries again.
    assert api["alice"].get(f"/api/v1/messages/{message.id}").status_code == 202


def test_html_only_mail_is_shown_as_text_and_plain_mail_has_no_html():
    raw = (
        b"Subject: h\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><head><style>p{color:red}</style><title>T</title></head><body><h1>Title</h1>"
        b"<p>One &amp; two</p><script>document.write('x')</script><p>Three</p></body></html>"
    )
    parsed = message_bodies.parse(raw)
    assert parsed["text"] == "Title\n\nOne & two\n\nThree"
    assert "<script" not in parsed["html"] and "color" not in parsed["html"]
    plain = message_bodies.parse(b"Subject: p\r\n\r\nJust text.\r\n")
    assert plain["text"].strip() == "Just text." and plain["html"] is None and plain["attachments"] == []
    assert message_bodies.body_as_dict(b"Subject: p\r\n\r\nx\r\n").keys() == {"text", "attachments"}


def test_job_status_is_private_to_who_asked(api, clean_dovecot, alice_on_dovecot):
    uidvalidity, _ = server_uids(clean_dovecot)
    message = make_message(make_folder(alice_on_dovecot, uidvalidity=uidvalidity), uid=77)
    body = api["alice"].get(f"/api/v1/messages/{message.id}").get_json()
    assert api["bob"].get(body["status_url"]).status_code == 404
    run_burst()
    assert api["bob"].get(body["status_url"]).status_code == 404
    assert api["alice"].get(body["status_url"]).get_json()["status"] == "finished"
