"""Connection checks against real servers: Dovecot (IMAP, POP3) and aiosmtpd (SMTP).

Every failure class is produced by a server set up to fail that way.  A few
server behaviours Dovecot and aiosmtpd cannot be made to show (throttling
greetings, a server echoing the password, one that trickles bytes) come from
:class:`ScriptedServer`, a socket that plays a fixed script.

Run with ``-p tests.servers.fixtures`` until tests/conftest.py loads it.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable

import pytest

from connectors import plugins
from connectors.addresses import AddressPolicy
from connectors.check import CheckReport, check_incoming, check_outgoing
from connectors.errors import ErrorClass
from connectors.plugins import hookimpl
from connectors.settings import Credentials, Protocol, Security, ServerSettings
from tests.servers.dovecot import free_ports

LOCAL = AddressPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
TIMEOUT = 5.0
ALICE = Credentials("alice", "secret-alice-pw")
WRONG = Credentials("alice", "not-the-password-42")


def server(
    protocol: str, port: int, security: str, certs=None, host: str = "127.0.0.1", **kw
) -> ServerSettings:
    """Settings for a local test server: test CA trusted, 127.0.0.0/8 allowed by the guard."""
    kw.setdefault("timeout", TIMEOUT)
    kw.setdefault("address_policy", LOCAL)
    if certs is not None:
        kw.setdefault("ca_file", str(certs.ca_cert))
    return ServerSettings(
        protocol=Protocol(protocol), host=host, port=port, security=Security(security), **kw
    )


def failed(report: CheckReport, error_class: ErrorClass, step: str | None = None):
    assert not report.ok, report.as_dict()
    assert report.error is not None
    assert report.error.error_class is error_class, report.as_dict()
    if step is not None:
        assert report.error.step == step, report.as_dict()
        assert report.steps[-1].name == step and not report.steps[-1].ok
    json.dumps(report.as_dict())
    return report.error


def passed(report: CheckReport, steps: list[str]) -> dict:
    d = report.as_dict()
    assert report.ok and report.error is None, d
    assert [s["name"] for s in d["steps"]] == steps
    assert all(s["ok"] and s["duration_ms"] >= 0 for s in d["steps"])
    assert (
        d["steps"][0]["duration_ms"] > 0 and d["duration_ms"] >= sum(s["duration_ms"] for s in d["steps"]) - 1
    )
    assert d["error"] is None and d["capabilities"] and d["info"]["address"] == "127.0.0.1"
    return json.loads(json.dumps(d))


class ScriptedServer:
    """A loopback TCP server that answers each connection with ``script(conn)``."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self.script = script
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(10)
                self.script(conn)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def scripted():
    started = []

    def make(script):
        started.append(ScriptedServer(script))
        return started[-1]

    yield make
    for s in started:
        s.close()


def lines(conn: socket.socket):
    f = conn.makefile("rb")
    for line in f:
        yield line.decode().rstrip("\r\n")


# --- successful checks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("security", "port_name", "steps"),
    [
        ("none", "imap_port", ["connect", "capabilities", "login", "list"]),
        ("starttls", "imap_port", ["connect", "tls", "capabilities", "login", "list"]),
        ("tls", "imaps_port", ["connect", "tls", "capabilities", "login", "list"]),
    ],
)
def test_imap_check_succeeds(dovecot, certs, security, port_name, steps):
    report = check_incoming(server("imap", getattr(dovecot, port_name), security, certs), ALICE)
    d = passed(report, steps)
    assert "IMAP4REV1" in {c.upper() for c in d["capabilities"]}
    assert d["info"]["folders"] >= 5  # INBOX plus the special-use folders
    if security != "none":
        assert d["info"]["tls"].startswith("TLS") and d["info"]["certificate_verified"] is True


@pytest.mark.parametrize(("security", "port_name"), [("starttls", "pop3_port"), ("tls", "pop3s_port")])
def test_pop3_check_succeeds(clean_dovecot, certs, security, port_name):
    clean_dovecot.add_messages("alice", 3)
    report = check_incoming(server("pop3", getattr(clean_dovecot, port_name), security, certs), ALICE)
    d = passed(report, ["connect", "tls", "capabilities", "login", "stat"])
    assert d["info"]["messages"] == 3 and "USER" in d["capabilities"]


