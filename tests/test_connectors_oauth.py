"""Connection checks with OAuth2 access tokens against real servers.

Tokens come from the local authorization server (``oauth_server``); Dovecot's ``oauth2``
passdb (``oauth_dovecot``) and the aiosmtpd server (``oauth_smtp_server``) check them at
its introspection endpoint.  A good token signs in with XOAUTH2 (or OAUTHBEARER); an
expired, revoked or someone else's token fails as ``auth``; the token never shows in the
transcript or the error.
"""

from __future__ import annotations

import base64
import json

import pytest

from connectors.check import CheckReport, check_incoming, check_outgoing
from connectors.errors import ErrorClass
from connectors.settings import Credentials
from connectors.transcript import Transcript
from tests.servers.smtp import SMTPServer
from tests.test_connectors_check import failed, passed, server

ALICE = "alice@example.test"
BOB = "bob@example.test"


def token_for(oauth_server, user: str = ALICE) -> str:
    return oauth_server.issue_token(user)["access_token"]


def assert_no_token(report: CheckReport, transcript: Transcript, token: str) -> str:
    """The token (and its base64 blob) appear nowhere; return the transcript text."""
    text = transcript.as_text()
    dumped = json.dumps(report.as_dict())
    for form in Credentials(ALICE, oauth2_token=token).secret_forms():
        assert form not in text and form not in dumped
    assert token[:12] not in text and token[:12] not in dumped
    return text


def incoming(dovecot, certs, protocol: str, security: str = "tls") -> object:
    port = {
        ("imap", "tls"): dovecot.imaps_port,
        ("imap", "starttls"): dovecot.imap_port,
        ("pop3", "tls"): dovecot.pop3s_port,
        ("pop3", "starttls"): dovecot.pop3_port,
    }[protocol, security]
    return server(protocol, port, security, certs)


# -- IMAP and POP3 against Dovecot's oauth2 passdb ------------------------------------------------


@pytest.mark.parametrize("protocol,security", [("imap", "tls"), ("imap", "starttls"), ("pop3", "tls")])
def test_incoming_xoauth2_signs_in(oauth_server, oauth_dovecot, certs, protocol, security):
    oauth_dovecot.reset_user(ALICE)
    oauth_dovecot.add_messages(ALICE, 2)
    token = token_for(oauth_server)
    transcript = Transcript()
    report = check_incoming(
        incoming(oauth_dovecot, certs, protocol, security),
        Credentials(ALICE, oauth2_token=token),
        transcript=transcript,
    )
    last = "list" if protocol == "imap" else "stat"
    d = json.loads(json.dumps(report.as_dict()))
    assert report.ok, d
    assert [s["name"] for s in d["steps"]][-2:] == ["login", last]
    if protocol == "pop3":
        assert report.info["messages"] == 2
    text = assert_no_token(report, transcript, token)
    assert "XOAUTH2" in text
    assert oauth_server.introspections >= 1
    assert f"user=<{ALICE}>, method=XOAUTH2" in oauth_dovecot.log_text()


def test_imap_oauthbearer_when_xoauth2_missing(oauth_server, oauth_dovecot, certs):
    """The client falls back to OAUTHBEARER; here forced by hiding XOAUTH2 from the client's view."""
    from connectors.imap import ImapClient

    token = token_for(oauth_server)
    client = ImapClient(incoming(oauth_dovecot, certs, "imap"), Credentials(ALICE, oauth2_token=token))
    try:
        client.connect()
        client.capabilities = [c for c in client.capabilities if c.upper() != "AUTH=XOAUTH2"]
        client.login()
        assert client.list_folders()
    finally:
        client.close()
    assert f"user=<{ALICE}>, method=OAUTHBEARER" in oauth_dovecot.log_text()


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
@pytest.mark.parametrize("spoil", ["expired", "revoked", "other_user", "unknown"])
def test_incoming_bad_token_fails_as_auth(oauth_server, oauth_dovecot, certs, protocol, spoil):
    token = token_for(oauth_server, BOB if spoil == "other_user" else ALICE)
    if spoil == "expired":
        oauth_server.expire_access_tokens(ALICE)
    elif spoil == "revoked":
        oauth_server.revoke_access_tokens(ALICE)
    elif spoil == "unknown":
        token = "not-a-token-" + token[::-1]
    transcript = Transcript()
    report = check_incoming(
        incoming(oauth_dovecot, certs, protocol),
        Credentials(ALICE, oauth2_token=token),
        transcript=transcript,
    )
    error = failed(report, ErrorClass.AUTH, "login")
    assert_no_token(report, transcript, token)
    # A refused token is not a wrong password: the fix is signing in again.
    assert error.field == "oauth2" and "Sign in again" in error.as_dict()["hints"][-1]
    assert "OAuth2 access token" in error.message


