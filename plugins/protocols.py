"""The built-in protocol clients: IMAP (imapclient), POP3 (poplib), SMTP (smtplib).

Registered first among the built-ins (lowest rank), so any other plugin that
returns a client for a protocol replaces the one here; the connection check
and sync code look clients up through ``connectors.plugins.protocol_clients()``.
"""

from __future__ import annotations

from connectors.imap import ImapClient
from connectors.plugins import hookimpl
from connectors.pop3 import Pop3Client
from connectors.smtp import SmtpClient

CLIENTS: dict[str, type] = {"imap": ImapClient, "pop3": Pop3Client, "smtp": SmtpClient}


@hookimpl(trylast=True)
def mailroom_protocol_clients() -> dict[str, type]:
    return dict(CLIENTS)
