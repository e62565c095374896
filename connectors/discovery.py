"""Server-settings discovery: from an email address to suggested IMAP/POP3/SMTP servers.

Discovery is an ordered search over the ``mailroom_discover_settings`` plugins
(see ``docs/discovery.md``): the presets by domain, the presets by MX host, the
domain's autoconfig XML, its RFC 6186/8314 SRV records and, last, probing
common host names and ports.  The first source that answers wins.

This module holds what the sources share:

* :class:`DiscoveryContext`: the resolver, HTTPS settings, address policy and
  per-source timeouts, so tests (and closed networks) can point DNS and HTTPS
  at their own servers;
* guarded networking: every HTTP fetch and every probe connection resolves the
  name with the context's resolver, checks *every* address with the
  :class:`connectors.addresses.AddressPolicy` and connects to the checked address
  itself (TLS still uses the name for SNI and the certificate).  A typed
  address must not become a way into the internal network;
* the autoconfig XML parser (:func:`parse_autoconfig`);
* the runner (:func:`run_discovery`, :func:`discover`): calls the plugins one
  at a time in hook order, each in a worker thread bounded by its own timeout,
  so a stuck or broken plugin costs its timeout and never the whole search.

Nothing here imports Flask; discovery runs in an RQ worker.
"""

from __future__ import annotations

import dataclasses
import http.client
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from connectors.discovery_context import (
    BUILTIN_SOURCES,
    MAX_RESPONSE_BYTES,
    DiscoveryContext,
    DiscoveryError,
    system_resolver,
)
from connectors.discovery_context import (
    DEFAULT_TIMEOUTS as DEFAULT_TIMEOUTS,  # re-exported: part of the runner's public names
)
from connectors.i18n import N_
from connectors.plugins import get_plugin_manager, service_preset
from connectors.presets import DiscoveredSettings, Endpoint
from connectors.settings import Security, ServerParseError, normalize_host

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The runner waits this much longer than a plugin's timeout before giving up on it.
GRACE = 1.0

_LOCAL_PART_BAD = re.compile(r"[\s\x00-\x1f\x7f<>()\[\]\\,;:\"]")

#: Why a source found nothing (its notes, shown on the connect form after "Find settings"): the
#: job stores the English, the web translates it for its reader (``webapp.i18n.translate_stored``).
WHY = {
    "no_time": N_("no time left to look up {rdtype} {name}"),
    "dns_timeout": N_("the DNS lookup of {rdtype} {name} timed out"),
    "dns_failed": N_("the DNS lookup of {rdtype} {name} failed: {error}"),
    "no_address": N_("{host} has no address in DNS"),
    "refused": N_(
        "{host} resolves to {ip}, a {reason} address, which discovery may not reach "
        "(an administrator can allow it in the settings)"
    ),
    "connect_failed": N_("could not connect to {host}: {failures}"),
    "connect_one": N_("{ip} port {port}: {error}"),
    "no_time_left": N_("no time left"),
    "bad_certificate": N_("the certificate of {host} is not valid: {reason}"),
    "no_tls": N_("no TLS handshake with {host}: {error}"),
    "not_https": N_("refused to fetch {url}: only https:// URLs are fetched"),
    "bad_url": N_("refused to fetch {url}: not a valid host or port"),
    "url_timed_out": N_("{url}: timed out"),
    "no_location": N_("{url}: redirect without a Location"),
    "redirect_refused": N_("{url}: refused the redirect to {target} (not https://)"),
    "redirects": N_("{url}: more than {count} redirects"),
    "too_long": N_("{url}: the response is {size} bytes, more than the {limit} allowed"),
    "too_large": N_("{url}: the response is larger than the {limit} bytes allowed"),
    "read_timeout": N_("{url}: timed out while reading the response"),
    "doc_too_large": N_("the document is larger than the {limit} bytes allowed"),
    "doctype": N_("the document declares a DOCTYPE or entities, which autoconfig never needs"),
    "not_xml": N_("not well-formed XML: {error}"),
    "root": N_("the root element is <{tag}>, not <clientConfig>"),
    "no_provider": N_("no <emailProvider> in the document"),
    "no_server": N_("the document has no usable IMAP or POP3 server"),
    "no_answer": N_("no answer within {seconds} s"),
    "no_answer_notes": N_("no answer within {seconds} s ({notes})"),
    "wrong_type": N_("returned {type}, not DiscoveredSettings"),
    "empty_answer": N_("an answer without any server"),
}