@pytest.mark.parametrize(
    ("security", "port_name", "steps"),
    [
        ("starttls", "starttls_port", ["connect", "ehlo", "tls", "login"]),
        ("tls", "smtps_port", ["connect", "tls", "ehlo", "login"]),
    ],
)
def test_smtp_check_succeeds_and_sends_nothing(clean_smtp_server, certs, security, port_name, steps):
    report = check_outgoing(server("smtp", getattr(clean_smtp_server, port_name), security, certs), ALICE)
    passed(report, steps)
    assert clean_smtp_server.messages == []


def test_smtp_check_without_auth_stops_after_tls(smtp_server, certs):
    report = check_outgoing(
        server("smtp", smtp_server.starttls_port, "starttls", certs), None, requires_auth=False
    )
    passed(report, ["connect", "ehlo", "tls"])


# --- credentials -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "port_name"), [("imap", "imaps_port"), ("pop3", "pop3s_port"), ("smtp", "smtps_port")]
)
def test_wrong_password_is_auth_and_never_shown(dovecot, smtp_server, certs, protocol, port_name):
    target = smtp_server if protocol == "smtp" else dovecot
    settings = server(protocol, getattr(target, port_name), "tls", certs)
    check = check_outgoing if protocol == "smtp" else check_incoming
    error = failed(check(settings, WRONG), ErrorClass.AUTH, "login")
    assert error.field == "password" and error.raw  # the server's own words are kept
    everything = json.dumps(error.as_dict()) + str(error) + error.raw
    for form in WRONG.secret_forms():
        assert form not in everything


# --- where the server is -----------------------------------------------------------------------


def test_closed_port_is_refused(certs):
    (port,) = free_ports(1)
    error = failed(check_incoming(server("imap", port, "tls", certs), ALICE), ErrorClass.REFUSED, "connect")
    assert error.field == "imap.port"


def test_unknown_host_is_dns():
    start = time.monotonic()
    settings = ServerSettings(Protocol.IMAP, "no-such-host.mailroom.invalid", 993, Security.TLS, timeout=3)
    error = failed(check_incoming(settings, ALICE), ErrorClass.DNS, "connect")
    assert time.monotonic() - start < 3 + 2
    assert error.field == "imap.host" and "no-such-host.mailroom.invalid" in error.message


def test_port_that_never_speaks_times_out_within_the_timeout():
    silent = socket.create_server(("127.0.0.1", 0), backlog=8)  # accepts TCP (kernel backlog), never speaks
    try:
        settings = server("imap", silent.getsockname()[1], "starttls", timeout=2.0)
        start = time.monotonic()
        error = failed(check_incoming(settings, ALICE), ErrorClass.TIMEOUT, "connect")
        elapsed = time.monotonic() - start
    finally:
        silent.close()
    assert elapsed < settings.timeout + 3, elapsed
    assert "greeting" in error.message


def test_a_trickling_server_is_stopped_by_the_check_budget(scripted):
    def trickle(conn):
        for ch in b"* OK [CAPABILITY IMAP4rev1] very slow greeting that never ends" * 100:
            conn.sendall(bytes([ch]))
            time.sleep(0.3)

    slow = scripted(trickle)
    start = time.monotonic()
    report = check_incoming(server("imap", slow.port, "none", timeout=1.0), ALICE, budget=2.0)
    elapsed = time.monotonic() - start
    error = failed(report, ErrorClass.TIMEOUT)
    assert elapsed < 2.0 + 2, elapsed
    assert "took longer than 2 s" in error.message


# --- TLS mode against the port -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "port_name"), [("imap", "imap_port"), ("pop3", "pop3_port"), ("smtp", "starttls_port")]
)
def test_tls_on_a_plain_port_is_tls_not_timeout(dovecot, smtp_server, certs, protocol, port_name):
    target = smtp_server if protocol == "smtp" else dovecot
    check = check_outgoing if protocol == "smtp" else check_incoming
    error = failed(
        check(server(protocol, getattr(target, port_name), "tls", certs), ALICE), ErrorClass.TLS, "tls"
    )
    assert "plain text" in error.message and error.field == f"{protocol}.security"
    assert "WRONG_VERSION_NUMBER" in error.raw


