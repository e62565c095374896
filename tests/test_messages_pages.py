"""The messages pages rendered by the app (the browser test covers the live flow)."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.conftest import login
from tests.support.message_factory import make_account, make_folder, make_message
from webapp.extensions import db
from webapp.models import AccountState, MessageBody

T0 = datetime(2026, 3, 1, 12, 0)


def test_unified_inbox_folders_search_threads_and_paging(client, users):
    alice = users["alice"]["id"]
    work = make_account(alice, "alice@work.example", description="Work")
    gone = make_account(alice, "alice@old.example", description="Old job")
    inbox = make_folder(work)
    old_inbox = make_folder(gone, name="&ANw-bersicht", display_name="Übersicht", role="inbox")
    for i in range(5):
        make_message(inbox, subject=f"Report {i}", from_name="Carol", from_addr="carol@example.com",
                     date=T0 + timedelta(hours=i), message_id=f"<r{i}@x>", references="<r0@x>" if i else None)  # fmt: skip
    make_message(
        old_inbox, subject="Kept after removal", from_addr="dave@example.com", date=T0 - timedelta(days=1)
    )
    gone.state = AccountState.SERVICE_REMOVED.value
    db.session.commit()
    make_message(make_folder(make_account(users["bob"]["id"], "bob@example.com")), subject="Bob private")
    login(client, "alice", users["alice"]["password"])

    page = client.get("/messages/").get_data(as_text=True)
    assert "Report 4" in page and "Kept after removal" in page and "Bob private" not in page
    assert "Übersicht" in page and "service removed" in page and 'id="nav-messages"' in page

    first = client.get("/messages/?role=inbox&limit=2").get_data(as_text=True)
    assert (
        "Report 4" in first and "Report 3" in first and "Report 2" not in first and 'id="newer"' not in first
    )
    older = first.split('id="older"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = client.get(older).get_data(as_text=True)
    assert (
        "Report 2" in second and "Report 1" in second and "Report 4" not in second and 'id="newer"' in second
    )

    found = client.get("/messages/?role=inbox&q=kept").get_data(as_text=True)
    assert "Kept after removal" in found and "Report" not in found.split('id="messages"')[1]

    threads = client.get("/messages/?role=inbox&view=threads").get_data(as_text=True)
    assert "Report 0" in threads and ">5</span>" in threads

    folder_page = client.get(f"/messages/?folder={old_inbox.id}").get_data(as_text=True)
    assert "Kept after removal" in folder_page and "no longer syncs" in folder_page

    bad = client.get("/messages/?role=outbox")
    assert bad.status_code == 422 and "role" in bad.get_data(as_text=True)
    assert client.get("/messages/?limit=500").status_code == 422


def test_message_page_history_and_others_messages(client, users):
    alice = users["alice"]["id"]
    inbox = make_folder(make_account(alice, "alice@work.example"))
    m = make_message(inbox, subject="With body", from_name="Carol", from_addr="carol@example.com",
                     message_id="<wb@x>")  # fmt: skip
    raw = (
        b"From: Carol <carol@example.com>\r\nSubject: With body\r\nContent-Type: text/html\r\n\r\n"
        b"<p>Hello <script>alert('x')</script><img src='https://t.example/p.gif'>there</p>"
    )
    db.session.add(MessageBody(message_pk=m.id, raw=raw))
    db.session.commit()
    bobs = make_message(
        make_folder(make_account(users["bob"]["id"], "bob@example.com")), subject="Bob private"
    )
    login(client, "alice", users["alice"]["password"])

    page = client.get(f"/messages/{m.id}").get_data(as_text=True)
    assert "Hello there" in page and "alert" not in page and "t.example" not in page
    assert "/messages/history?address=carol@example.com" in page
    assert client.get(f"/messages/{bobs.id}").status_code == 404
    assert client.get("/messages/thread?key=%3Cwb%40x%3E").status_code == 200
    assert client.get("/messages/thread?key=%3Cnope%40x%3E").status_code == 404

    hist = client.get("/messages/history?address=carol@example.com").get_data(as_text=True)
    assert "With body" in hist and "alice@work.example › INBOX" in hist
    assert client.get("/messages/history?address=nobody").status_code == 422
