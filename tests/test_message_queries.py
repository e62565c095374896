"""The browsing queries on the real database (SQLite by default, PostgreSQL with DATABASE_URL)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.support.message_factory import make_account, make_folder, make_message
from webapp import message_queries as mq
from webapp.errors import Invalid, NotFound
from webapp.extensions import db
from webapp.models import AccountState

T0 = datetime(2026, 3, 1, 12, 0)


@pytest.fixture
def alice(users):
    return users["alice"]["user"]


@pytest.fixture
def bob(users):
    return users["bob"]["user"]


def ids(rows):
    return [m.id for m in rows]


def walk(query, limit):
    """Every page older-wards from the first; returns the pages' ids."""
    pages, cursor = [], None
    while True:
        page = mq.paginate(query, limit, cursor)
        pages.append(ids(page.items))
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def test_pages_with_equal_dates_and_missing_dates_are_stable(alice):
    inbox = make_folder(make_account(alice.id, "a@example.com"))
    same = [make_message(inbox, subject=f"same {i}", date=T0) for i in range(7)]
    older = make_message(inbox, subject="older", date=T0 - timedelta(days=1))
    newer = make_message(inbox, subject="newer", date=T0 + timedelta(days=1))
    undated = [make_message(inbox, subject=f"undated {i}", date=None) for i in range(2)]

    expected = [newer.id] + sorted(ids(same), reverse=True) + [older.id] + sorted(ids(undated), reverse=True)
    query = mq.folder_query(inbox)
    for limit in (1, 2, 3, 4, 12):
        pages = walk(query, limit)
        assert [i for p in pages for i in p] == expected, limit
        assert all(len(p) == limit for p in pages[:-1]) and pages[-1]

    # New mail arriving between two page loads does not shift the next page.
    first = mq.paginate(query, 3)
    make_message(inbox, subject="arrived", date=T0 + timedelta(days=2))
    second = mq.paginate(query, 3, first.next_cursor)
    assert ids(second.items) == expected[3:6]

    # "Newer" from the second page gives back the first one, and says whether even newer ones exist.
    back = mq.paginate(query, 3, after=second.prev_cursor)
    assert ids(back.items) == expected[:3]
    assert back.prev_cursor is not None  # the message that arrived meanwhile
    assert back.next_cursor == first.next_cursor
    # Going newer from the undated tail works as well.
    last = mq.paginate(query, 2, mq.encode_cursor(older.date, older.id))
    assert ids(last.items) == sorted(ids(undated), reverse=True)
    assert ids(mq.paginate(query, 2, after=last.prev_cursor).items) == [same[0].id, older.id]


def test_limit_and_cursor_are_validated():
    assert mq.parse_limit(None) == 50 and mq.parse_limit("200") == 200 and mq.parse_limit("1") == 1
    for bad in ("0", "201", "-3", "ten", "1.5"):
        with pytest.raises(Invalid) as exc:
            mq.parse_limit(bad)
        assert "limit" in exc.value.fields
    for bad in ("???", "bm90IGEgY3Vyc29y", mq.encode_cursor(T0, "a-thread-key")):
        with pytest.raises(Invalid) as exc:
            mq.decode_cursor(bad)
        assert "cursor" in exc.value.fields


def test_unified_role_view_merges_every_mailbox_of_the_user(alice, bob):
    a1, a2 = make_account(alice.id, "a1@example.com"), make_account(alice.id, "a2@example.com")
    in1, in2 = make_folder(a1), make_folder(a2, name="Posteingang", display_name="Posteingang")
    sent1 = make_folder(a1, name="Sent", role="sent")
    other = make_folder(a2, name="Archive", role=None)
    m1 = make_message(in1, date=T0)
    m2 = make_message(in2, date=T0 + timedelta(hours=1))
    s1 = make_message(sent1, date=T0 + timedelta(hours=2))
    make_message(other, date=T0 + timedelta(hours=3))
    bob_inbox = make_folder(make_account(bob.id, "b@example.com"))
    make_message(bob_inbox, date=T0 + timedelta(hours=4))

    assert ids(mq.paginate(mq.view_query(alice, "inbox"), 50).items) == [m2.id, m1.id]
    assert ids(mq.paginate(mq.view_query(alice, "sent"), 50).items) == [s1.id]
    assert mq.paginate(mq.view_query(alice, "trash"), 50).items == []
    with pytest.raises(Invalid) as exc:
        mq.clean_view("archive")
    assert "role" in exc.value.fields


def test_flagged_is_every_flagged_message_of_the_user(alice, bob):
    account = make_account(alice.id, "a@example.com")
    inbox, archive = make_folder(account), make_folder(account, name="Archive", role=None)
    f1 = make_message(inbox, flagged=True, date=T0)
    f2 = make_message(archive, flagged=True, date=T0 + timedelta(minutes=1))
    make_message(inbox, flagged=False)
    make_message(make_folder(make_account(bob.id, "b@example.com")), flagged=True)
    assert ids(mq.paginate(mq.view_query(alice, "flagged"), 50).items) == [f2.id, f1.id]