#: Where a suggestion came from, one sentence for the form (:func:`describe`).
SOURCE_WORDS = {
    "preset": N_("Known provider: {name}."),
    "mx": N_("The domain's mail is handled by {mx} ({name})."),
    "autoconfig": N_("From the domain's autoconfig file at {url}."),
    "srv": N_("From the domain's DNS SRV records ({names})."),
    "srv_bare": N_("From the domain's DNS SRV records."),
    "probe": N_("Guessed by connecting to {where}; check the suggestion before saving."),
    "plugin": N_("Suggested by the discovery plugin {source!r}."),
    "known_provider": N_("a known provider"),
    "autoconfig_url": N_("its autoconfig URL"),
}


class AddressRefused(DiscoveryError):
    """A name resolved to an internal address that the address policy does not allow."""


class AutoconfigError(DiscoveryError):
    """An autoconfig document that is not well-formed, too large or has no usable server."""


# --- the address -----------------------------------------------------------------------


def validate_email(email: str) -> tuple[str, str, str]:
    """``(email, local part, domain)`` with the domain lower-case and IDNA-encoded.

    Raises ``ValueError`` with a sentence a person can act on.
    """
    text = (email or "").strip()
    if not text:
        raise ValueError(N_("Enter an email address, e.g. someone@example.com."))
    if "@" not in text:
        raise ValueError(N_("{text!r} is not an email address: it has no @.").format(text=text))
    local, _, domain = text.rpartition("@")
    if not local:
        raise ValueError(N_("{text!r} is not an email address: nothing comes before the @.").format(text=text))
    if not domain:
        raise ValueError(N_("{text!r} is not an email address: the domain after the @ is missing.").format(text=text))
    if len(local) > 64:
        raise ValueError(N_("The part before the @ is longer than 64 characters."))
    if _LOCAL_PART_BAD.search(local) or "@" in local:
        raise ValueError(
            N_("{text!r} is not an email address: the part before the @ has characters not allowed there.").format(text=text)
        )
    if domain.startswith("["):
        raise ValueError(
            N_("Settings can only be discovered for a domain name, not for an address like [192.0.2.1].")
        )
    try:
        ascii_domain = normalize_host(domain)
    except ServerParseError:
        raise ValueError(N_("{domain!r} is not a valid domain name.").format(domain=domain)) from None
    if ":" in ascii_domain or _is_ip(ascii_domain):
        raise ValueError(N_("Settings can only be discovered for a domain name, not for an IP address."))
    if "." not in ascii_domain:
        raise ValueError(N_("{domain!r} is not a full domain name (like example.com).").format(domain=domain))
    if len(local) + 1 + len(ascii_domain) > 254:
        raise ValueError(N_("The email address is longer than 254 characters."))
    return f"{local}@{domain.strip().rstrip('.').lower()}", local, ascii_domain


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# --- DNS -------------------------------------------------------------------------------


def remaining(deadline: float) -> float:
    return deadline - time.monotonic()


def dns_query(context: DiscoveryContext, name: str, rdtype: str, deadline: float) -> list:
    """The records of ``rdtype`` at ``name``; ``[]`` when the name or the type does not exist.

    Timeouts and server failures raise :class:`DiscoveryError`.
    """
    left = remaining(deadline)
    if left <= 0:
        raise DiscoveryError(WHY["no_time"].format(rdtype=rdtype, name=name))
    try:
        answer = context.get_resolver().resolve(
            dns.name.from_text(name), rdtype, lifetime=left, raise_on_no_answer=False, search=False
        )
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.resolver.LifetimeTimeout:
        raise DiscoveryError(WHY["dns_timeout"].format(rdtype=rdtype, name=name)) from None
    except dns.resolver.NoNameservers as exc:
        raise DiscoveryError(WHY["dns_failed"].format(rdtype=rdtype, name=name, error=exc)) from None
    except dns.exception.DNSException as exc:
        raise DiscoveryError(WHY["dns_failed"].format(rdtype=rdtype, name=name, error=exc)) from None
    return list(answer.rrset) if answer.rrset is not None else []


