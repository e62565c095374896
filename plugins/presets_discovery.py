"""Discovery without the network: an address on a preset's domain gets that preset's servers.

Ranked first (``tryfirst``, and registered after ``plugins.discovery_mx``) because
it is instant and exact; the MX, autoconfig, SRV and probing plugins run only
for domains no preset claims.
"""

from __future__ import annotations

from connectors.plugins import hookimpl, service_presets
from connectors.presets import DiscoveredSettings, find_by_domain

DISCOVERY_SOURCE = "preset"


@hookimpl(tryfirst=True)
def mailroom_discover_settings(email: str, domain: str) -> DiscoveredSettings | None:
    preset = find_by_domain(service_presets(), domain)
    if preset is None:
        return None
    return DiscoveredSettings(
        imap=preset.imap,
        smtp=preset.smtp,
        pop3=preset.pop3,
        source="preset",
        username_hint=email if preset.username_is_email else None,
        service_key=preset.key,
    )