def test_search_by_sender_and_subject_ignores_case_and_wildcards(alice):
    inbox = make_folder(make_account(alice.id, "a@example.com"))
    m_name = make_message(inbox, from_name="Zoë Müller", from_addr="zoe@example.org", subject="Hi")
    m_addr = make_message(inbox, from_name="", from_addr="Billing@Shop.example", subject="Invoice")
    m_subj = make_message(inbox, from_addr="x@example.com", subject="Réunion ÉTÉ 2026 — 100% sure")
    make_message(inbox, from_addr="y@example.com", subject="Nothing here", preview="zoe réunion billing")

    def found(q):
        return set(ids(mq.paginate(mq.view_query(alice, "inbox", q), 50).items))

    assert found("MÜLLER") == {m_name.id}
    assert found("zoë") == {m_name.id}
    assert found("billing@shop") == {m_addr.id}
    assert found("invoice") == {m_addr.id}
    assert found("réunion été") == {m_subj.id}
    assert found("100%") == {m_subj.id}
    assert found("%") == {m_subj.id}  # a literal percent sign, not "anything"
    assert found("_") == set()
    assert found("zoe hi") == {m_name.id}  # every word must match
    assert found("zoe invoice") == set()
    assert found("") == {m_name.id, m_addr.id, m_subj.id} | found("nothing")
    inbox_q = mq.folder_query(inbox, "invoice")
    assert ids(mq.paginate(inbox_q, 50).items) == [m_addr.id]


def test_threads_group_replies_newest_thread_first(alice):
    account = make_account(alice.id, "a@example.com")
    inbox, sent = make_folder(account), make_folder(account, name="Sent", role="sent")
    root = make_message(inbox, subject="Plan", message_id="<root@x>", from_name="Carol", date=T0)
    reply = make_message(
        inbox,
        subject="Re: Plan",
        message_id="<r1@x>",
        in_reply_to="<root@x>",
        references="<root@x>",
        from_name="Dan",
        date=T0 + timedelta(hours=5),
    )
    make_message(sent, subject="Re: Plan", message_id="<r2@x>", references="<root@x> <r1@x>", date=T0)
    other = make_message(inbox, subject="Lunch", message_id="<lunch@x>", date=T0 + timedelta(hours=1))
    loose = make_message(inbox, subject="No id", message_id=None, date=T0 + timedelta(hours=2))
    late = make_message(
        inbox, subject="Re: Lunch", references="<lunch@x>", message_id="<l2@x>", date=T0 - timedelta(days=1)
    )

    page = mq.threads(alice, "inbox", limit=50)
    assert [(t["thread_key"], t["count"]) for t in page.items] == [
        ("<root@x>", 2),
        (f"#{loose.id}", 1),
        ("<lunch@x>", 2),
    ]
    plan = page.items[0]
    assert plan["subject"] == "Plan" and plan["senders"] == ["Dan", "Carol"] and plan["latest"].id == reply.id
    assert page.items[2]["latest"].id == other.id

    # Paging through threads one at a time gives the same order.
    keys, cursor = [], None
    while True:
        p = mq.threads(alice, "inbox", limit=1, cursor=cursor)
        keys += [t["thread_key"] for t in p.items]
        if p.next_cursor is None:
            break
        cursor = p.next_cursor
    assert keys == ["<root@x>", f"#{loose.id}", "<lunch@x>"]

    # The thread itself spans folders (the reply in Sent), oldest first.
    whole = mq.thread_messages(alice, "<root@x>")
    assert [m.subject for m in whole][0] == "Plan" and len(whole) == 3 and root.id in ids(whole)
    assert ids(mq.thread_messages(alice, f"#{loose.id}")) == [loose.id]
    assert ids(mq.thread_messages(alice, "<lunch@x>")) == [late.id, other.id]
    assert [t["thread_key"] for t in mq.threads(alice, "inbox", q="lunch").items] == ["<lunch@x>"]