@pytest.mark.parametrize(
    ("protocol", "port_name", "security"),
    [
        ("imap", "imaps_port", "starttls"),
        ("imap", "imaps_port", "none"),
        ("pop3", "pop3s_port", "starttls"),
        ("smtp", "smtps_port", "starttls"),
        ("smtp", "smtps_port", "none"),
    ],
)
def test_plain_or_starttls_on_an_implicit_tls_port_is_tls_and_fast(
    dovecot, smtp_server, certs, protocol, port_name, security
):
    target = smtp_server if protocol == "smtp" else dovecot
    check = check_outgoing if protocol == "smtp" else check_incoming
    settings = server(protocol, getattr(target, port_name), security, certs, timeout=10)
    start = time.monotonic()
    error = failed(check(settings, ALICE), ErrorClass.TLS, "connect")
    assert time.monotonic() - start < 4, "recognised by the TLS probe, not by waiting for the timeout"
    assert "implicit TLS" in error.message and "choose TLS instead of" in error.message


# --- certificates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "words"),
    [("self_signed", "self-signed"), ("expired", "expired"), ("wrong_host", "hostname mismatch")],
)
def test_bad_certificates_are_named_separately(smtp_factory, certs, kind, words):
    smtp = smtp_factory(cert=getattr(certs, kind))
    error = failed(
        check_outgoing(server("smtp", smtp.smtps_port, "tls", certs), ALICE), ErrorClass.CERTIFICATE, "tls"
    )
    assert words in error.message, error.message
    assert error.message != "The server's certificate is not trusted."  # the variant, not just the class


def test_certificate_details_are_distinct(smtp_factory, certs):
    messages = set()
    for kind in ("self_signed", "expired", "wrong_host"):
        smtp = smtp_factory(cert=getattr(certs, kind))
        report = check_outgoing(server("smtp", smtp.starttls_port, "starttls", certs), ALICE)
        messages.add(failed(report, ErrorClass.CERTIFICATE, "tls").message)
    assert len(messages) == 3


def test_imap_self_signed_fails_verified_and_connects_unverified(dovecot_factory, certs):
    dc = dovecot_factory(cert=certs.self_signed)
    error = failed(
        check_incoming(server("imap", dc.imaps_port, "tls", certs), ALICE), ErrorClass.CERTIFICATE, "tls"
    )
    assert "self-signed" in error.message
    report = check_incoming(server("imap", dc.imaps_port, "tls", certs, verify_certificate=False), ALICE)
    d = passed(report, ["connect", "tls", "capabilities", "login", "list"])
    assert d["info"]["certificate_verified"] is False
    assert "NOT verified" in d["steps"][1]["detail"]


def test_untrusted_ca_without_ca_file(dovecot, certs):
    report = check_incoming(server("imap", dovecot.imaps_port, "tls"), ALICE)  # the test CA is not trusted
    assert "not trusted here" in failed(report, ErrorClass.CERTIFICATE, "tls").message


# --- what the server offers -------------------------------------------------------------------------


def test_starttls_missing_is_never_a_plaintext_fallback(dovecot_factory, smtp_server, certs):
    plain = dovecot_factory(ssl=False)
    for protocol, port in (("imap", plain.imap_port), ("pop3", plain.pop3_port)):
        report = check_incoming(server(protocol, port, "starttls", certs), ALICE)
        failed(report, ErrorClass.STARTTLS_MISSING, "tls")
        assert "login" not in [s.name for s in report.steps]
    report = check_outgoing(server("smtp", smtp_server.plain_port, "starttls", certs), ALICE)
    failed(report, ErrorClass.STARTTLS_MISSING, "tls")
    assert "login" not in [s.name for s in report.steps]


