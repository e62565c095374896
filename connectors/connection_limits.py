"""How many connections a mail server accepts at once from one client: the plugins' answer type.

Providers cap concurrent IMAP connections (Gmail: 15 per account; Microsoft 365: about 20 per
mailbox); past the cap they refuse the login or answer "too many connections", which used to
fail a mailbox for no fault of its own.  A plugin names the cap for its hosts through the
``mailroom_connection_limit`` hook; the worker side holds it in Redis across machines.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConnectionLimit:
    """At most ``max_connections`` open at once; counted per mailbox (``per_account``) or per host.

    Providers that serve many tenants count per account (Gmail, Microsoft 365): a per-host cap of
    15 would throttle a whole company to 15 mailboxes at a time.  A corporate server counts per host.
    """

    max_connections: int
    per_account: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.max_connections, int) or self.max_connections < 1:
            raise ValueError("max_connections must be a positive integer")
