"""The test servers are real: stdlib clients log in, read, send and see TLS fail as they would elsewhere."""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import ssl
from email.message import EmailMessage

import pytest

from tests.servers import dovecot as dovecot_module

ALICE, ALICE_PW = "alice", "secret-alice-pw"


def _message(subject: str, to: str = "bob@example.com") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "alice@example.com", to, subject
    msg.set_content("Hello from the Mailroom tests.\n")
    return msg


# -- IMAP -------------------------------------------------------------------------------


def test_imap_starttls_login(dovecot, certs):
    imap = imaplib.IMAP4(dovecot.host, dovecot.imap_port)
    assert "STARTTLS" in imap.capabilities
    imap.starttls(certs.client_context())
    assert imap.login(ALICE, ALICE_PW)[0] == "OK"
    imap.logout()


def test_imaps_login_and_special_use_folders(clean_dovecot, certs):
    with imaplib.IMAP4_SSL(
        clean_dovecot.host, clean_dovecot.imaps_port, ssl_context=certs.client_context()
    ) as imap:
        imap.login("bob", "secret-bob-pw")
        typ, lines = imap.list()
    listing = b"\n".join(lines)
    for flag, name in (
        (rb"\Drafts", b"Drafts"),
        (rb"\Sent", b"Sent"),
        (rb"\Junk", b"Junk"),
        (rb"\Trash", b"Trash"),
    ):
        assert flag in listing and b'"/" ' + name in listing


def test_added_messages_are_found(clean_dovecot):
    clean_dovecot.add_message(ALICE, _message("Quarterly report"))
    clean_dovecot.add_message(ALICE, b"Subject: already read\r\n\r\nbody\r\n", flags=r"\Seen")
    clean_dovecot.add_messages(ALICE, 200, folder="Archive")
    with imaplib.IMAP4(clean_dovecot.host, clean_dovecot.imap_port) as imap:
        imap.login(ALICE, ALICE_PW)
        imap.select("INBOX")
        assert imap.search(None, "SUBJECT", '"Quarterly report"')[1] == [b"1"]
        assert imap.search(None, "SEEN")[1] == [b"2"]
        assert b"(MESSAGES 200)" in imap.status("Archive", "(MESSAGES)")[1][0]


def test_create_non_ascii_folders(clean_dovecot):
    with imaplib.IMAP4(clean_dovecot.host, clean_dovecot.imap_port) as imap:
        imap.login(ALICE, ALICE_PW)
        assert imap.create("&ANw-ber")[0] == "OK"  # "Über" in modified UTF-7
        assert imap.create('"Entrata/Posta ricevuta"')[0] == "OK"
        clean_dovecot.add_message(ALICE, _message("Grüße"), folder="Über")
        clean_dovecot.add_message(
            ALICE, _message("Dots"), folder="Archive/2024.Q1"
        )  # stored as .Archive.2024\2eQ1
        assert imap.select("&ANw-ber") == ("OK", [b"1"])
        assert imap.select('"Archive/2024.Q1"') == ("OK", [b"1"])
        listing = b"\n".join(imap.list()[1])
    assert b'"/" "Entrata/Posta ricevuta"' in listing
    assert clean_dovecot.folder_path(ALICE, "Entrata/Posta ricevuta").is_dir()


def test_imap_wrong_password_rejected(dovecot):
    with imaplib.IMAP4(dovecot.host, dovecot.imap_port) as imap:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            imap.login(ALICE, "wrong")


def test_logindisabled_until_starttls(dovecot_factory, certs):
    server = dovecot_factory(plaintext_auth=False)
    with imaplib.IMAP4(server.host, server.imap_port) as imap:
        assert "LOGINDISABLED" in imap.capabilities
        with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
            imap.login(ALICE, ALICE_PW)
        imap.starttls(certs.client_context())
        assert imap.login(ALICE, ALICE_PW)[0] == "OK"
    pop = poplib.POP3(server.host, server.pop3_port)
    with pytest.raises(poplib.error_proto):
        pop.user(ALICE)
    pop.close()