def test_history_shows_a_message_synced_through_two_mailboxes_once(alice, bob):
    work, home = make_account(alice.id, "alice@work.example"), make_account(alice.id, "alice@home.example")
    w_in, h_in = make_folder(work), make_folder(home)
    h_arch = make_folder(home, name="Archiv/2026", role=None, display_name="Archiv/2026")
    w_sent = make_folder(work, name="Sent", role="sent")
    shared = dict(message_id="<shared@x>", subject="To both", from_addr="carol@example.com", date=T0)
    c1 = make_message(w_in, to=("alice@work.example", "alice@home.example"), **shared)
    c2 = make_message(h_in, to=("alice@work.example", "alice@home.example"), **shared)
    c3 = make_message(h_arch, to=("alice@work.example",), **shared)
    mine = make_message(
        w_sent,
        subject="Answer",
        from_addr="alice@work.example",
        cc=("CAROL@example.com",),
        message_id="<ans@x>",
        date=T0 + timedelta(hours=1),
    )
    no_id = make_message(w_in, from_addr="carol@example.com", message_id=None, date=T0 - timedelta(hours=1))
    no_id2 = make_message(h_in, from_addr="carol@example.com", message_id=None, date=T0 - timedelta(hours=1))
    make_message(w_in, from_addr="xcarol@example.com", message_id="<near@x>")  # a different address
    make_message(w_in, from_addr="dave@example.com", to=("alice@work.example",), message_id="<d@x>")
    bobs = make_folder(make_account(bob.id, "bob@example.com"))
    make_message(bobs, from_addr="carol@example.com", message_id="<bob-only@x>", date=T0 + timedelta(days=1))

    page = mq.history(alice, " Carol@Example.com ")
    assert [e.message.message_id for e in page.items] == ["<ans@x>", "<shared@x>", None, None]
    shared_entry = page.items[1]
    assert sorted(ids(shared_entry.copies)) == sorted([c1.id, c2.id, c3.id])
    assert {(p["account"], p["folder"]) for p in shared_entry.places} == {
        ("alice@work.example", "INBOX"),
        ("alice@home.example", "INBOX"),
        ("alice@home.example", "Archiv/2026"),
    }
    assert {e.message.id for e in page.items[2:]} == {no_id.id, no_id2.id}
    assert page.items[0].message.id == mine.id

    one_by_one, cursor = [], None
    while True:
        p = mq.history(alice, "carol@example.com", limit=1, cursor=cursor)
        one_by_one += [e.message.message_id or e.message.id for e in p.items]
        if p.next_cursor is None:
            break
        cursor = p.next_cursor
    assert len(one_by_one) == 4 and len(set(map(str, one_by_one))) == 4

    for bad in ("", "carol", "carol @example.com"):
        with pytest.raises(Invalid) as exc:
            mq.history(alice, bad)
        assert "address" in exc.value.fields
    assert mq.history(bob, "carol@example.com").items[0].message.message_id == "<bob-only@x>"
    assert len(mq.history(bob, "carol@example.com").items) == 1


def test_bob_never_sees_alice_and_admins_see_their_own_in_views(users, alice, bob):
    admin = users["admin"]["user"]
    a_inbox = make_folder(make_account(alice.id, "alice@example.com"))
    secret = make_message(
        a_inbox, subject="alice only", flagged=True, message_id="<s@x>", from_addr="carol@example.com"
    )
    for viewer in (bob, admin):
        for view in mq.VIEWS:
            assert mq.paginate(mq.view_query(viewer, view), 50).items == []
            assert mq.threads(viewer, view).items == []
        assert mq.history(viewer, "carol@example.com").items == []
        with pytest.raises(NotFound):
            mq.get_message(viewer, secret.id)
        with pytest.raises(NotFound):
            mq.thread_messages(viewer, "<s@x>")
        with pytest.raises(NotFound):
            mq.get_folder(mq.own_account_ids(viewer), a_inbox.id)
    with pytest.raises(NotFound):
        mq.account_scope(bob, a_inbox.account_id)
    # The API's accounts/<id> door: administrators may read any mailbox.
    assert mq.account_scope(admin, a_inbox.account_id).id == a_inbox.account_id
    assert mq.get_message(alice, secret.id).id == secret.id


def test_a_mailbox_whose_service_was_removed_keeps_its_messages(alice):
    account = make_account(alice.id, "a@example.com")
    inbox = make_folder(account)
    kept = make_message(inbox)
    account.state = AccountState.SERVICE_REMOVED.value
    account.service_id = None
    db.session.commit()
    assert ids(mq.paginate(mq.view_query(alice, "inbox"), 50).items) == [kept.id]
    side = mq.sidebar(alice)
    assert side[0]["account"].service_removed and side[0]["folders"][0]["count"] == 1


def test_thread_pages_across_many_chunks_match_a_plain_grouping(alice):
    inbox = make_folder(make_account(alice.id, "a@example.com"))
    made = []
    for i in range(450):
        thread = i % 150 if i % 7 else i % 11  # uneven threads, spread far apart in time
        made.append(
            make_message(
                inbox,
                message_id=f"<m{i}@x>",
                references=f"<t{thread}@x>",
                date=T0 + timedelta(minutes=(i * 37) % 500),
                commit=False,
            )  # fmt: skip
        )
    db.session.commit()
    newest: dict[str, tuple] = {}
    for m in made:
        newest[m.thread_key] = max(newest.get(m.thread_key, (m.date, m.id)), (m.date, m.id))
    expected = [k for k, _ in sorted(newest.items(), key=lambda kv: kv[1], reverse=True)]
    got, cursor = [], None
    while True:
        page = mq.threads(alice, "inbox", limit=7, cursor=cursor)
        got += [t["thread_key"] for t in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert got == expected
    counts = {t["thread_key"]: t["count"] for t in mq.threads(alice, "inbox", limit=200).items}
    assert sum(counts.values()) == 450
