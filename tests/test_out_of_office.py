"""Out-of-office replies against Dovecot (incoming) and the aiosmtpd server (the replies).

New mail is found by the real sync job; replies go out through the sending job in a real RQ
worker (``SimpleWorker``, burst) and are checked where they arrive, at the SMTP server.
"""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import pytest

from tests.support.job_worker import run_burst
from webapp.extensions import db
from webapp.jobs.sync import sync_account
from webapp.models import Account, Alias, AutoReply, Folder, LogEntry, LogSource, OutgoingMessage, utcnow
from webapp.secretbox import box


@pytest.fixture
def app(send_app):
    return send_app


@pytest.fixture
def mailbox(app, users, clean_dovecot, clean_smtp_server):
    """Alice's mailbox: IMAP on Dovecot, SMTP on aiosmtpd's implicit-TLS port; synced once (empty)."""
    account = Account(
        user_id=users["alice"]["id"],
        manual=True,
        username="alice",
        email="alice@example.com",
        password_encrypted=box().encrypt(clean_dovecot.users["alice"]),
        imap_host="127.0.0.1",
        imap_port=clean_dovecot.imap_port,
        imap_security="none",
        smtp_host="127.0.0.1",
        smtp_port=clean_smtp_server.smtps_port,
        smtp_security="tls",
        state="connected",
        is_main=True,
    )
    db.session.add(account)
    db.session.flush()
    db.session.add(Folder(account_id=account.id, name="INBOX", display_name="INBOX", sync=True, role="inbox"))
    db.session.commit()
    return account


def incoming(
    dovecot, subject: str, sender: str = "Carol <carol@ext.test>", *, return_path=None, to=None, extra=""
):
    head = f"Return-Path: {return_path}\r\n" if return_path is not None else ""
    msgid = f"<{abs(hash((subject, sender)))}@ext.test>"
    dovecot.add_message(
        "alice",
        f"{head}From: {sender}\r\nTo: {to or 'Alice <alice@example.com>'}\r\nSubject: {subject}\r\n"
        f"Message-ID: {msgid}\r\nReferences: <root@ext.test>\r\nDate: Tue, 1 Oct 2024 10:00:00 +0000\r\n"
        f"{extra}\r\nHello.\r\n",
    )
    return msgid


def turn_on(api, account, **fields):
    body = {"enabled": True, "subject": "", "body": "I am away until Monday.", "interval_days": 4, **fields}
    response = api["alice"].put(f"/api/v1/accounts/{account.id}/out-of-office", json=body)
    assert response.status_code == 200, response.json
    return response.json


def replies(smtp) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(m.data, policy=email.policy.default) for m in smtp.messages]


def skips(account) -> list[str]:
    return [
        e.message
        for e in LogEntry.query.filter_by(account_id=account.id, source=LogSource.INCOMING.value).order_by(
            LogEntry.id
        )
        if "no reply" in e.message
    ]


def test_one_reply_per_sender_with_rfc3834_headers(api, mailbox, clean_dovecot, clean_smtp_server):
    d, smtp = clean_dovecot, clean_smtp_server
    incoming(d, "Before the holidays")  # already there when the mailbox is first synced
    turn_on(api, mailbox)
    assert "automation" not in sync_account(mailbox.id)  # the first sync seeds: no reply to old mail
    first = incoming(d, "Budget", return_path="<carol.sender@ext.test>")
    incoming(d, "Budget again", return_path="<carol.sender@ext.test>")
    result = sync_account(mailbox.id)
    assert result["automation"]["out_of_office"] == {"replied": 1, "skipped": 1}
    run_burst()
    (reply,) = replies(smtp)
    assert smtp.messages[0].rcpt_tos == ["carol.sender@ext.test"]  # the Return-Path (RFC 3834 section 4)
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["In-Reply-To"] == first
    assert reply["References"].split() == ["<root@ext.test>", first]
    assert reply["Subject"] == "Auto: Budget"
    assert reply["To"] == "carol.sender@ext.test"
    assert "alice@example.com" in reply["From"]
    assert "I am away until Monday." in reply.get_body(("plain",)).get_content()
    assert db.session.query(OutgoingMessage).filter_by(origin="out_of_office").one().state == "sent"
    assert [r.sender for r in AutoReply.query.all()] == ["carol.sender@ext.test"]
    assert any("already had a reply" in s for s in skips(mailbox))
    # Later mail from the same sender inside the interval: still one reply; another sender gets one.
    incoming(d, "Third", return_path="<carol.sender@ext.test>")
    incoming(d, "From Dan", sender="dan@ext.test", return_path="<dan@ext.test>")
    sync_account(mailbox.id)
    run_burst()
    assert [m.rcpt_tos for m in smtp.messages] == [["carol.sender@ext.test"], ["dan@ext.test"]]
    # Once the interval has passed, the sender gets a reply again.
    row = AutoReply.query.filter_by(sender="carol.sender@ext.test").one()
    row.replied_at = utcnow() - timedelta(days=5)
    db.session.commit()
    incoming(d, "Fourth", return_path="<carol.sender@ext.test>")
    sync_account(mailbox.id)
    run_burst()
    assert len(smtp.messages) == 3 and replies(smtp)[2]["Subject"] == "Auto: Fourth"


