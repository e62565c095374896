"""Discovery by MX host: a domain whose mail goes to a known provider gets that provider's preset.

Google Workspace, Microsoft 365 and hosted PEC domains keep their own domain
name but point their MX records at the provider (``aspmx.l.google.com``,
``<tenant>.mail.protection.outlook.com``, ``mx.pec.aruba.it``).  The MX
hosts are matched, best preference first, against every preset's
``mx_suffixes`` (:func:`connectors.presets.find_by_mx`).  No connection is
made to the MX host; only the domain's MX records are looked up.
"""

from __future__ import annotations

import time

from connectors.discovery import DiscoveryContext, DiscoveryError, dns_query
from connectors.i18n import N_
from connectors.plugins import hookimpl, service_presets
from connectors.presets import DiscoveredSettings, find_by_mx

DISCOVERY_SOURCE = "mx"
#: Why it found nothing (stored in English, translated when shown).
NOTES = {
    "no_mx": N_("{domain} has no MX records"),
    "no_preset": N_("no preset matches the MX hosts {hosts}"),
}


@hookimpl(tryfirst=True)
def mailroom_discover_settings(
    email: str, domain: str, timeout: float, context: DiscoveryContext
) -> DiscoveredSettings | None:
    deadline = time.monotonic() + timeout
    try:
        records = dns_query(context, domain, "MX", deadline)
    except DiscoveryError as exc:
        context.note(str(exc))
        return None
    hosts = [
        r.exchange.to_text(omit_final_dot=True).lower()
        for r in sorted(records, key=lambda r: r.preference)
        if r.exchange.to_text() != "."  # RFC 7505 null MX: the domain takes no mail
    ]
    if not hosts:
        context.note(NOTES["no_mx"].format(domain=domain))
        return None
    presets = service_presets()
    for host in hosts:
        preset = find_by_mx(presets, host)
        if preset is not None:
            return DiscoveredSettings(
                imap=preset.imap,
                smtp=preset.smtp,
                pop3=preset.pop3,
                source="mx",
                username_hint=email if preset.username_is_email else None,
                service_key=preset.key,
                extra={"mx": host},
            )
    context.note(NOTES["no_preset"].format(hosts=", ".join(hosts)))
    return None
