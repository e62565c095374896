"""Browsing synced mail in Chromium: unified inbox, search, a body fetched from Dovecot, sender history."""

from __future__ import annotations

import email.message
from datetime import datetime, timedelta

import pytest
from imapclient import IMAPClient
from playwright.sync_api import expect

from tests.browser.conftest import login, shot
from tests.support.job_worker import run_burst
from tests.support.message_factory import make_account, make_folder, make_message
from tests.support.sync_support import make_mailbox, server_flags
from webapp import settings_store
from webapp.extensions import db
from webapp.jobs.sync import sync_account
from webapp.models import Folder, Message, User

T0 = datetime(2026, 3, 1, 12, 0)


def _on_dovecot(dovecot) -> tuple[int, int]:
    msg = email.message.EmailMessage()
    msg["From"] = "Carol Jones <carol@example.com>"
    msg["To"] = "alice@example.com"
    msg["Subject"] = "Quarterly invoice"
    msg["Message-ID"] = "<invoice@example.com>"
    msg.set_content("Dear Alice,\nthe invoice for Q1 is attached.\n")
    msg.add_attachment(b"%PDF-1.4 test", maintype="application", subtype="pdf", filename="invoice-q1.pdf")
    dovecot.add_message("alice", msg)
    with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False) as imap:
        imap.login("alice", dovecot.users["alice"])
        info = imap.select_folder("INBOX", readonly=True)
        return int(info[b"UIDVALIDITY"]), imap.search("ALL")[0]


def _seed(live, dovecot) -> dict:
    uidvalidity, uid = _on_dovecot(dovecot)
    with live.app.app_context():
        alice = live.users["alice"]["id"]
        work = make_account(
            alice, "alice@example.com", port=dovecot.imap_port, security="none", username="alice",
            password=dovecot.users["alice"], description="Work",
        )  # fmt: skip
        home = make_account(alice, "alice@home.example", description="Home")
        w_in, h_in = make_folder(work, uidvalidity=uidvalidity), make_folder(home)
        invoice = make_message(
            w_in, uid=uid, subject="Quarterly invoice", from_name="Carol Jones", from_addr="carol@example.com",
            to=("alice@example.com",), message_id="<invoice@example.com>", date=T0, preview="Dear Alice,",
        )  # fmt: skip
        # The same message reached the home mailbox too: the history shows it once.
        make_message(
            h_in, subject="Quarterly invoice", from_name="Carol Jones", from_addr="carol@example.com",
            to=("alice@example.com",), message_id="<invoice@example.com>", date=T0,
        )  # fmt: skip
        make_message(
            h_in, subject="Lunch on Friday?", from_addr="dave@example.com", date=T0 + timedelta(hours=2)
        )
        make_message(w_in, subject="Re: Lunch", from_addr="carol@example.com", date=T0 - timedelta(days=2),
                     message_id="<lunch2@x>")  # fmt: skip
        bob = make_folder(make_account(live.users["bob"]["id"], "bob@example.com"))
        make_message(bob, subject="Bob's secret", from_addr="carol@example.com", date=T0 + timedelta(days=1))
        ids = {"invoice": invoice.id}
        db.session.remove()
    return ids


def test_user_browses_searches_opens_a_message_and_the_senders_history(live_server, page, clean_dovecot):
    ids = _seed(live_server, clean_dovecot)
    login(page, live_server, "alice")
    page.click("#nav-messages")
    page.wait_for_selector("#messages")
    rows = page.locator("#messages tr.message .subject a.open")
    # Unified inbox: both mailboxes, newest first, nobody else's mail.
    assert rows.all_inner_texts() == [
        "Lunch on Friday?",
        "Quarterly invoice",
        "Quarterly invoice",
        "Re: Lunch",
    ]
    assert page.locator("#mail-nav").get_by_text("Work").count() == 1
    assert "Bob's secret" not in page.content()
    shot(page, "messages-unified-inbox")

    page.fill("#q", "INVOICE")
    page.press("#q", "Enter")
    page.wait_for_url(lambda url: "q=INVOICE" in url)
    assert rows.all_inner_texts() == ["Quarterly invoice", "Quarterly invoice"]

    page.click(f"#messages tr[data-id='{ids['invoice']}'] a.open")
    page.wait_for_selector("#body-pending")
    assert "Fetching the message" in page.inner_text("#body-pending")
    run_burst(live_server.app)  # the job fetches the body from Dovecot; the page notices and shows it
    page.wait_for_selector("#body")
    assert "the invoice for Q1 is attached." in page.inner_text("#body")
    assert "invoice-q1.pdf" in page.inner_text("#attachments")
    shot(page, "messages-message")

    page.click("#message a.sender")
    page.wait_for_selector("#history")
    entries = page.locator("#history tbody tr")
    assert entries.count() == 2  # the invoice once, though it came through two mailboxes; and the lunch reply
    first = entries.nth(0).inner_text()
    assert "Quarterly invoice" in first and "alice@example.com › INBOX" in first
    assert "alice@home.example › INBOX" in first
    assert "Re: Lunch" in entries.nth(1).inner_text()
    assert "Bob's secret" not in page.content()
    shot(page, "messages-history")


