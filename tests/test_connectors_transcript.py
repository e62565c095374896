""" "Enable debug" transcripts: the whole conversation, and never a secret in it."""

from __future__ import annotations

import base64
import json

import pytest

from connectors import smtp as smtp_module
from connectors.check import check_incoming, check_outgoing
from connectors.settings import Credentials
from connectors.transcript import MASK, Transcript
from tests.test_connectors_check import ALICE, server

PASSWORD = ALICE.password


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


SECRET_FORMS = [PASSWORD, b64(PASSWORD), b64(f"\0alice\0{PASSWORD}"), b64(f"alice\0alice\0{PASSWORD}")]


def assert_clean(transcript: Transcript, *extra: str) -> str:
    text = transcript.as_text() + json.dumps(transcript.as_list())
    for form in [*SECRET_FORMS, *extra]:
        assert form not in text, f"{form!r} leaked into the transcript"
        assert form.rstrip("=") not in text
    assert MASK in text
    return text


# --- masking, line by line ----------------------------------------------------------------------


def test_imap_login_and_authenticate_are_masked():
    t = Transcript()  # no secrets given: structural masking alone must hold
    t.begin("imap", "test")
    t.sent(b'A1 LOGIN alice "pa ss\\"word"')
    t.sent(b"\r\n")  # imapclient sends the CRLF separately
    t.received(b"A1 NO [AUTHENTICATIONFAILED] Authentication failed.")
    t.sent(b"A2 LOGIN alice {8}\r\n")
    t.received(b"+ OK")
    t.sent(b"p4ssw0rd\r\n")
    t.received(b"A2 OK Logged in")
    t.sent(b"A3 AUTHENTICATE PLAIN\r\n")
    t.received(b"+ ")
    t.sent(b64("\0alice\0p4ssw0rd").encode() + b"\r\n")
    t.received(b"A3 OK")
    t.sent(b"A4 AUTHENTICATE XOAUTH2 " + b64("user=alice\1auth=Bearer tok\1\1").encode() + b"\r\n")
    t.received(b"A4 OK")
    t.sent(b"A5 SELECT INBOX\r\n")
    sent = [e.text for e in t if e.direction == "sent"]
    assert sent == [
        "A1 LOGIN alice ***",
        "A2 LOGIN alice ***",  # even the literal's size: it is the password's length
        "***",
        "A3 AUTHENTICATE PLAIN",
        "***",
        "A4 AUTHENTICATE XOAUTH2 ***",
        "A5 SELECT INBOX",
    ]


def test_pop3_and_smtp_auth_are_masked():
    t = Transcript()
    t.begin("pop3", "test")
    for line in ("USER alice", "PASS p4ssw0rd", "APOP alice 0123456789abcdef", "AUTH PLAIN " + b64("\0a\0b")):
        t.sent(line + "\r\n")
    t.received("+OK")
    t.begin("smtp", "test")
    t.sent("AUTH LOGIN\r\n")
    t.received("334 VXNlcm5hbWU6")
    t.sent(b64("alice") + "\r\n")
    t.received("334 UGFzc3dvcmQ6")
    t.sent(b64("p4ssw0rd") + "\r\n")
    t.received("235 2.7.0 Authentication successful")
    t.sent("MAIL FROM:<alice@example.com>\r\n")
    sent = [e.text for e in t if e.direction == "sent"]
    assert sent == [
        "USER alice",
        "PASS ***",
        "APOP alice ***",
        "AUTH PLAIN ***",
        "AUTH LOGIN",
        "***",
        "***",
        "MAIL FROM:<alice@example.com>",
    ]


def test_known_secrets_are_scrubbed_from_server_lines_too():
    creds = Credentials("alice", "hunter22", oauth2_token="ya29.token-value")
    t = Transcript()
    t.add_secrets(creds.secret_forms())
    t.begin("imap", "test")
    t.received("A1 NO you said hunter22 and " + b64("\0alice\0hunter22"))
    t.received("* OK token ya29.token-value")
    text = t.as_text()
    assert "hunter22" not in text and "ya29.token-value" not in text and text.count(MASK) == 3
    assert repr(creds) == "Credentials(username='alice')"  # nothing secret in logs of the object


def test_entries_have_direction_and_time():
    t = Transcript()
    t.begin("smtp", "connected")
    t.sent("EHLO x\r\n")
    t.received("250 ok")
    rows = t.as_list()
    assert [r["direction"] for r in rows] == ["note", "sent", "received"]
    assert all(r["at"].endswith("+00:00") and r["elapsed_ms"] >= 0 for r in rows)


# --- real servers -------------------------------------------------------------------------------------


def test_imap_debug_transcript_hides_the_password(dovecot, certs):
    t = Transcript()
    report = check_incoming(server("imap", dovecot.imap_port, "starttls", certs), ALICE, transcript=t)
    assert report.ok
    text = assert_clean(t)
    assert "LOGIN alice ***" in text and "STARTTLS" in text and "LIST" in text


def test_pop3_debug_transcript_hides_the_password(dovecot, certs):
    t = Transcript()
    assert check_incoming(server("pop3", dovecot.pop3s_port, "tls", certs), ALICE, transcript=t).ok
    text = assert_clean(t)
    assert "PASS ***" in text and "USER alice" in text and "STAT" in text


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_smtp_debug_transcript_hides_the_auth_payload(monkeypatch, smtp_server, certs, mechanism):
    monkeypatch.setattr(smtp_module, "PASSWORD_MECHANISMS", (mechanism,))
    t = Transcript()
    assert check_outgoing(
        server("smtp", smtp_server.starttls_port, "starttls", certs), ALICE, transcript=t
    ).ok
    text = assert_clean(t, b64("alice") if mechanism == "LOGIN" else PASSWORD)
    assert f"AUTH {mechanism}" in text and "235" in text


def test_failed_login_transcript_is_clean_too(dovecot, smtp_server, certs):
    wrong = Credentials("alice", "Wr0ng-Passw0rd!")
    for settings, check in (
        (server("imap", dovecot.imaps_port, "tls", certs), check_incoming),
        (server("pop3", dovecot.pop3_port, "starttls", certs), check_incoming),
        (server("smtp", smtp_server.smtps_port, "tls", certs), check_outgoing),
    ):
        t = Transcript()
        report = check(settings, wrong, transcript=t)
        assert report.error.error_class.value == "auth"
        assert_clean(t, *wrong.secret_forms())
