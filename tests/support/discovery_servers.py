"""Local servers for the discovery tests: DNS over UDP, HTTPS, and tiny IMAP/SMTP greeters.

Everything listens on 127.0.0.1 on a free port and answers from plain dicts
the test fills in, so discovery runs end to end without any outside network.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"


# --- certificates ----------------------------------------------------------------------


@dataclass(frozen=True)
class TestPKI:
    ca_file: Path
    cert: Path
    key: Path

    @property
    def pair(self) -> tuple[Path, Path]:
        return (self.cert, self.key)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(dirpath: Path, names: list[str]) -> TestPKI:
    """A CA and one server certificate (EC P-256) for all ``names`` (DNS names, or IP addresses)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Mailroom discovery test CA"))
        .issuer_name(_name("Mailroom discovery test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    dirpath.mkdir(parents=True, exist_ok=True)
    pki = TestPKI(dirpath / "ca.crt", dirpath / "server.crt", dirpath / "server.key")
    pki.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    pki.key.chmod(0o600)
    return pki


# --- DNS -------------------------------------------------------------------------------


class DNSServer:
    """A UDP DNS server answering from ``records``: ``{name: {rdtype: [rdata text, ...]}}``.

    Names are written without the final dot.  A name that is not in
    ``records`` gets NXDOMAIN; a known name without the asked type an empty
    NOERROR answer.  Queries whose type is in ``silent_types`` (or all, with
    ``silent=True``) are never answered, like a DNS server behind a firewall.
    Every question is logged in ``queries`` as ``(name, rdtype)``.
    """

    def __init__(self) -> None:
        self.records: dict[str, dict[str, list[str]]] = {}
        self.silent = False
        self.silent_types: set[str] = set()
        self.queries: list[tuple[str, str]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((HOST, 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)

    def start(self) -> DNSServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

    def reset(self) -> None:
        self.records = {}
        self.silent = False
        self.silent_types = set()
        self.queries = []

    def resolver(self) -> dns.resolver.Resolver:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [HOST]
        resolver.port = self.port
        return resolver

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                reply = self._answer(wire)
            except Exception:  # a malformed query: no answer, like a real server might
                continue
            if reply is not None:
                self._sock.sendto(reply, peer)

    def _answer(self, wire: bytes) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        if self.silent or rdtype in self.silent_types:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        entry = self.records.get(name)
        if entry is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif entry.get(rdtype):
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", rdtype, *entry[rdtype]))
        return response.to_wire()


# --- HTTPS -----------------------------------------------------------------------------


@dataclass
class Route:
    """What the HTTPS server answers for one ``(host, path?query)``."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_length: bool = True


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _TLSHTTPServer

    def setup(self) -> None:
        self.request.settimeout(5)
        self.request.do_handshake()
        super().setup()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        owner = self.server.owner
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        owner.requests.append((host, self.path))
        route = owner.routes.get((host, self.path)) or owner.routes.get((host, self.path.split("?", 1)[0]))
        if route is None:
            route = Route(b"not found", status=404)
        if route.delay:
            time.sleep(route.delay)
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        if route.content_length:
            self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        try:
            self.wfile.write(route.body)
        except OSError:
            pass

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _TLSHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: HTTPSServer

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = self.socket.accept()
        # The handshake happens in the handler thread, so a slow client blocks nobody.
        return self.owner.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that give up (timeouts, refused certificates) are part of the tests


class HTTPSServer:
    """An HTTPS server on 127.0.0.1 answering ``routes[(host, path)]`` by the Host header."""

    def __init__(self, cert: tuple[Path, Path]) -> None:
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(str(cert[0]), str(cert[1]))
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[tuple[str, str]] = []
        self._server = _TLSHTTPServer((HOST, 0), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-https", daemon=True)

    def start(self) -> HTTPSServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        self.routes = {}
        self.requests = []


def settle_discovery(timeout: float = 60) -> None:
    """Wait for the discovery threads that earlier tests left running (call it before a reset).

    The runner does not wait for a source's lower-ranked fetches once a higher-ranked one has
    answered; on a loaded machine such a fetch may reach the servers only after the next test
    reset them, and be counted as that test's request (seen at load 20: the redirect test's
    well-known fetch in the untrusted-certificate test's ``requests``).  Their deadlines end them.
    """
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name.startswith("mailroom-discovery"):  # connectors.discovery's thread names
            thread.join(max(deadline - time.monotonic(), 0))


# --- tiny mail servers -----------------------------------------------------------------


class Greeter:
    """A line server speaking just enough IMAP or SMTP to be probed, without STARTTLS."""

    IMAP_GREETING = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] plain-only test server ready\r\n"
    SMTP_GREETING = b"220 plain-only.test ESMTP\r\n"

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.connections = 0
        self._sock = socket.socket()
        self._sock.bind((HOST, 0))
        self._sock.listen(8)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"test-{protocol}", daemon=True)

    def start(self) -> Greeter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        with conn, conn.makefile("rb") as lines:
            try:
                conn.sendall(self.IMAP_GREETING if self.protocol == "imap" else self.SMTP_GREETING)
                for raw in lines:
                    line = raw.decode("ascii", "replace").strip()
                    if self.protocol == "imap":
                        tag, _, command = line.partition(" ")
                        if command.upper() == "CAPABILITY":
                            conn.sendall(
                                b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + f"{tag} OK done\r\n".encode()
                            )
                        elif command.upper() == "LOGOUT":
                            conn.sendall(b"* BYE\r\n" + f"{tag} OK bye\r\n".encode())
                            return
                        else:
                            conn.sendall(f"{tag} BAD not here\r\n".encode())
                    else:
                        verb = line.split(" ", 1)[0].upper()
                        if verb == "EHLO":
                            conn.sendall(b"250-plain-only.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
                        elif verb == "QUIT":
                            conn.sendall(b"221 bye\r\n")
                            return
                        else:
                            conn.sendall(b"502 not implemented\r\n")
            except OSError:
                return


# --- pytest fixtures (loaded by tests/conftest.py as a plugin) ------------------------------

#: The names the test PKI's server certificate is valid for.
PKI_NAMES = ["example.test", "*.example.test", "probe.test", "*.probe.test", "srv.test", "*.srv.test"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA and a server certificate for the discovery domains."""
    return make_pki(tmp_path_factory.mktemp("discovery-pki"), PKI_NAMES)


@pytest.fixture(scope="module")
def dns_server():
    server = DNSServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def https_server(pki):
    server = HTTPSServer(pki.pair).start()
    yield server
    server.stop()
