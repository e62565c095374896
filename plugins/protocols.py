"""The built-in protocol clients: IMAP (imapclient), POP3 (poplib), SMTP (smtplib).

Registered first among the built-ins (lowest rank), so any other plugin that
returns a client for a protocol replaces the one here; the connection check
and sync code look clients up through ``connectors.plugins.protocol_clients()``.
"""

from __future__ import annotations

from connectors.check import BUILTIN_CLIENTS
from connectors.plugins import hookimpl

CLIENTS: dict[str, type] = dict(BUILTIN_CLIENTS)


@hookimpl(trylast=True)
def mailroom_protocol_clients() -> dict[str, type]:
    return dict(CLIENTS)
