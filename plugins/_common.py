"""Small helpers shared by the provider plugins (not a plugin itself)."""

from __future__ import annotations

from collections.abc import Iterable

from connectors.settings import ServerSettings


def host_of(settings: ServerSettings | None) -> str | None:
    """The lower-case host of ``settings``, or None when there are no settings."""
    host = getattr(settings, "host", None)
    return host.lower().rstrip(".") if isinstance(host, str) else None


def port_of(settings: ServerSettings | None) -> int | None:
    return getattr(settings, "port", None)


def concerns(
    service_key: str | None, settings: ServerSettings | None, key: str, hosts: Iterable[str]
) -> bool:
    """True when a failure is about this provider: by its preset key, or by a server it runs.

    The host check matters because people often type ``imap.gmail.com`` by
    hand instead of picking the Gmail preset, and they need the same hints.
    """
    return service_key == key or host_of(settings) in set(hosts)
