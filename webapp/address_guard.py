"""The address guard of hand-typed servers, as the administrator configured it.

One policy for both sides: the jobs judge every address a server name
resolves to before connecting (:mod:`webapp.jobs.session`), and saving a
mailbox refuses what is refused without resolving anything (an internal IP
literal, ``localhost``), so such a server is never stored to fail later.
The web never resolves a mail server's name: that part stays with the job.
"""

from __future__ import annotations

import ipaddress

from flask_babel import gettext as _

from connectors.addresses import AddressPolicy
from connectors.errors import Detail
from connectors.i18n import N_

from . import settings_store

#: What the person can do about it (the administrator's setting, by its label).
ALLOW_HINT = N_(
    "An administrator can allow it under Administration → Email Service Settings → Network "
    '("Internal servers that manual details may reach").'
)


def address_policy() -> AddressPolicy:
    """The guard for hand-typed servers: internal addresses only where the administrator allowed them."""
    networks, hosts = [], []
    for item in settings_store.get("allowed_internal_hosts"):
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError:
            hosts.append(item)
    return AddressPolicy(allow_private=False, allowed_networks=tuple(networks), allowed_hosts=tuple(hosts))


def refused_on_save(endpoints: dict[str, dict | None]) -> dict[str, str]:
    """``{"imap.host": sentence}`` for each server of ``endpoints`` the guard refuses as typed."""
    policy = address_policy()
    errors = {}
    for protocol, endpoint in endpoints.items():
        if not endpoint:
            continue
        reason = policy.literal_refusal(endpoint["host"])
        if reason:
            sentence = Detail.FORBIDDEN_LITERAL.format(address=endpoint["host"], reason=reason)
            errors[f"{protocol}.host"] = f"{sentence} {_(ALLOW_HINT)}"
    return errors