def resolve_addresses(context: DiscoveryContext, host: str, deadline: float) -> list[IPAddress]:
    """The IPv4 then IPv6 addresses of ``host`` (an IP literal stands for itself)."""
    host = host.strip("[]")
    if _is_ip(host):
        return [ipaddress.ip_address(host)]
    found: list[IPAddress] = []
    errors: list[str] = []
    for rdtype in ("A", "AAAA"):
        try:
            found += [ipaddress.ip_address(r.address) for r in dns_query(context, host, rdtype, deadline)]
        except DiscoveryError as exc:
            errors.append(str(exc))
            if found:  # an AAAA timeout after a good A answer: use what we have
                break
    if not found:
        raise DiscoveryError(errors[0] if errors else WHY["no_address"].format(host=host))
    return list(dict.fromkeys(found))


def check_addresses(context: DiscoveryContext, host: str, addresses: Sequence[IPAddress]) -> None:
    """Refuse ``host`` as a whole when any of its addresses is internal and not allowed."""
    for ip in addresses:
        reason = context.address_policy.refusal(host, ip)
        if reason:
            raise AddressRefused(WHY["refused"].format(host=host, ip=ip, reason=reason))


def connect_checked(context: DiscoveryContext, host: str, port: int, deadline: float) -> socket.socket:
    """A TCP connection to a checked address of ``host``, with the remaining time as its timeout."""
    addresses = resolve_addresses(context, host, deadline)
    check_addresses(context, host, addresses)
    failures = []
    for i, ip in enumerate(addresses):
        left = remaining(deadline)
        if left <= 0:
            break
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        sock = None
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(left / (len(addresses) - i))
            sock.connect((str(ip), port))  # the checked address, never the name
        except OSError as exc:
            if sock is not None:
                sock.close()
            failures.append(WHY["connect_one"].format(ip=ip, port=port, error=exc or type(exc).__name__))
            continue
        sock.settimeout(max(remaining(deadline), 0.01))
        return sock
    raise DiscoveryError(
        WHY["connect_failed"].format(host=host, failures="; ".join(failures) or WHY["no_time_left"])
    )


def wrap_tls(context: DiscoveryContext, sock: socket.socket, host: str, deadline: float) -> ssl.SSLSocket:
    """TLS on ``sock`` for ``host`` with a verified certificate, or :class:`DiscoveryError`."""
    sock.settimeout(max(remaining(deadline), 0.01))
    try:
        return context.ssl_context().wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        raise DiscoveryError(WHY["bad_certificate"].format(host=host, reason=exc.verify_message)) from None
    except (OSError, ssl.SSLError) as exc:
        sock.close()
        raise DiscoveryError(WHY["no_tls"].format(host=host, error=exc or type(exc).__name__)) from None


# --- HTTPS -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    url: str
    body: bytes


class _CheckedHTTPSConnection(http.client.HTTPConnection):
    """HTTPS with ``http.client`` over a socket from :func:`connect_checked` (the address guard)."""

    default_port = 443  # so that the Host header carries no port for https://host/

    def __init__(self, context: DiscoveryContext, host: str, url_port: int | None, deadline: float) -> None:
        # The port given to http.client only shapes the Host header.
        super().__init__(host, url_port or 443, timeout=max(remaining(deadline), 0.01))
        self._discovery = context
        self._connect_port = url_port or context.https_port
        self._deadline = deadline

    def connect(self) -> None:
        sock = connect_checked(self._discovery, self.host, self._connect_port, self._deadline)
        self.sock = wrap_tls(self._discovery, sock, self.host, self._deadline)