class RawTranscript(Transcript):
    """Also keeps what the client really sent (before masking), to count the token's trips."""

    def __init__(self) -> None:
        super().__init__()
        self.raw_sent: list[bytes] = []

    def sent(self, data: bytes | str) -> None:
        self.raw_sent.append(data.encode() if isinstance(data, str) else data)
        super().sent(data)


@pytest.mark.parametrize(
    "protocol,mechanism", [("imap", "XOAUTH2"), ("imap", "OAUTHBEARER"), ("pop3", "XOAUTH2")]
)  # the POP3 client speaks XOAUTH2 only
def test_refused_token_is_sent_once_and_the_error_challenge_answered(
    oauth_server, oauth_dovecot, certs, protocol, mechanism
):
    """Dovecot answers a refused token with a '+ <base64 JSON>' challenge: the client answers
    it (empty for XOAUTH2, ^A for OAUTHBEARER) instead of sending the token again or reading
    the challenge as success, and the result is ``auth``."""
    from connectors.imap import ImapClient

    token = token_for(oauth_server)
    oauth_server.expire_access_tokens(ALICE)
    transcript = RawTranscript()
    if mechanism == "OAUTHBEARER":
        client = ImapClient(
            incoming(oauth_dovecot, certs, "imap"), Credentials(ALICE, oauth2_token=token), transcript
        )
        try:
            client.connect()
            client.capabilities = [c for c in client.capabilities if c.upper() != "AUTH=XOAUTH2"]
            with pytest.raises(Exception) as info:
                client.login()
        finally:
            client.close()
        assert getattr(info.value, "error_class", None) is ErrorClass.AUTH, info.value
    else:
        report = check_incoming(
            incoming(oauth_dovecot, certs, protocol),
            Credentials(ALICE, oauth2_token=token),
            transcript=transcript,
        )
        failed(report, ErrorClass.AUTH, "login")
    sent = b"".join(transcript.raw_sent)
    head = f"user={ALICE}\1" if mechanism == "XOAUTH2" else f"n,a={ALICE},\1"
    blob = base64.b64encode(f"{head}auth=Bearer {token}\1\1".encode())
    assert sent.count(blob) == 1 and sent.count(token.encode()) == 0, sent
    assert b"+ eyJ" in transcript.as_text().encode()  # the error challenge was seen
    after = sent.split(b"\r\n")
    assert (b"" if mechanism == "XOAUTH2" else b"AQ==") in after


def test_password_users_still_sign_in_beside_oauth(oauth_dovecot, certs):
    from tests.servers.fixtures import OAUTH_USERS

    report = check_incoming(incoming(oauth_dovecot, certs, "imap"), Credentials(BOB, OAUTH_USERS[BOB]))
    passed(report, ["connect", "tls", "capabilities", "login", "list"])


