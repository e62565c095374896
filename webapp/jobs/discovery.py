"""Server-settings discovery as an RQ job, for the "Other" connect form and ``POST /api/v1/discover``.

The web never looks anything up itself: it stores the address in Redis under a
random key (an address is not a secret, but job arguments carry ids and keys
only, like every other job) and :func:`start` enqueues :func:`discover_settings`
with that key.  The job runs :func:`connectors.discovery.run_discovery` with a context
built from the configuration, so a closed network (or a test) can point DNS
and HTTPS at its own servers:

``DISCOVERY_NAMESERVERS``  list of name-server addresses (default: /etc/resolv.conf)
``DISCOVERY_DNS_PORT``     their port (53)
``DISCOVERY_CA_FILE``      extra CA certificates trusted for autoconfig HTTPS and probes
``DISCOVERY_HTTPS_PORT``   port autoconfig URLs are fetched from (443)
``DISCOVERY_TIMEOUTS``     ``{source: seconds}`` over the defaults
``DISCOVERY_PROBE_IMAP_PORTS`` / ``DISCOVERY_PROBE_SMTP_PORTS``  ``[[port, security], ...]``
``DISCOVERY_CONNECT_TIMEOUT``  seconds per probe connection
``DISCOVERY_DISABLED_SOURCES`` source names not to ask (e.g. ``["probe"]``)

Internal addresses are refused unless the administrator allowed them in the
settings (the same ``allowed_internal_hosts`` as manual server details).
"""

from __future__ import annotations

import secrets as pysecrets
from typing import Any

import dns.resolver
from flask import current_app
from rq.job import Job

from connectors.discovery import DiscoveryContext, describe, run_discovery, validate_email
from connectors.i18n import N_

from ..errors import Invalid
from ..models import Service, User
from ..queue import enqueue_for, get_redis
from ..service_catalog import sync_builtin_services
from .session import address_policy

REQUEST_PREFIX = "mailroom:discovery-request:"
REQUEST_TTL = 600

#: Where a suggestion came from, in words for the form ({url}, {mx}, {records}, {where} filled in).
#: The job stores the English; the job status answer translates it for its reader (webapp.i18n).
_SOURCE_WORDS = {
    "autoconfig": N_("Found in the provider's autoconfig file at {url}."),
    "srv": N_("From DNS SRV records ({records})."),
    "srv_bare": N_("From DNS SRV records."),
    "probe": N_("Guessed by connecting to {where}; check them before saving."),
    "service": N_("{domain} is served by {service}: choose {service} above."),
    "service_via": N_("{domain} is served by {service} (its mail goes to {mx}): choose {service} above."),
    "nothing": N_("No settings found for {domain}: enter the server details by hand."),
    "expired": N_("The request expired; type the address again."),
}
#: A source's outcome when it left no note of its own (``nothing``, ``timeout``, ``error``).
_OUTCOME_WORDS = {"nothing": N_("nothing found"), "timeout": N_("no answer in time"), "error": N_("failed")}


def stash_request(redis, email: str) -> str:
    """Keep the address in Redis for the job; answer the random key the job receives."""
    key = REQUEST_PREFIX + pysecrets.token_urlsafe(16)
    redis.set(key, email.encode(), ex=REQUEST_TTL)
    return key


def discovery_context():
    """The :class:`DiscoveryContext` of this deployment, from the configuration and the settings."""
    config = current_app.config
    kwargs: dict[str, Any] = {"address_policy": address_policy()}
    nameservers = config.get("DISCOVERY_NAMESERVERS")
    if nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = list(nameservers)
        resolver.port = int(config.get("DISCOVERY_DNS_PORT") or 53)
        kwargs["resolver"] = resolver
    for key, name in (
        ("DISCOVERY_CA_FILE", "ca_file"),
        ("DISCOVERY_HTTPS_PORT", "https_port"),
        ("DISCOVERY_TIMEOUTS", "timeouts"),
        ("DISCOVERY_CONNECT_TIMEOUT", "connect_timeout"),
    ):
        if config.get(key) is not None:
            kwargs[name] = config[key]
    for key, name in (
        ("DISCOVERY_PROBE_IMAP_PORTS", "probe_imap_ports"),
        ("DISCOVERY_PROBE_SMTP_PORTS", "probe_smtp_ports"),
    ):
        if config.get(key):
            kwargs[name] = tuple((int(port), security) for port, security in config[key])
    if config.get("DISCOVERY_DISABLED_SOURCES"):
        kwargs["disabled_sources"] = frozenset(config["DISCOVERY_DISABLED_SOURCES"])
    return DiscoveryContext(**kwargs)