def test_logindisabled_and_missing_auth_are_auth_method(dovecot_factory, smtp_server, certs):
    strict = dovecot_factory(plaintext_auth=False)  # listens on 127.0.0.2 so that plain really is plain
    report = check_incoming(server("imap", strict.imap_port, "none", certs, host=strict.host), ALICE)
    assert "LOGINDISABLED" in failed(report, ErrorClass.AUTH_METHOD, "login").message
    report = check_incoming(server("pop3", strict.pop3_port, "none", certs, host=strict.host), ALICE)
    failed(report, ErrorClass.AUTH_METHOD, "login")
    # The same servers accept the login once the connection is protected.
    report = check_incoming(server("imap", strict.imap_port, "starttls", certs, host=strict.host), ALICE)
    assert report.ok and report.info["address"] == strict.host, report.as_dict()
    # aiosmtpd offers AUTH only after STARTTLS.
    report = check_outgoing(server("smtp", smtp_server.starttls_port, "none", certs), ALICE)
    assert "no SMTP AUTH" in failed(report, ErrorClass.AUTH_METHOD, "login").message


def test_wrong_protocol_on_the_port_is_protocol(dovecot, smtp_server, certs):
    report = check_incoming(server("imap", smtp_server.plain_port, "none", certs), ALICE)
    assert "does not speak IMAP" in failed(report, ErrorClass.PROTOCOL, "connect").message
    report = check_incoming(server("pop3", dovecot.imap_port, "none", certs), ALICE)
    assert "does not speak POP3" in failed(report, ErrorClass.PROTOCOL, "connect").message
    report = check_outgoing(server("smtp", dovecot.pop3_port, "none", certs), ALICE)
    assert "does not speak SMTP" in failed(report, ErrorClass.PROTOCOL, "connect").message


# --- throttling and echoes (scripted servers) -----------------------------------------------------


def test_throttling_answers_are_throttled(scripted):
    imap = scripted(lambda c: c.sendall(b"* BYE [UNAVAILABLE] Too many connections from your IP\r\n"))
    failed(check_incoming(server("imap", imap.port, "none"), ALICE), ErrorClass.THROTTLED, "connect")
    smtp = scripted(lambda c: c.sendall(b"421 4.7.0 Too many connections, try again later\r\n"))
    failed(check_outgoing(server("smtp", smtp.port, "none"), ALICE), ErrorClass.THROTTLED, "connect")

    def pop3(conn):
        conn.sendall(b"+OK ready\r\n")
        for line in lines(conn):
            if line == "CAPA":
                conn.sendall(b"+OK\r\nUSER\r\n.\r\n")
            elif line.startswith("USER"):
                conn.sendall(b"+OK\r\n")
            elif line.startswith("PASS"):
                conn.sendall(b"-ERR [IN-USE] Mailbox is locked by another session\r\n")
            else:
                conn.sendall(b"+OK\r\n")
                return

    pop = scripted(pop3)
    failed(check_incoming(server("pop3", pop.port, "none"), ALICE), ErrorClass.THROTTLED, "login")


def test_a_server_echoing_the_password_does_not_leak_it(scripted):
    def echo(conn):
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")
        for line in lines(conn):
            tag, _, rest = line.partition(" ")
            if rest.upper().startswith("LOGIN"):
                conn.sendall(f"{tag} NO [AUTHENTICATIONFAILED] rejected: {rest}\r\n".encode())
            elif rest.upper().startswith("CAPABILITY"):
                conn.sendall(f"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n".encode())
            else:
                conn.sendall(f"* BYE\r\n{tag} OK bye\r\n".encode())
                return

    srv = scripted(echo)
    error = failed(check_incoming(server("imap", srv.port, "none"), WRONG), ErrorClass.AUTH, "login")
    assert "rejected" in error.raw and "***" in error.raw
    assert WRONG.password not in error.raw + str(error) + json.dumps(error.as_dict())


# --- the address guard through a check ------------------------------------------------------------