def test_no_tls_instance_offers_no_starttls(dovecot_factory):
    server = dovecot_factory(ssl=False)
    assert server.imaps_port is None and server.pop3s_port is None
    with imaplib.IMAP4(server.host, server.imap_port) as imap:
        assert "STARTTLS" not in imap.capabilities
        assert imap.login(ALICE, ALICE_PW)[0] == "OK"


def test_missing_dovecot_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(dovecot_module, "DOVECOT_BIN", "/nonexistent/dovecot")
    with pytest.raises(dovecot_module.DovecotError, match="/nonexistent/dovecot not found"):
        dovecot_module.Dovecot(ssl=False).start()


def test_expired_certificate_fails_verification(dovecot_factory, certs):
    server = dovecot_factory(cert=certs.expired)
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate has expired"):
        imaplib.IMAP4_SSL(server.host, server.imaps_port, ssl_context=certs.client_context())


# -- POP3 -------------------------------------------------------------------------------


def test_pop3s_stat_and_pop3_stls(clean_dovecot, certs):
    clean_dovecot.add_messages(ALICE, 3)
    pop = poplib.POP3_SSL(clean_dovecot.host, clean_dovecot.pop3s_port, context=certs.client_context())
    pop.user(ALICE)
    pop.pass_(ALICE_PW)
    assert pop.stat()[0] == 3
    pop.quit()
    pop = poplib.POP3(clean_dovecot.host, clean_dovecot.pop3_port)
    pop.stls(certs.client_context())
    pop.user(ALICE)
    with pytest.raises(poplib.error_proto):
        pop.pass_("wrong")
    pop.close()


# -- SMTP -------------------------------------------------------------------------------


def test_smtp_starttls_auth_and_send(clean_smtp_server, certs):
    server = clean_smtp_server
    with smtplib.SMTP(server.host, server.starttls_port) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls") and not smtp.has_extn("auth")
        with pytest.raises(smtplib.SMTPSenderRefused):  # nothing but STARTTLS before TLS
            smtp.sendmail("alice@example.com", ["bob@example.com"], b"Subject: x\r\n\r\nx\r\n")
        smtp.starttls(context=certs.client_context())
        smtp.ehlo()
        assert smtp.has_extn("auth")
        smtp.login(ALICE, ALICE_PW)
        smtp.send_message(_message("Via STARTTLS"))
    [received] = server.messages
    assert (received.mail_from, received.rcpt_tos, received.login, received.tls) == (
        "alice@example.com",
        ["bob@example.com"],
        ALICE,
        True,
    )
    assert b"Subject: Via STARTTLS" in received.data and received.port == server.starttls_port


def test_smtps_implicit_tls(clean_smtp_server, certs):
    server = clean_smtp_server
    with smtplib.SMTP_SSL(server.host, server.smtps_port, context=certs.client_context()) as smtp:
        smtp.login(ALICE, ALICE_PW)
        smtp.send_message(_message("Via SMTPS"))
    assert [(m.port, m.login, m.tls) for m in server.messages] == [(server.smtps_port, ALICE, True)]


def test_smtp_wrong_password_and_no_login(smtp_server, certs):
    with smtplib.SMTP_SSL(smtp_server.host, smtp_server.smtps_port, context=certs.client_context()) as smtp:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login(ALICE, "wrong")
        with pytest.raises(smtplib.SMTPSenderRefused):  # auth_required
            smtp.sendmail("alice@example.com", ["bob@example.com"], b"Subject: x\r\n\r\nx\r\n")


def test_smtp_plain_port_has_no_starttls(smtp_server):
    with smtplib.SMTP(smtp_server.host, smtp_server.plain_port) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("starttls") and smtp.has_extn("auth")


@pytest.mark.parametrize(
    "kind, error",
    [
        ("expired", "certificate has expired"),
        ("wrong_host", "mismatch, certificate is not valid for '127.0.0.1'"),
        ("self_signed", "self-signed certificate"),
    ],
)
def test_smtp_bad_certificates_fail_verification(smtp_factory, certs, kind, error):
    server = smtp_factory(cert=getattr(certs, kind))
    with pytest.raises(ssl.SSLCertVerificationError, match=error):
        smtplib.SMTP_SSL(server.host, server.smtps_port, context=certs.client_context(), timeout=5)
