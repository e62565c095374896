"""What every discovery source is given besides the address: :class:`DiscoveryContext`.

It lives apart from the runner (:mod:`connectors.discovery`) because the hook
specifications (:mod:`connectors.hookspecs`) name it, and the runner asks the
plugin manager for the sources: keeping the type here lets the hook contract,
the plugin manager and the runner all use it without importing one another.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.resolver

from connectors.addresses import AddressPolicy
from connectors.i18n import N_
from connectors.settings import Security

log = logging.getLogger(__name__)

#: The built-in sources, in the order they are asked.
BUILTIN_SOURCES: tuple[str, ...] = ("preset", "mx", "autoconfig", "srv", "probe")

#: Seconds each source may take.  A plugin not named here gets ``default_timeout``.
DEFAULT_TIMEOUTS: Mapping[str, float] = {
    "preset": 2.0,
    "mx": 4.0,
    "autoconfig": 8.0,
    "srv": 4.0,
    "probe": 10.0,
}

#: Largest autoconfig document read; anything longer is refused unread.
MAX_RESPONSE_BYTES = 256 * 1024
#: A note shown on the connect form (stored in English, translated when shown).
NO_RESOLVER = N_("no DNS resolver is configured on this machine")


class DiscoveryError(Exception):
    """One step of a source found nothing usable; the message says why (for the trace)."""


def system_resolver() -> dns.resolver.Resolver | None:
    """dnspython's resolver from ``/etc/resolv.conf``, or None when there is no configuration."""
    try:
        return dns.resolver.Resolver()
    except dns.exception.DNSException as exc:  # NoResolverConfiguration and friends
        log.warning("No DNS resolver configuration for discovery: %s", exc)
        return None


@dataclass(frozen=True)
class DiscoveryContext:
    """Everything the discovery sources need besides the address.

    Build one per deployment (from the admin settings) and pass it to
    :func:`discover`; the defaults are right for the public Internet.

    * ``resolver``: the dnspython resolver for MX, SRV, A and AAAA lookups
      (None: the system's, from ``/etc/resolv.conf``).  Tests pass
      ``Resolver(configure=False)`` with ``nameservers=["127.0.0.1"]`` and a ``port``.
    * ``address_policy``: which internal addresses fetches and probes may
      reach; public addresses are always allowed.  The default refuses every
      loopback, private, link-local or reserved address.
    * ``timeouts``: seconds per source name, merged over ``DEFAULT_TIMEOUTS``,
      and ``default_timeout`` for sources not named there (third-party plugins).
    * ``https_port``: the port autoconfig URLs without an explicit port are
      fetched from (443; tests use their server's port).  ``ca_file``: extra CA
      certificates trusted for HTTPS and probes, on top of the system ones.
    * ``max_response_bytes``, ``max_redirects``: limits for autoconfig fetches.
    * ``probe_imap_hosts``/``probe_smtp_hosts`` (``{domain}`` is replaced) and
      ``probe_imap_ports``/``probe_smtp_ports`` (``(port, security)`` pairs, in
      order of preference); ``connect_timeout`` bounds each probe connection;
      ``helo_name`` is the name sent in EHLO.
    * ``disabled_sources``: source or plugin names not to ask (``"probe"``).
    """

    resolver: dns.resolver.Resolver | None = None
    address_policy: AddressPolicy = field(default_factory=AddressPolicy)
    timeouts: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TIMEOUTS))
    default_timeout: float = 5.0
    https_port: int = 443
    ca_file: str | None = None
    max_response_bytes: int = MAX_RESPONSE_BYTES
    max_redirects: int = 3
    connect_timeout: float = 4.0
    probe_imap_hosts: tuple[str, ...] = ("imap.{domain}", "mail.{domain}", "{domain}")
    probe_smtp_hosts: tuple[str, ...] = ("smtp.{domain}", "mail.{domain}")
    probe_imap_ports: tuple[tuple[int, Security], ...] = ((993, Security.TLS), (143, Security.STARTTLS))
    probe_smtp_ports: tuple[tuple[int, Security], ...] = ((465, Security.TLS), (587, Security.STARTTLS))
    helo_name: str = "localhost"
    user_agent: str = "Mailroom-discovery/1"
    disabled_sources: frozenset[str] = frozenset()
    #: Why a source found nothing: filled by the source during one attempt (see :meth:`note`).
    notes: list[str] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Timeouts given for some sources keep the defaults for the others.
        object.__setattr__(self, "timeouts", {**DEFAULT_TIMEOUTS, **dict(self.timeouts)})
        object.__setattr__(self, "disabled_sources", frozenset(self.disabled_sources))
        object.__setattr__(
            self, "probe_imap_ports", tuple((int(p), Security.parse(s)) for p, s in self.probe_imap_ports)
        )
        object.__setattr__(
            self, "probe_smtp_ports", tuple((int(p), Security.parse(s)) for p, s in self.probe_smtp_ports)
        )

    @classmethod
    def offline(cls, **kwargs: Any) -> DiscoveryContext:
        """A context that asks only sources needing no network (the presets by domain)."""
        kwargs.setdefault("disabled_sources", frozenset(BUILTIN_SOURCES) - {"preset"})
        return cls(**kwargs)

    def timeout_for(self, source: str) -> float:
        return float(self.timeouts.get(source, self.default_timeout))

    def note(self, message: str) -> None:
        """Record why this attempt found nothing; shown in the discovery report."""
        self.notes.append(message)

    def ssl_context(self) -> ssl.SSLContext:
        """Verifying client context: system CAs plus ``ca_file``, host names checked."""
        ctx = ssl.create_default_context()
        if self.ca_file:
            ctx.load_verify_locations(cafile=self.ca_file)
        return ctx

    def get_resolver(self) -> dns.resolver.Resolver:
        resolver = self.resolver or system_resolver()
        if resolver is None:
            raise DiscoveryError(NO_RESOLVER)
        return resolver