def test_the_guard_applies_to_manual_servers_only(dovecot, certs):
    manual = server("imap", dovecot.imaps_port, "tls", certs, address_policy=AddressPolicy())
    error = failed(check_incoming(manual, ALICE), ErrorClass.FORBIDDEN_ADDRESS, "connect")
    assert "loopback" in error.message and error.field == "imap.host"
    admin = server("imap", dovecot.imaps_port, "tls", certs, address_policy=None)
    assert check_incoming(admin, ALICE).ok


# --- plugins ---------------------------------------------------------------------------------------


@pytest.fixture
def fresh_plugins():
    plugins.reset_plugin_manager()
    yield plugins.get_plugin_manager()
    plugins.reset_plugin_manager()


def test_provider_hints_are_added_to_the_error(fresh_plugins, dovecot, certs):
    class Hints:
        @hookimpl
        def mailroom_diagnosis_hints(self, error_class, protocol, service_key):
            return [f"corp hint for {error_class}/{protocol}/{service_key}"]

    fresh_plugins.register(Hints())
    report = check_incoming(server("imap", dovecot.imaps_port, "tls", certs), WRONG, service_key="corp")
    hints = failed(report, ErrorClass.AUTH).as_dict()["hints"]
    assert hints[0] == "corp hint for auth/imap/corp"
    assert hints[-1] == "Check the login and password."


def test_gmail_hint_for_a_gmail_host(fresh_plugins):
    from connectors.errors import MailError

    hints = plugins.diagnosis_hints(
        "auth", "imap", None, ServerSettings(Protocol.IMAP, "imap.gmail.com", 993)
    )
    assert any("app password" in h for h in hints)
    assert MailError(ErrorClass.AUTH, "imap").as_dict()["field"] == "password"


def test_a_plugin_can_replace_a_protocol_client(fresh_plugins):
    calls = []

    class FakeImap:  # the minimal contract: no steps, no abort
        def __init__(self, settings, credentials, transcript=None):
            calls.append(("init", settings.host, credentials.username))

        def connect(self):
            calls.append("connect")

        def login(self):
            calls.append("login")

        def list_folders(self):
            calls.append("list")
            return []

        def close(self):
            calls.append("close")

    class Replacement:
        @hookimpl
        def mailroom_protocol_clients(self):
            return {"imap": FakeImap}

    fresh_plugins.register(Replacement())
    report = check_incoming(ServerSettings(Protocol.IMAP, "imap.example.com", 993), ALICE)
    assert report.ok and calls == [("init", "imap.example.com", "alice"), "connect", "login", "list", "close"]
    assert [s.name for s in report.steps] == ["connect", "login", "list"]


def test_check_rejects_the_wrong_protocol():
    with pytest.raises(ValueError):
        check_incoming(ServerSettings(Protocol.SMTP, "smtp.example.com", 465), ALICE)
    with pytest.raises(ValueError):
        check_outgoing(ServerSettings(Protocol.IMAP, "imap.example.com", 993), ALICE)


def test_starttls_offered_but_refused_is_tls(scripted):
    def imap(conn):
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n")
        for line in lines(conn):
            tag, _, rest = line.partition(" ")
            if rest.upper() == "CAPABILITY":
                conn.sendall(f"* CAPABILITY IMAP4rev1 STARTTLS\r\n{tag} OK done\r\n".encode())
            elif rest.upper() == "STARTTLS":
                conn.sendall(f"{tag} NO TLS is broken here\r\n".encode())
            else:
                conn.sendall(f"{tag} OK\r\n".encode())

    def smtp(conn):
        conn.sendall(b"220 mx ESMTP\r\n")
        for line in lines(conn):
            if line.upper().startswith("EHLO"):
                conn.sendall(b"250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n")
            elif line.upper() == "STARTTLS":
                conn.sendall(b"454 4.7.0 TLS not available due to local problem\r\n")
            else:
                conn.sendall(b"221 bye\r\n")
                return

    for check, protocol, script in ((check_incoming, "imap", imap), (check_outgoing, "smtp", smtp)):
        srv = scripted(script)
        error = failed(check(server(protocol, srv.port, "starttls"), ALICE), ErrorClass.TLS, "tls")
        assert error.message == "The server refused the STARTTLS command.", error.as_dict()
        assert "TLS" in error.raw