def fetch_https(context: DiscoveryContext, url: str, deadline: float) -> Fetched:
    """GET ``url`` (HTTPS only) and return its body, within ``deadline`` and the size limit.

    Redirects are followed up to ``context.max_redirects`` times, only to
    other ``https://`` URLs, each through the address guard again.
    """
    for _hop in range(context.max_redirects + 1):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise DiscoveryError(WHY["not_https"].format(url=url))
        try:
            host = normalize_host(parts.hostname)
            url_port = parts.port
        except (ServerParseError, ValueError):
            raise DiscoveryError(WHY["bad_url"].format(url=url)) from None
        path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        conn = _CheckedHTTPSConnection(context, host, url_port, deadline)
        try:
            try:
                conn.request(
                    "GET",
                    path,
                    headers={
                        "User-Agent": context.user_agent,
                        "Accept": "application/xml, text/xml;q=0.9, */*;q=0.1",
                        "Connection": "close",
                    },
                )
                if conn.sock is not None:
                    conn.sock.settimeout(max(remaining(deadline), 0.01))
                response = conn.getresponse()
            except DiscoveryError:
                raise
            except (OSError, http.client.HTTPException) as exc:
                raise DiscoveryError(_describe_io_error(url, exc)) from None
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise DiscoveryError(WHY["no_location"].format(url=url))
                target = urllib.parse.urljoin(url, location)
                if urllib.parse.urlsplit(target).scheme != "https":
                    raise DiscoveryError(WHY["redirect_refused"].format(url=url, target=target))
                url = target
                continue
            if response.status != 200:
                raise DiscoveryError(f"{url}: HTTP {response.status} {response.reason}".rstrip())
            body = _read_capped(conn, response, context.max_response_bytes, deadline, url)
            return Fetched(url=url, body=body)
        finally:
            conn.close()
    raise DiscoveryError(WHY["redirects"].format(url=url, count=context.max_redirects))