def test_threads_toggle_and_flagged(live_server, page):
    with live_server.app.app_context():
        inbox = make_folder(make_account(live_server.users["alice"]["id"], "alice@example.com"))
        make_message(inbox, subject="Plan", message_id="<p@x>", date=T0, from_name="Carol")
        make_message(inbox, subject="Re: Plan", message_id="<p2@x>", references="<p@x>", date=T0 + timedelta(hours=1),
                     from_name="Dan", flagged=True)  # fmt: skip
        make_message(inbox, subject="Other", message_id="<o@x>", date=T0 - timedelta(hours=1))
        db.session.remove()
    login(page, live_server, "alice")
    page.goto(live_server.url + "/messages/")
    page.click("#view-threads")
    page.wait_for_selector("#threads")
    threads = page.locator("#threads tr.thread")
    assert threads.count() == 2
    assert (
        "Plan" in threads.nth(0).inner_text() and "2" in threads.nth(0).locator(".thread-count").inner_text()
    )
    threads.nth(0).locator(".subject a").click()
    page.wait_for_selector("#thread")
    assert page.locator("#thread tr.message").count() == 2
    page.click("#mail-nav a[data-role='flagged']")
    page.wait_for_selector("#messages")
    assert page.locator("#messages .subject a.open").all_inner_texts() == ["Re: Plan"]


@pytest.mark.parametrize("width", [1366, 390])
def test_select_flag_write_back_shortcuts_and_help(live_server, new_page, clean_dovecot, width):
    """Select two and flag them (shown at once, then on the server), ``?`` help, j/k/Enter, x and s."""
    clean_dovecot.add_messages("alice", 3, subject="Memo")
    with live_server.app.app_context():
        settings_store.put("allowed_internal_hosts", ["127.0.0.1/32"])
        account = make_mailbox(clean_dovecot, owner=db.session.get(User, live_server.users["alice"]["id"]))
        assert sync_account(account.id)["ok"]
        inbox = Folder.query.filter_by(account_id=account.id, name="INBOX").one().id
        uids = {m.subject: m.uid for m in Message.query.filter_by(account_id=account.id)}
        db.session.remove()
    page = new_page()
    page.set_viewport_size({"width": width, "height": 860})
    login(page, live_server, "alice")
    page.goto(f"{live_server.url}/messages/?folder={inbox}")
    rows = page.locator("#messages tr.message")
    assert rows.count() == 3 and page.locator("#mail-actions").is_visible()
    if width == 390:  # compact cards: checkbox and state dot on the sender's line, no label rows for them
        first = rows.nth(0)
        sender = first.locator("td.from").bounding_box()
        for cell in ("td.select", "td.flags"):
            box = first.locator(cell).bounding_box()
            assert sender["y"] - 1 <= box["y"] and box["y"] + box["height"] <= sender["y"] + sender["height"] + 1, cell
            assert first.locator(cell).evaluate("(td) => getComputedStyle(td, '::before').display") == "none", cell
        assert first.bounding_box()["height"] < 200

    rows.nth(0).locator("input.select-message").check()
    rows.nth(1).locator("input.select-message").check()
    assert page.inner_text("#selection-count") == "2 selected"
    page.click("#mail-actions [data-act='flag']")
    page.wait_for_selector("#messages tr.message.pending .flag.flagged")
    assert page.locator("#messages tr.message .flag.flagged").count() == 2  # at once, before the server
    run_burst(live_server.app)
    expect(page.locator("#messages tr.pending")).to_have_count(0)
    flagged = {uid for uid, flags in server_flags(clean_dovecot).items() if "\\Flagged" in flags.split()}
    top_two = [rows.nth(i).locator("a.open").inner_text() for i in (0, 1)]
    assert flagged == {uids[s] for s in top_two}
    shot(page, f"messages-flagged-{width}")

    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("?")
    dialog = page.locator("#shortcuts-help")
    assert dialog.is_visible() and "Reply all" in dialog.inner_text()
    assert "Move to Trash" in dialog.inner_text()
    shot(page, f"messages-shortcuts-{width}")
    page.keyboard.press("Escape")
    assert not dialog.is_visible()

    page.check("#select-all")  # select-all, then none
    assert page.inner_text("#selection-count") == "3 selected"
    page.uncheck("#select-all")
    assert page.inner_text("#selection-count") == ""
    page.fill("#q", "jk")  # typing in a field is not a shortcut
    assert page.locator("#messages tr.current").count() == 0
    page.locator("body").click(position={"x": 5, "y": 5})
    for key in ("j", "j", "k"):
        page.keyboard.press(key)
    assert "current" in rows.nth(0).get_attribute("class").split()
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("x")  # the third, not flagged yet: x selects it, s flags the selection
    assert rows.nth(2).locator("input.select-message").is_checked()
    page.keyboard.press("s")
    expect(rows.nth(2).locator(".flag.flagged")).to_have_count(1)
    run_burst(live_server.app)
    expect(page.locator("#messages tr.pending")).to_have_count(0)
    assert all("\\Flagged" in flags for flags in server_flags(clean_dovecot).values())
    page.keyboard.press("Enter")
    page.wait_for_selector("#message")
    assert page.locator("#mail-actions [data-act='unread']").is_visible()  # opening marked it read
    assert page.locator("#action-reply").is_visible()
    shot(page, f"messages-message-actions-{width}")
