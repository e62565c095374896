"""Discovery by DNS SRV records: RFC 6186 (IMAP, POP3, submission) and RFC 8314 (implicit TLS).

``_imaps._tcp`` (TLS) is preferred over ``_imap._tcp`` (STARTTLS), and
``_submissions._tcp`` (TLS, port 465) over ``_submission._tcp`` (STARTTLS,
587); POP3 comes from ``_pop3s._tcp`` / ``_pop3._tcp``.  Among the records of
one service the lowest priority wins, then the highest weight.  A record whose
target is ``.`` says the service is not offered.  The source answers when it
finds an incoming server (IMAP or POP3).  The targets are only suggested, not
connected to; the connection test checks them like any typed server.
"""

from __future__ import annotations

import time

from connectors.discovery import DiscoveryContext, DiscoveryError, dns_query, run_all
from connectors.i18n import N_
from connectors.plugins import hookimpl
from connectors.presets import DiscoveredSettings, Endpoint
from connectors.settings import Security, normalize_host

DISCOVERY_SOURCE = "srv"
#: Why it found nothing (stored in English, translated when shown).
NOTES = {
    "no_answer": N_("no answer for SRV {name} within {seconds} s"),
    "bad_target": N_("SRV {name} names an unusable target {target!r}"),
    "none": N_("no IMAP or POP3 SRV records for {domain}"),
}

#: protocol -> SRV service labels, preferred first, with the security each implies.
SERVICES: dict[str, tuple[tuple[str, Security], ...]] = {
    "imap": (("_imaps._tcp", Security.TLS), ("_imap._tcp", Security.STARTTLS)),
    "pop3": (("_pop3s._tcp", Security.TLS), ("_pop3._tcp", Security.STARTTLS)),
    "smtp": (("_submissions._tcp", Security.TLS), ("_submission._tcp", Security.STARTTLS)),
}


def best_record(records: list) -> object | None:
    """The record to use: lowest priority, then highest weight; None if the service is not offered."""
    usable = [r for r in records if r.target.to_text() != "." and r.port > 0]
    if not usable:
        return None
    return sorted(usable, key=lambda r: (r.priority, -r.weight))[0]


@hookimpl
def mailroom_discover_settings(
    email: str, domain: str, timeout: float, context: DiscoveryContext
) -> DiscoveredSettings | None:
    deadline = time.monotonic() + timeout
    queries = [
        (protocol, label, security) for protocol, entries in SERVICES.items() for label, security in entries
    ]
    tasks = run_all(
        [
            lambda label=label: dns_query(context, f"{label}.{domain}", "SRV", deadline)
            for _, label, _ in queries
        ],
        deadline,
    )
    endpoints: dict[str, Endpoint] = {}
    records: dict[str, str] = {}
    for (protocol, label, security), task in zip(queries, tasks, strict=True):
        if protocol in endpoints:
            continue  # a preferred service already answered
        if not task.done:
            context.note(NOTES["no_answer"].format(name=f"{label}.{domain}", seconds=f"{timeout:g}"))
            continue
        if task.error is not None:
            context.note(str(task.error) if isinstance(task.error, DiscoveryError) else repr(task.error))
            continue
        record = best_record(task.value or [])
        if record is None:
            continue
        target = record.target.to_text(omit_final_dot=True)
        try:
            endpoints[protocol] = Endpoint(normalize_host(target), record.port, security)
        except ValueError:
            context.note(NOTES["bad_target"].format(name=f"{label}.{domain}", target=target))
            continue
        records[protocol] = f"{label}.{domain} SRV {record.priority} {record.weight} {record.port} {target}"
    if "imap" not in endpoints and "pop3" not in endpoints:
        context.note(NOTES["none"].format(domain=domain))
        return None
    return DiscoveredSettings(
        imap=endpoints.get("imap"),
        smtp=endpoints.get("smtp"),
        pop3=endpoints.get("pop3"),
        source="srv",
        username_hint=email,
        extra={"records": records},
    )