def test_no_reply_to_automatic_list_bulk_own_or_noreply_mail(
    api, users, mailbox, clean_dovecot, clean_smtp_server
):
    d, smtp = clean_dovecot, clean_smtp_server
    other = Account(user_id=users["alice"]["id"], manual=True, username="x", email="alice@home.test")
    db.session.add(other)
    db.session.flush()
    db.session.add(Alias(account_id=mailbox.id, address="sales@example.com"))
    db.session.commit()
    turn_on(api, mailbox, subject="Away")
    sync_account(mailbox.id)
    incoming(d, "auto", extra="Auto-Submitted: auto-replied\r\n")
    incoming(d, "generated", extra="Auto-Submitted: auto-generated\r\n")
    incoming(d, "list", sender="member@ext.test", extra="List-Id: <devs.ext.test>\r\n")
    incoming(d, "unsubscribe", sender="shop@ext.test", extra="List-Unsubscribe: <mailto:u@ext.test>\r\n")
    incoming(d, "bulk", sender="promo@ext.test", extra="Precedence: bulk\r\n")
    incoming(d, "junk", sender="junk@ext.test", extra="Precedence: junk\r\n")
    incoming(d, "own mailbox", sender="Alice <alice@home.test>")
    incoming(d, "own address", sender="alice@example.com")
    incoming(d, "noreply", sender="No Reply <noreply@ext.test>")
    incoming(d, "no-reply", sender="no-reply@ext.test")
    incoming(d, "daemon", sender="MAILER-DAEMON@ext.test")
    incoming(d, "bounce", sender="erin@ext.test", return_path="<>")
    incoming(d, "not to me", sender="frank@ext.test", to="team@ext.test")
    incoming(d, "to my alias", sender="gina@ext.test", to="sales@example.com")
    incoming(d, "explicit no", sender="hal@ext.test", extra="Auto-Submitted: no\r\n")
    result = sync_account(mailbox.id)
    assert result["automation"]["out_of_office"] == {"replied": 2, "skipped": 13}
    run_burst()
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["gina@ext.test", "hal@ext.test"]
    assert {r["Subject"] for r in replies(smtp)} == {"Away"}
    reasons = "\n".join(skips(mailbox))
    for phrase in (
        '"auto" from carol@ext.test: it is an automatic message (Auto-Submitted: auto-replied)',
        "Auto-Submitted: auto-generated",
        "mailing list (List-Id)",
        "mailing list (List-Unsubscribe)",
        "Precedence: bulk",
        "Precedence: junk",
        '"own mailbox" from alice@home.test: it came from one of your own addresses',
        '"own address" from alice@example.com: it came from one of your own addresses',
        "noreply@ext.test does not take replies",
        "no-reply@ext.test does not take replies",
        "mailer-daemon@ext.test does not take replies",
        "empty Return-Path",
        "not named in To or Cc",
    ):
        assert phrase in reasons, phrase


@pytest.mark.parametrize("window", ["future", "past"])
def test_no_reply_outside_the_window(api, mailbox, clean_dovecot, clean_smtp_server, window):
    now = utcnow()
    if window == "future":
        fields = {"starts_at": (now + timedelta(days=2)).isoformat() + "Z", "ends_at": None}
    else:
        fields = {
            "starts_at": (now - timedelta(days=9)).isoformat() + "Z",
            "ends_at": (now - timedelta(days=2)).isoformat() + "Z",
        }
    assert turn_on(api, mailbox, **fields)["active_now"] is False
    sync_account(mailbox.id)
    incoming(clean_dovecot, "Hello")
    result = sync_account(mailbox.id)
    run_burst()
    assert result["automation"]["out_of_office"] == {"replied": 0, "skipped": 1}
    assert clean_smtp_server.messages == [] and AutoReply.query.count() == 0
    assert "outside its dates" in skips(mailbox)[0]


def test_inside_an_open_ended_window_replies(api, mailbox, clean_dovecot, clean_smtp_server):
    turn_on(api, mailbox, starts_at=(utcnow() - timedelta(hours=1)).isoformat(), ends_at=None)
    sync_account(mailbox.id)
    incoming(clean_dovecot, "Hello")
    sync_account(mailbox.id)
    run_burst()
    assert [m.rcpt_tos for m in clean_smtp_server.messages] == [["carol@ext.test"]]  # no Return-Path: From


def test_api_validation_and_access(api, mailbox):
    url = f"/api/v1/accounts/{mailbox.id}/out-of-office"
    body = api["alice"].get(url).json
    assert body == {
        "account_id": mailbox.id,
        "enabled": False,
        "starts_at": None,
        "ends_at": None,
        "subject": "",
        "body": "",
        "interval_days": 4,
        "active_now": False,
    }
    bad = api["alice"].put(
        url,
        json={
            "enabled": True,
            "starts_at": "next week",
            "interval_days": 0,
            "subject": "two\nlines",
            "colour": "red",
        },
    )
    assert bad.status_code == 422
    assert set(bad.json["fields"]) == {"starts_at", "interval_days", "subject", "colour", "body"}
    bad = api["alice"].put(
        url, json={"body": "x", "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}
    )
    assert bad.status_code == 422 and set(bad.json["fields"]) == {"ends_at"}
    assert api["alice"].put(url, json={"interval_days": 31}).json["fields"] == {
        "interval_days": "must be a whole number of days from 1 to 30"
    }
    ok = api["alice"].put(
        url,
        json={"enabled": True, "body": "Away", "starts_at": "2030-01-01T10:00:00+02:00", "interval_days": 7},
    )
    assert (
        ok.status_code == 200
        and ok.json["starts_at"] == "2030-01-01T08:00:00Z"
        and ok.json["interval_days"] == 7
    )
    assert api["alice"].put(url, json={"enabled": False}).json["body"] == "Away"  # missing keys are kept
    assert api["bob"].get(url).status_code == 404
    assert api["bob"].put(url, json={"enabled": False}).status_code == 404
