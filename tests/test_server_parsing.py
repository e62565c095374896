"""host:port text as people type it: understood, or refused with a reason."""

import pytest

from connectors.settings import Security, ServerParseError, parse_server, port_mismatch


@pytest.mark.parametrize(
    ("text", "protocol", "host", "port", "implied"),
    [
        ("smtp.myserver.com:465", "smtp", "smtp.myserver.com", 465, None),
        ("ssl://smtps.aruba.it", "smtp", "smtps.aruba.it", 465, Security.TLS),
        ("ssl://imaps.aruba.it", "imap", "imaps.aruba.it", 993, Security.TLS),
        ("imaps://Mail.Example.COM", "imap", "mail.example.com", 993, Security.TLS),
        ("starttls://smtp.example.com", "smtp", "smtp.example.com", 587, Security.STARTTLS),
        ("  imap.example.com:143 ", "imap", "imap.example.com", 143, None),
        ("[::1]:993", "imap", "::1", 993, None),
        ("posta.università.it:993", "imap", "posta.xn--universit-y1a.it", 993, None),
        ("smtp.example.com.:25", "smtp", "smtp.example.com", 25, None),
    ],
)
def test_server_text_is_understood(text, protocol, host, port, implied):
    parsed = parse_server(text, protocol)
    assert (parsed.host, parsed.port, parsed.implied_security) == (host, port, implied)


@pytest.mark.parametrize(
    ("text", "protocol", "message"),
    [
        ("imap.example.com", "imap", "Add the port"),
        ("", "imap", "host:port"),
        ("imap.example.com:99999", "imap", "between 1 and 65535"),
        ("imap.example.com:abc", "imap", "not a number"),
        ("imaps://imap.example.com", "smtp", "IMAP address, not SMTP"),
        ("http://imap.example.com:993", "imap", "Unknown prefix"),
        ("imap.example.com:993/path", "imap", "not host:port"),
        ("bad_host!:993", "imap", "not a valid host name"),
        ("fe80::1:993", "imap", "brackets"),
        ("user@imap.example.com:993", "imap", "not host:port"),
    ],
)
def test_unusable_server_text_is_refused_with_a_reason(text, protocol, message):
    with pytest.raises(ServerParseError, match=message):
        parse_server(text, protocol)


def test_tls_mode_that_does_not_match_a_well_known_port_is_pointed_out():
    assert "993 normally uses TLS" in port_mismatch("imap", 993, "starttls")
    assert port_mismatch("imap", 993, "tls") is None
    assert port_mismatch("smtp", 2525, "tls") is None