def test_incoming_refreshed_token_works_after_expiry(oauth_server, oauth_dovecot, certs):
    """A token from a refresh (rotation) signs in; the expired one it replaced does not."""
    first = oauth_server.issue_token(ALICE)
    oauth_server.expire_access_tokens(ALICE)
    settings = incoming(oauth_dovecot, certs, "imap")
    failed(check_incoming(settings, Credentials(ALICE, oauth2_token=first["access_token"])), ErrorClass.AUTH)
    from tests.test_oauth_servers import post

    status, second = post(
        oauth_server.token_url, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert status == 200, second
    passed(
        check_incoming(settings, Credentials(ALICE, oauth2_token=second["access_token"])),
        ["connect", "tls", "capabilities", "login", "list"],
    )


# -- SMTP against aiosmtpd ------------------------------------------------------------------------


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_smtp_xoauth2_signs_in(oauth_server, clean_oauth_smtp_server: SMTPServer, certs, security):
    smtp = clean_oauth_smtp_server
    token = token_for(oauth_server)
    port = smtp.smtps_port if security == "tls" else smtp.starttls_port
    transcript = Transcript()
    report = check_outgoing(
        server("smtp", port, security, certs), Credentials(ALICE, oauth2_token=token), transcript=transcript
    )
    assert report.ok, report.as_dict()
    assert [s.name for s in report.steps][-1] == "login"
    assert smtp.auth_attempts == [("XOAUTH2", ALICE, True)]
    assert "AUTH LOGIN OAUTHBEARER PLAIN XOAUTH2" in report.capabilities
    text = assert_no_token(report, transcript, token)
    assert "AUTH XOAUTH2" in text and "235" in text


def test_smtp_oauthbearer_when_only_it_is_offered(oauth_server, oauth_server_session, smtp_factory, certs):
    smtp = smtp_factory(
        users={},
        oauth2_introspection_url=oauth_server_session.introspection_url,
        oauth2_mechanisms=("OAUTHBEARER",),
    )
    token = token_for(oauth_server)
    report = check_outgoing(
        server("smtp", smtp.smtps_port, "tls", certs), Credentials(ALICE, oauth2_token=token)
    )
    assert report.ok, report.as_dict()
    assert smtp.auth_attempts == [("OAUTHBEARER", ALICE, True)]
    # And a bad token through OAUTHBEARER: the error challenge is answered, then refused.
    oauth_server.revoke_access_tokens(ALICE)
    report = check_outgoing(
        server("smtp", smtp.smtps_port, "tls", certs), Credentials(ALICE, oauth2_token=token)
    )
    failed(report, ErrorClass.AUTH, "login")
    assert smtp.auth_attempts[-1] == ("OAUTHBEARER", ALICE, False)


@pytest.mark.parametrize("spoil", ["expired", "revoked", "other_user"])
def test_smtp_bad_token_fails_as_auth(oauth_server, clean_oauth_smtp_server, certs, spoil):
    smtp = clean_oauth_smtp_server
    token = token_for(oauth_server, BOB if spoil == "other_user" else ALICE)
    if spoil == "expired":
        oauth_server.expire_access_tokens(ALICE)
    elif spoil == "revoked":
        oauth_server.revoke_access_tokens(ALICE)
    transcript = Transcript()
    report = check_outgoing(
        server("smtp", smtp.smtps_port, "tls", certs),
        Credentials(ALICE, oauth2_token=token),
        transcript=transcript,
    )
    err = failed(report, ErrorClass.AUTH, "login")
    assert smtp.auth_attempts == [("XOAUTH2", ALICE, False)]
    text = assert_no_token(report, transcript, token)
    assert "535" in text
    assert token[:12] not in (err.raw or "") + (err.detail or "")


def test_smtp_oauth_login_then_send(oauth_server, clean_oauth_smtp_server, certs):
    """The session a token opened can send; the server records the token's user as the login."""
    from connectors.smtp import SmtpClient

    smtp = clean_oauth_smtp_server
    client = SmtpClient(
        server("smtp", smtp.smtps_port, "tls", certs),
        Credentials(ALICE, oauth2_token=token_for(oauth_server)),
    )
    try:
        client.connect()
        client.login()
        client.send_message(b"Subject: hi\r\n\r\nhello\r\n", ALICE, [BOB])
    finally:
        client.close()
    assert [(m.login, m.rcpt_tos) for m in smtp.messages] == [(ALICE, [BOB])]
