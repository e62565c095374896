"""The messages pages rendered by the app (the browser test covers the live flow)."""

from __future__ import annotations

import re
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


def test_role_folders_by_their_role_name_and_move_to_not_offering_where_they_are(client, users):
    """In the sidebar and the "Move to" list a folder with a role is named by the role, in the
    reader's language; others keep their IMAP name. A unified view's "Move to" leaves out the
    folders of its own role (the messages are there already); a folder's page leaves out that folder."""
    alice = users["alice"]["id"]
    work = make_account(alice, "alice@work.example", description="Work")
    inbox = make_folder(work, name="INBOX", role="inbox")
    sent = make_folder(work, name="Posta inviata", role="sent")
    archive = make_folder(work, name="Archivio 2025", role=None)
    for folder in (inbox, sent, archive):
        make_message(folder, subject=f"Preventivo {folder.name}", date=T0)
    db.session.commit()
    login(client, "alice", users["alice"]["password"])
    it = {"Accept-Language": "it"}

    def options(html: str) -> list[str]:
        select = html.split('id="move-target"')[1].split("</select>")[0]
        return [o.split(">", 1)[1].split("<")[0] for o in select.split("<option ")[1:]]

    page = client.get("/messages/?role=inbox", headers=it).get_data(as_text=True)
    nav = page.split('id="mail-nav"')[1].split("</aside>")[0]
    for folder, raw, shown in ((sent, "Posta inviata", "Inviati"), (inbox, "INBOX", "Posta in arrivo"),
                               (archive, "Archivio 2025", "Archivio 2025")):  # fmt: skip
        assert re.search(f'data-folder="{folder.id}" title="{raw}"[^>]*>{shown}</a>', nav), (raw, shown)
    assert sorted(options(page)) == ["Archivio 2025", "Inviati"]  # not the Inbox the view lists

    folder_page = client.get(f"/messages/?folder={archive.id}", headers=it).get_data(as_text=True)
    assert sorted(options(folder_page)) == ["Inviati", "Posta in arrivo"]
    english = client.get(f"/messages/?folder={sent.id}").get_data(as_text=True)
    assert sorted(options(english)) == ["Archivio 2025", "Inbox"]


def test_answered_and_forwarded_messages_carry_their_marks_in_the_list_and_on_the_page(client, users):
    """\\Answered shows the reply icon, the $Forwarded keyword the forward icon, each an image with
    a name (screen readers) and a title; a message with neither shows neither."""
    inbox = make_folder(make_account(users["alice"]["id"], "alice@work.example"))
    both = make_message(inbox, subject="Both", seen=True)
    both.flags = "\\Seen \\Answered $Forwarded"
    plain = make_message(inbox, subject="Plain", seen=True)
    db.session.commit()
    login(client, "alice", users["alice"]["password"])
    forwarded = re.compile(r'class="flag forwarded" title="Forwarded">\s*<svg class="icon icon-forward"'
                           r'[^>]*role="img" aria-label="Forwarded"><use href="[^"]*icons.svg#forward"')  # fmt: skip
    answered = re.compile(r'class="flag answered" title="Answered">\s*<svg class="icon icon-reply"[^>]*role="img"')

    page = client.get("/messages/?role=inbox").get_data(as_text=True)
    rows = {m.subject: page.split(f'data-id="{m.id}"')[1].split("</tr>")[0] for m in (both, plain)}
    assert forwarded.search(rows["Both"]) and answered.search(rows["Both"])
    assert "flag forwarded" not in rows["Plain"] and "flag answered" not in rows["Plain"]

    shown = client.get(f"/messages/{both.id}").get_data(as_text=True).split("<h1>")[1].split("</h1>")[0]
    assert forwarded.search(shown) and answered.search(shown)
    italian = client.get(f"/messages/{both.id}", headers={"Accept-Language": "it"}).get_data(as_text=True)
    assert 'aria-label="Inoltrato"' in italian


def test_move_to_is_not_an_empty_list_when_there_is_no_other_folder(client, users):
    """A mailbox with only its Inbox: the unified Inbox and the message page say there is no other
    folder instead of offering an empty "Move to" list; a second folder brings the list back."""
    work = make_account(users["alice"]["id"], "alice@work.example")
    inbox = make_folder(work, name="INBOX", role="inbox")
    message = make_message(inbox, subject="Alone")
    login(client, "alice", users["alice"]["password"])
    for url in ("/messages/?role=inbox", f"/messages/{message.id}"):
        html = client.get(url).get_data(as_text=True)
        assert 'id="move-target"' not in html and 'id="move-none"' in html, url
        assert "No other folder to move to." in html
    make_folder(work, name="Archive", role=None)
    html = client.get("/messages/?role=inbox").get_data(as_text=True)
    assert 'id="move-none"' not in html and re.search(r'<option value="\d+">Archive</option>', html)
