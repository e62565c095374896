"""The address guard: which IP addresses a server typed by a person may be reached at.

A server name typed into a form must not be a way into the internal network, so
every address it resolves to is judged here before a socket connects to it
(:mod:`connectors.net` for mail servers, :mod:`connectors.discovery` for
autoconfig fetches and probes).  This module holds only the rule, so the
settings types (:class:`connectors.settings.ServerSettings` carries a policy)
and the networking code can both depend on it without depending on each other.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOOPBACK = ipaddress.ip_address("127.0.0.1")


def internal_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public Internet address (``"loopback"``, ``"private"``, ...), or None.

    IPv6 forms that carry an IPv4 address (``::ffff:127.0.0.1``, 6to4, NAT64)
    are judged by the IPv4 address inside, which is where a connection goes.
    """
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = internal_reason(embedded)
            return f"{inner} (IPv4 {embedded} inside IPv6)" if inner else None
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.version == 4 and ip in _SHARED:
        return "shared (carrier-grade NAT)"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "non-public"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which internal addresses a manually entered server may use.

    Public addresses are always allowed.  ``allow_private`` lets every
    internal address through (a console on a closed network);
    ``allowed_networks`` and ``allowed_hosts`` are the administrator's
    exceptions.  A host entry ``.corp.example`` allows every name under it.
    """

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_hosts: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        nets = tuple(ipaddress.ip_network(n, strict=False) for n in self.allowed_networks)
        hosts = tuple(h.strip().lower().rstrip(".") for h in self.allowed_hosts if h and h.strip())
        object.__setattr__(self, "allowed_networks", nets)
        object.__setattr__(self, "allowed_hosts", hosts)

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == h or (h.startswith(".") and host.endswith(h)) for h in self.allowed_hosts)

    def network_allowed(self, ip: IPAddress) -> bool:
        candidates = [ip]
        if ip.version == 6 and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        return any(c in net for c in candidates for net in self.allowed_networks if c.version == net.version)

    def refusal(self, host: str, ip: IPAddress) -> str | None:
        """The reason ``host`` may not be reached at ``ip``, or None when it may."""
        reason = internal_reason(ip)
        if reason is None or self.allow_private or self.host_allowed(host) or self.network_allowed(ip):
            return None
        return reason

    def literal_refusal(self, host: str) -> str | None:
        """The reason ``host`` is refused before any name is resolved, or None.

        For a save, where nothing may be resolved: an IP literal is judged
        exactly as a connection to it would be, and ``localhost`` (and names
        under ``.localhost``, RFC 6761) as the loopback address they always
        mean.  Any other name can only be judged once resolved, by the job.
        """
        name = host.strip().strip("[]").lower().rstrip(".")
        try:
            ip = ipaddress.ip_address(name.split("%", 1)[0])
        except ValueError:
            if name == "localhost" or name.endswith(".localhost"):
                return self.refusal(name, _LOOPBACK)
            return None
        return self.refusal(name, ip)

    def as_dict(self) -> dict:
        return {
            "allow_private": self.allow_private,
            "allowed_networks": [str(n) for n in self.allowed_networks],
            "allowed_hosts": list(self.allowed_hosts),
        }