def _describe_io_error(url: str, exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return WHY["url_timed_out"].format(url=url)
    return f"{url}: {exc or type(exc).__name__}"  # the system's own words (not translated)


def _read_capped(
    conn: http.client.HTTPConnection,
    response: http.client.HTTPResponse,
    limit: int,
    deadline: float,
    url: str,
) -> bytes:
    length = response.getheader("Content-Length")
    if length and length.strip().isdigit() and int(length) > limit:
        raise AutoconfigError(WHY["too_long"].format(url=url, size=int(length), limit=limit))
    chunks: list[bytes] = []
    total = 0
    while True:
        left = remaining(deadline)
        if left <= 0:
            raise DiscoveryError(WHY["read_timeout"].format(url=url))
        if conn.sock is not None:
            conn.sock.settimeout(left)
        try:
            chunk = response.read1(65536)
        except (OSError, http.client.HTTPException) as exc:
            raise DiscoveryError(_describe_io_error(url, exc)) from None
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise AutoconfigError(WHY["too_large"].format(url=url, limit=limit))
        chunks.append(chunk)


# --- the autoconfig XML ----------------------------------------------------------------

#: Thunderbird's socketType values and what Mailroom calls them.
SOCKET_TYPES: Mapping[str, Security] = {
    "ssl": Security.TLS,
    "starttls": Security.STARTTLS,
    "plain": Security.NONE,
}


@dataclass(frozen=True)
class AutoconfigServer:
    """One ``incomingServer``/``outgoingServer`` entry of an autoconfig document."""

    protocol: str  # imap, pop3, smtp
    endpoint: Endpoint
    username: str | None
    authentication: tuple[str, ...]


@dataclass(frozen=True)
class AutoconfigDocument:
    """The usable servers of a ``clientConfig`` document, best first per protocol."""

    servers: Mapping[str, tuple[AutoconfigServer, ...]]
    display_name: str | None = None

    def best(self, protocol: str) -> AutoconfigServer | None:
        entries = self.servers.get(protocol) or ()
        return entries[0] if entries else None

    def to_settings(self, *, source: str = "autoconfig", extra: Mapping | None = None) -> DiscoveredSettings:
        imap, pop3, smtp = self.best("imap"), self.best("pop3"), self.best("smtp")
        incoming = imap or pop3
        username = incoming.username if incoming else None
        if username is None and smtp is not None:
            username = smtp.username
        info: dict[str, Any] = dict(extra or {})
        if self.display_name:
            info["display_name"] = self.display_name
        info["authentication"] = {s.protocol: list(s.authentication) for s in (imap, pop3, smtp) if s}
        return DiscoveredSettings(
            imap=imap.endpoint if imap else None,
            smtp=smtp.endpoint if smtp else None,
            pop3=pop3.endpoint if pop3 else None,
            source=source,
            username_hint=username,
            extra=info,
        )


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child_text(element: ET.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return None


def _substitute(template: str, email: str) -> str:
    local, _, domain = email.rpartition("@")
    return (
        template.replace("%EMAILADDRESS%", email)
        .replace("%EMAILLOCALPART%", local)
        .replace("%EMAILDOMAIN%", domain)
    )


def parse_autoconfig(data: bytes, email: str, *, limit: int = MAX_RESPONSE_BYTES) -> AutoconfigDocument:
    """Parse a Thunderbird ``config-v1.1.xml`` document for ``email``.

    Keeps ``incomingServer`` entries of type imap/pop3 and ``outgoingServer``
    entries of type smtp whose host, port and socketType are usable; within a
    protocol, encrypted entries come before plain ones, otherwise in the
    document's order (the provider's preference).  ``%EMAILADDRESS%``,
    ``%EMAILLOCALPART%`` and ``%EMAILDOMAIN%`` are filled in.

    Documents with a DOCTYPE are refused outright: autoconfig needs none, and
    without one no entity can be declared, so there is nothing to expand or
    to fetch.  Raises :class:`AutoconfigError`.
    """
    if len(data) > limit:
        raise AutoconfigError(WHY["doc_too_large"].format(limit=limit))
    if re.search(rb"<!\s*(DOCTYPE|ENTITY)", data, re.IGNORECASE):
        raise AutoconfigError(WHY["doctype"])
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise AutoconfigError(WHY["not_xml"].format(error=exc)) from None
    if _local(root.tag) != "clientConfig":
        raise AutoconfigError(WHY["root"].format(tag=_local(root.tag)))
    provider = next((c for c in root if _local(c.tag) == "emailProvider"), None)
    if provider is None:
        raise AutoconfigError(WHY["no_provider"])
    found: dict[str, list[AutoconfigServer]] = {"imap": [], "pop3": [], "smtp": []}
    for element in provider:
        kind = _local(element.tag)
        wanted = {"incomingServer": ("imap", "pop3"), "outgoingServer": ("smtp",)}.get(kind)
        protocol = (element.get("type") or "").strip().lower()
        if not wanted or protocol not in wanted:
            continue
        server = _server_entry(element, protocol, email)
        if server is not None:
            found[protocol].append(server)
    ordered = {
        p: tuple(sorted(entries, key=lambda s: s.endpoint.security is Security.NONE))
        for p, entries in found.items()
        if entries
    }
    if "imap" not in ordered and "pop3" not in ordered:
        raise AutoconfigError(WHY["no_server"])
    display = _child_text(provider, "displayName") or None
    return AutoconfigDocument(servers=ordered, display_name=display)


def _server_entry(element: ET.Element, protocol: str, email: str) -> AutoconfigServer | None:
    host_text = _child_text(element, "hostname")
    port_text = _child_text(element, "port")
    socket_type = (_child_text(element, "socketType") or "").lower()
    if not host_text or not port_text or socket_type not in SOCKET_TYPES:
        return None
    try:
        host = normalize_host(_substitute(host_text, email))
        endpoint = Endpoint(host, int(port_text), SOCKET_TYPES[socket_type])
    except ValueError:  # ServerParseError too
        return None
    username_text = _child_text(element, "username")
    username = _substitute(username_text, email) if username_text else None
    if username is not None and (not username or "%" in username):
        username = None  # an unknown placeholder (%REALNAME%...) cannot be filled in
    authentication = tuple(
        (c.text or "").strip()
        for c in element
        if _local(c.tag) == "authentication" and (c.text or "").strip()
    )
    return AutoconfigServer(protocol, endpoint, username, authentication)


def autoconfig_urls(email: str, domain: str) -> list[str]:
    """The two autoconfig URLs, in Thunderbird's order: the ISP's host, then the domain's well-known path."""
    address = urllib.parse.quote(email, safe="")
    return [
        f"https://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress={address}",
        f"https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml",
    ]


# --- running work in parallel, keeping an order ----------------------------------------


class _Task:
    def __init__(self, fn: Callable[[], Any], name: str) -> None:
        self.fn = fn
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as exc:  # handed to the waiting thread
            self.error = exc

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()


def start_tasks(calls: Sequence[Callable[[], Any]], name: str = "mailroom-discovery") -> list[_Task]:
    tasks = [_Task(fn, f"{name}-{i}") for i, fn in enumerate(calls)]
    for task in tasks:
        task.thread.start()
    return tasks


def first_in_order(
    calls: Sequence[Callable[[], Any]],
    deadline: float,
    on_error: Callable[[BaseException], None] | None = None,
) -> Any:
    """Run ``calls`` in parallel; return the first non-None result *in list order*.

    A call ranked higher is waited for (until ``deadline``) before a lower
    one's answer is taken, so the order expresses preference, not speed.
    Errors are passed to ``on_error`` and count as no answer.
    """
    tasks = start_tasks(calls)
    for task in tasks:
        task.thread.join(max(remaining(deadline), 0))
        if not task.done:
            continue
        if task.error is not None:
            if on_error:
                on_error(task.error)
            continue
        if task.value is not None:
            return task.value
    return None


def run_all(calls: Sequence[Callable[[], Any]], deadline: float) -> list[_Task]:
    """Run ``calls`` in parallel and wait (until ``deadline``) for all of them."""
    tasks = start_tasks(calls)
    for task in tasks:
        task.thread.join(max(remaining(deadline), 0))
    return tasks


# --- the runner ------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One discovery plugin, as the runner asks it."""

    name: str  # "preset", "mx", ... or the plugin's name
    plugin: str
    impl: Any = field(repr=False, compare=False)


@dataclass(frozen=True)
class Attempt:
    """What one source did: ``answer``, ``nothing``, ``error``, ``timeout`` or ``skipped``."""

    source: str
    plugin: str
    outcome: str
    seconds: float
    detail: str | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DiscoveryReport:
    """The answer (or None) and what every source asked did, in order."""

    email: str
    domain: str
    result: DiscoveredSettings | None
    attempts: tuple[Attempt, ...]
    #: Every answer, in order, when run with ``stop_at_first=False``.
    answers: tuple[DiscoveredSettings, ...] = ()

    @property
    def seconds(self) -> float:
        return round(sum(a.seconds for a in self.attempts), 3)

    def as_dict(self) -> dict:
        """JSON-able: what a discovery job returns."""
        return {
            "email": self.email,
            "domain": self.domain,
            "result": self.result.as_dict() if self.result else None,
            "description": describe(self.result) if self.result else None,
            "attempts": [a.as_dict() for a in self.attempts],
            "seconds": self.seconds,
        }


def discovery_sources(pm: Any = None) -> list[Source]:
    """The ``mailroom_discover_settings`` implementations in the order they are asked.

    That is pluggy's call order: ``tryfirst`` first, then the most recently
    registered first, ``trylast`` last.  Hook wrappers are not sources and are
    not applied (each implementation is called on its own, with its own timeout).
    """
    if pm is None:
        pm = get_plugin_manager()
    impls = [
        impl
        for impl in reversed(pm.hook.mailroom_discover_settings.get_hookimpls())
        if not (impl.hookwrapper or impl.wrapper)
    ]
    return [
        Source(
            name=str(getattr(impl.plugin, "DISCOVERY_SOURCE", None) or impl.plugin_name),
            plugin=impl.plugin_name,
            impl=impl,
        )
        for impl in impls
    ]


def run_discovery(
    email: str, context: DiscoveryContext | None = None, *, stop_at_first: bool = True, pm: Any = None
) -> DiscoveryReport:
    """Ask the discovery sources in order; stop at the first answer unless ``stop_at_first`` is False.

    Each source runs in a worker thread bounded by its own timeout (plus
    :data:`GRACE`); one that overruns is abandoned and counted as
    ``timeout``, one that raises is logged and counted as ``error``.  An
    answer naming no server at all counts as ``nothing``.  Raises
    ``ValueError`` for an address that is not one.
    """
    email, _local_part, domain = validate_email(email)
    context = context or DiscoveryContext()
    if context.resolver is None and not _all_network_disabled(context):
        context = dataclasses.replace(context, resolver=system_resolver())
    attempts: list[Attempt] = []
    answers: list[DiscoveredSettings] = []
    for source in discovery_sources(pm):
        if source.name in context.disabled_sources or source.plugin in context.disabled_sources:
            attempts.append(Attempt(source.name, source.plugin, "skipped", 0.0, "disabled"))
            continue
        attempt, answer = _ask(source, email, domain, context)
        attempts.append(attempt)
        if answer is not None:
            answers.append(answer)
            if stop_at_first:
                break
    return DiscoveryReport(
        email=email,
        domain=domain,
        result=answers[0] if answers else None,
        attempts=tuple(attempts),
        answers=tuple(answers),
    )


def _all_network_disabled(context: DiscoveryContext) -> bool:
    return set(BUILTIN_SOURCES) - {"preset"} <= set(context.disabled_sources)


def _ask(
    source: Source, email: str, domain: str, context: DiscoveryContext
) -> tuple[Attempt, DiscoveredSettings | None]:
    timeout = context.timeout_for(source.name)
    own = dataclasses.replace(context, notes=[])
    kwargs = {"email": email, "domain": domain, "timeout": timeout, "context": own}
    args = [kwargs[name] for name in source.impl.argnames]
    started = time.monotonic()
    task = _Task(lambda: source.impl.function(*args), f"mailroom-discovery-{source.name}")
    task.thread.start()
    task.thread.join(timeout + max(GRACE, timeout * 0.25))
    seconds = round(time.monotonic() - started, 3)
    notes = "; ".join(own.notes) or None

    def attempt(outcome: str, detail: str | None = notes) -> Attempt:
        return Attempt(source.name, source.plugin, outcome, seconds, detail)

    if not task.done:
        log.warning("Discovery source %s did not finish within %.1f s for %s", source.name, timeout, domain)
        words = WHY["no_answer_notes"] if notes else WHY["no_answer"]
        return attempt("timeout", words.format(seconds=f"{timeout:g}", notes=notes)), None
    if task.error is not None:
        log.error("Discovery source %s failed for %s", source.name, domain, exc_info=task.error)
        return attempt("error", f"{type(task.error).__name__}: {task.error}"), None
    value = task.value
    if value is None:
        return attempt("nothing"), None
    if not isinstance(value, DiscoveredSettings):
        log.warning("Ignoring %r from discovery source %s: not a DiscoveredSettings", value, source.name)
        return attempt("error", WHY["wrong_type"].format(type=type(value).__name__)), None
    if value.imap is None and value.pop3 is None and value.smtp is None:
        return attempt("nothing", notes or WHY["empty_answer"]), None
    return attempt("answer", describe(value)), value


def discover(email: str, context: DiscoveryContext | None = None) -> DiscoveredSettings | None:
    """The suggested servers for ``email``, or None when no source knows them.

    Raises ``ValueError`` with a plain sentence when ``email`` is not an
    address.  ``context`` defaults to the public Internet with the default
    timeouts and an address policy refusing every internal address.
    """
    return run_discovery(email, context).result


def discover_settings(
    email: str, timeout: float | None = None, context: DiscoveryContext | None = None
) -> DiscoveredSettings | None:
    """Like :func:`discover`, but None for a non-address, and ``timeout`` (when given) caps every source's.

    (It used to be ``connectors.plugins.discover_settings``; it lives beside the
    runner so the plugin manager needs nothing from discovery.)
    """
    context = context or DiscoveryContext()
    if timeout is not None:
        capped = {name: min(seconds, timeout) for name, seconds in context.timeouts.items()}
        context = dataclasses.replace(
            context, timeouts=capped, default_timeout=min(context.default_timeout, timeout)
        )
    try:
        return discover(email, context)
    except ValueError:
        return None


def describe(settings: DiscoveredSettings) -> str:
    """One sentence saying where a suggestion came from, for the form."""
    extra = settings.extra or {}
    words = SOURCE_WORDS
    if settings.source == "preset":
        return words["preset"].format(name=_preset_name(settings.service_key))
    if settings.source == "mx":
        mx = extra.get("mx", words["known_provider"])
        return words["mx"].format(mx=mx, name=_preset_name(settings.service_key))
    if settings.source == "autoconfig":
        return words["autoconfig"].format(url=extra.get("url", words["autoconfig_url"]))
    if settings.source == "srv":
        names = ", ".join(r.split()[0] for r in (extra.get("records") or {}).values())
        return words["srv"].format(names=names) if names else words["srv_bare"]
    if settings.source == "probe":
        found = [e for e in (settings.imap, settings.smtp) if e]
        where = " and ".join(f"{e.host}:{e.port}" for e in found)
        return words["probe"].format(where=where)
    return words["plugin"].format(source=settings.source)


def _preset_name(key: str | None) -> str:
    preset = service_preset(key)
    return preset.name if preset else (key or SOURCE_WORDS["known_provider"])
