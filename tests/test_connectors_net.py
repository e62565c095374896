"""The address guard and name resolution: manual servers are not a way into the internal network."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time

import pytest

from connectors import net
from connectors.addresses import AddressPolicy, internal_reason
from connectors.errors import ErrorClass, MailError
from connectors.imap import ImapClient
from connectors.settings import Credentials, Protocol, Security, ServerSettings

ALICE = Credentials("alice", "secret-alice-pw")
PUBLIC = "93.184.216.34"
NO_EXCEPTIONS = AddressPolicy()


def settings(
    host: str, port: int = 993, policy: AddressPolicy | None = NO_EXCEPTIONS, **kw
) -> ServerSettings:
    """IMAP settings for a manually entered server (guarded, no exceptions) unless ``policy`` says otherwise."""
    kw.setdefault("timeout", 2.0)
    return ServerSettings(Protocol.IMAP, host, port, Security.NONE, address_policy=policy, **kw)


@pytest.fixture
def listener():
    """A loopback socket that accepts TCP and never speaks; ``accepted()`` tells whether anyone came."""
    sockets = []

    def make(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(8)
        s.setblocking(False)
        sockets.append(s)
        return s

    yield make
    for s in sockets:
        s.close()


def accepted(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


# --- what counts as internal --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "private"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback (IPv4 127.0.0.1 inside IPv6)"),
        ("::ffff:10.1.2.3", "private (IPv4 10.1.2.3 inside IPv6)"),
        ("2002:7f00:1::1", "loopback (IPv4 127.0.0.1 inside IPv6)"),  # 6to4
        ("64:ff9b::a00:1", "private (IPv4 10.0.0.1 inside IPv6)"),  # NAT64
    ],
)
def test_internal_addresses_are_recognised(address, reason):
    assert internal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address):
    assert internal_reason(ipaddress.ip_address(address)) is None
    assert AddressPolicy().refusal("mail.example.com", ipaddress.ip_address(address)) is None


def test_policy_exceptions():
    ip = ipaddress.ip_address
    policy = AddressPolicy(
        allowed_networks=("10.1.0.0/16",), allowed_hosts=("Mail.Corp.example", ".intra.example")
    )
    assert policy.refusal("x.example", ip("10.1.2.3")) is None
    assert policy.refusal("x.example", ip("::ffff:10.1.2.3")) is None  # the mapped form of an allowed address
    assert policy.refusal("x.example", ip("10.2.0.1")) == "private"
    assert policy.refusal("mail.corp.example.", ip("10.9.9.9")) is None
    assert policy.refusal("imap.intra.example", ip("192.168.0.1")) is None
    assert policy.refusal("intra.example.evil.com", ip("192.168.0.1")) == "private"
    assert AddressPolicy(allow_private=True).refusal("x", ip("127.0.0.1")) is None
    assert policy.as_dict() == {
        "allow_private": False,
        "allowed_networks": ["10.1.0.0/16"],
        "allowed_hosts": ["mail.corp.example", ".intra.example"],
    }


# --- the guard at connection time -----------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.1", "::1", "::ffff:127.0.0.1", "localhost"])
def test_internal_hosts_are_refused_without_allowance(host):
    start = time.monotonic()
    with pytest.raises(MailError) as info:
        ImapClient(settings(host), ALICE).connect()
    assert info.value.error_class is ErrorClass.FORBIDDEN_ADDRESS
    assert info.value.field == "imap.host" and "manually entered servers" in info.value.message
    assert time.monotonic() - start < 1  # refused before any connection attempt


def test_allowed_network_lets_the_test_servers_through(listener):
    srv = listener()
    sock = net.open_connection(
        settings("127.0.0.1", srv.getsockname()[1], AddressPolicy(allowed_networks=("127.0.0.0/8",)))
    )
    try:
        assert sock.getpeername()[0] == "127.0.0.1" and sock.gettimeout() == 2.0
    finally:
        sock.close()


def _fake_resolver(monkeypatch, answers: list[list[str]]):
    """getaddrinfo answering ``answers[0]`` the first time, ``answers[1]`` after (a rebinding name)."""
    calls = []

    def getaddrinfo(host, port, *args, **kw):
        calls.append(host)
        ips = answers[min(len(calls) - 1, len(answers) - 1)]
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in ips
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


def test_a_name_that_changes_its_answer_cannot_reach_the_unchecked_address(monkeypatch, listener):
    internal = listener("127.0.0.1")
    port = internal.getsockname()[1]
    calls = _fake_resolver(monkeypatch, [[PUBLIC], ["127.0.0.1"]])
    attempts = []
    real_connect = socket.socket.connect

    def connect(sock, address):
        attempts.append(address[0])
        if address[0] == PUBLIC:  # no outside network in tests: behave like a closed port there
            raise ConnectionRefusedError(111, "Connection refused")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    with pytest.raises(MailError) as info:
        ImapClient(settings("rebind.example.com", port), ALICE).connect()
    assert info.value.error_class is ErrorClass.REFUSED
    assert PUBLIC in info.value.raw
    assert attempts == [PUBLIC]  # the checked address, and only that one
    assert calls == ["rebind.example.com"]  # resolved once: nothing re-resolves the name
    assert not accepted(internal)


def test_the_connection_goes_to_the_checked_address(monkeypatch, listener):
    allowed, forbidden = listener("127.0.0.2"), listener("127.0.0.1")
    port = allowed.getsockname()[1]
    forbidden_same_port = listener("127.0.0.1", port)
    _fake_resolver(monkeypatch, [["127.0.0.2"], ["127.0.0.1"]])
    policy = AddressPolicy(allowed_networks=("127.0.0.2/32",))
    sock = net.open_connection(settings("rebind.example.com", port, policy))
    sock.close()
    time.sleep(0.05)
    assert accepted(allowed)
    assert not accepted(forbidden_same_port) and not accepted(forbidden)


def test_every_address_of_a_name_is_checked(monkeypatch):
    _fake_resolver(monkeypatch, [[PUBLIC, "127.0.0.1"]])
    with pytest.raises(MailError) as info:
        net.open_connection(settings("mixed.example.com"))
    assert info.value.error_class is ErrorClass.FORBIDDEN_ADDRESS
    assert "mixed.example.com resolves to 127.0.0.1, a loopback address" in info.value.message


def test_admin_servers_are_not_guarded(listener):
    srv = listener()
    net.open_connection(settings("127.0.0.1", srv.getsockname()[1], policy=None)).close()


# --- DNS ---------------------------------------------------------------------------------------------


def test_a_slow_resolver_is_bounded(monkeypatch):
    def slow(*args, **kw):
        time.sleep(5)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure")

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    start = time.monotonic()
    with pytest.raises(MailError) as info:
        net.open_connection(settings("slow.example.com", timeout=0.5))
    assert time.monotonic() - start < 1.5
    assert info.value.error_class is ErrorClass.DNS and "did not answer" in info.value.message


def test_unknown_name_is_dns():
    with pytest.raises(MailError) as info:
        net.open_connection(settings("nothing-here.invalid", policy=None))
    assert info.value.error_class is ErrorClass.DNS and info.value.step == "connect"


@pytest.mark.parametrize(
    ("failure", "error_class"),
    [
        (OSError(101, "Network is unreachable"), ErrorClass.UNREACHABLE),
        (OSError(113, "No route to host"), ErrorClass.UNREACHABLE),
        (TimeoutError("timed out"), ErrorClass.TIMEOUT),
        (ConnectionRefusedError(111, "Connection refused"), ErrorClass.REFUSED),
    ],
)
def test_connection_failures_are_classified(monkeypatch, failure, error_class):
    _fake_resolver(monkeypatch, [[PUBLIC]])

    def connect(sock, address):
        raise failure

    monkeypatch.setattr(socket.socket, "connect", connect)
    with pytest.raises(MailError) as info:
        net.open_connection(settings("mail.example.com"))
    assert info.value.error_class is error_class and PUBLIC in info.value.raw


# --- TLS contexts: one per trust setting, none for plain ------------------------------------


def _tls(dovecot, certs, **kw) -> ServerSettings:
    return ServerSettings(
        Protocol.IMAP, "localhost", dovecot.imaps_port, Security.TLS, timeout=5.0, ca_file=str(certs.ca_cert), **kw
    )


def test_tls_contexts_are_built_once_per_trust_setting_and_reused(dovecot, certs):
    net._context.cache_clear()
    first = net.tls_context(_tls(dovecot, certs))
    for _ in range(3):  # a real handshake each time, with the one shared context
        client = ImapClient(_tls(dovecot, certs), ALICE)
        client.connect()
        client.login()
        assert client.info["certificate_verified"] is True
        client.close()
    assert net.tls_context(_tls(dovecot, certs)) is first
    assert net._context.cache_info().misses == 1
    # Another trust setting is another context: CA text, and verification off.
    pem = certs.ca_cert.read_text()
    with_data = net.tls_context(_tls(dovecot, certs, ca_data=pem))
    assert with_data is not first and net.tls_context(_tls(dovecot, certs, ca_data=pem)) is with_data
    unverified = net.tls_context(_tls(dovecot, certs, verify_certificate=False))
    assert unverified is not first and unverified.verify_mode == ssl.CERT_NONE
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname


def test_a_plain_connection_builds_no_tls_context(dovecot):
    net._context.cache_clear()
    plain = ServerSettings(Protocol.IMAP, "127.0.0.1", dovecot.imap_port, Security.NONE, timeout=5.0)
    client = ImapClient(plain, ALICE)
    client.connect()
    client.login()
    client.close()
    assert net._context.cache_info().currsize == 0