def job_timeout() -> int:
    """Every source may use its whole timeout (plus the runner's grace); then some slack."""
    context = discovery_context()
    total = sum(context.timeout_for(name) * 1.25 + 1 for name in context.timeouts)
    return int(total) + 30


def start(body: dict, owner: User) -> Job:
    """Validate ``{"email"}`` (422 naming the field), stash the address, enqueue the lookup."""
    unknown = sorted(set(body) - {"email"})
    fields = {key: "unknown field" for key in unknown}
    email = body.get("email")
    if not isinstance(email, str):
        fields["email"] = "Enter an email address, e.g. someone@example.com."
    else:
        try:
            email = validate_email(email)[0]
        except ValueError as exc:
            fields["email"] = str(exc)
    if fields:
        raise Invalid(fields)
    key = stash_request(get_redis(), email)
    return enqueue_for(discover_settings, key, owner_id=owner.id, kind="discovery", timeout=job_timeout())


def discover_settings(request_key: str) -> dict:
    """The job: look up the address waiting under ``request_key``; answer the suggestion for the form."""
    raw = get_redis().getdel(request_key)
    if raw is None:
        return {"source": None, "error": _SOURCE_WORDS["expired"]}
    report = run_discovery(raw.decode(), discovery_context())
    return suggestion(report)


def suggestion(report) -> dict:
    """Shape a DiscoveryReport for the form and the API (JSON-able)."""
    found = report.result
    attempts = [a.as_dict() for a in report.attempts]
    if found is None:
        notes = [
            f"{a.source}: {a.detail or _OUTCOME_WORDS.get(a.outcome, a.outcome)}"
            for a in report.attempts
            if a.outcome not in ("skipped",)
        ]
        return {
            "email": report.email,
            "domain": report.domain,
            "source": None,
            "imap": None,
            "pop3": None,
            "smtp": None,
            "username": None,
            "description": _SOURCE_WORDS["nothing"].format(domain=report.domain),
            "notes": notes,
            "attempts": attempts,
        }
    body = {
        "email": report.email,
        "domain": report.domain,
        "source": found.source,
        "imap": found.imap.as_dict() if found.imap else None,
        "pop3": found.pop3.as_dict() if found.pop3 else None,
        "smtp": found.smtp.as_dict() if found.smtp else None,
        "username": found.username_hint,
        "service_key": found.service_key,
        "service": _service(found.service_key),
        "description": _describe(report.domain, found),
        "notes": [],
        "attempts": attempts,
    }
    return body


def _service(key: str | None) -> dict | None:
    """The catalog's service for a preset key, when a person may choose it."""
    if not key:
        return None
    sync_builtin_services()
    service = Service.query.filter_by(key=key).first()
    if service is None or service.hidden:
        return None
    return {"id": service.id, "name": service.name}


def _describe(domain: str, found) -> str:
    extra = found.extra or {}
    if found.source in ("preset", "mx"):
        service = _service(found.service_key)
        if service is not None:
            if found.source == "mx" and extra.get("mx"):
                return _SOURCE_WORDS["service_via"].format(domain=domain, service=service["name"], mx=extra["mx"])
            return _SOURCE_WORDS["service"].format(domain=domain, service=service["name"])
        return describe(found)
    if found.source == "autoconfig" and extra.get("url"):
        return _SOURCE_WORDS["autoconfig"].format(url=extra["url"])
    if found.source == "srv":
        records = ", ".join(r.split()[0] for r in (extra.get("records") or {}).values())
        return _SOURCE_WORDS["srv"].format(records=records) if records else _SOURCE_WORDS["srv_bare"]
    if found.source == "probe":
        where = " and ".join(f"{e.host}:{e.port}" for e in (found.imap, found.smtp) if e)
        return _SOURCE_WORDS["probe"].format(where=where)
    return describe(found)
