"""Open an authenticated IMAP, POP3 or SMTP connection for a mailbox, inside a job.

One place decides how a stored mailbox becomes a connection: its current
server (the service's, so an edited service applies at the next connection),
the console-wide timeout, certificate validation, the address guard for
hand-typed servers, the decrypted credentials and the protocol client the
plugins provide.  Jobs (sync, folder listing, body fetch, sending) use it;
the web process never does, because it never talks to a mail server.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Any

from flask import current_app

from connectors import plugins
from connectors.errors import ErrorClass, MailError
from connectors.i18n import N_
from connectors.settings import Credentials, Protocol, Security, ServerSettings

from .. import settings_store
from ..address_guard import address_policy
from ..errors import MailboxUnavailable
from ..models import Account
from ..secretbox import box
from ..service_trust import trust_for_account
from .connection_slots import NoFreeConnection, connection_slot
from .oauth_refresh import access_token

#: Why a job cannot use a mailbox now (stored as its outcome in English, translated when shown).
UNAVAILABLE = {
    "gone": N_("The mailbox no longer exists."),
    "disabled": N_("The mailbox is disabled."),
    "service_removed": N_("The mailbox's mail service was removed."),
    "no_server": N_("The mailbox has no {protocol} server."),
}

#: Protocols whose connections count against the server's limit (SMTP submissions are short).
LIMITED = ("imap", "pop3")

__all__ = [
    "MailboxUnavailable",
    "NoFreeConnection",
    "address_policy",
    "credentials",
    "open_client",
    "server_settings",
    "timeout",
]


def settings_for(
    endpoint: dict,
    protocol: str,
    *,
    verify: bool = True,
    policy=None,
    ca_data: str | None = None,
    timeout: float | None = None,
) -> ServerSettings:
    """``verify`` and ``ca_data`` come from :mod:`webapp.service_trust` (the service's own trust);
    ``timeout`` defaults to the console-wide setting."""
    kwargs = {}
    if policy is not None:
        kwargs["address_policy"] = policy
    return ServerSettings(
        protocol=Protocol(protocol),
        host=endpoint["host"],
        port=endpoint["port"],
        security=Security(endpoint["security"]),
        verify_certificate=verify,
        timeout=float(settings_store.get("connection_timeout") if timeout is None else timeout),
        ca_file=current_app.config.get("MAIL_CA_FILE"),
        ca_data=ca_data,
        **kwargs,
    )


def credentials(account: Account, protocol: str) -> Credentials:
    """The decrypted login for ``protocol`` (SMTP may have its own).

    An OAuth2 mailbox gets a fresh access token (refreshed here when it is about to expire;
    see :mod:`webapp.jobs.oauth_refresh`), which the clients send with XOAUTH2 or OAUTHBEARER.
    """
    if account.auth_method == "oauth2":
        username = (account.smtp_username if protocol == "smtp" else None) or account.username
        return Credentials(username=username, oauth2_token=access_token(account))
    password = box().decrypt(account.password_encrypted) if account.password_encrypted else None
    if protocol == "smtp":
        smtp_password = (
            box().decrypt(account.smtp_password_encrypted) if account.smtp_password_encrypted else password
        )
        return Credentials(username=account.smtp_username or account.username, password=smtp_password)
    return Credentials(username=account.username, password=password)


def server_settings(account: Account, protocol: str, *, timeout: float | None = None, policy=None):
    """The ServerSettings of the mailbox's current server for ``protocol``.

    ``timeout`` and ``policy`` (the address guard of hand-typed servers) default to the console's
    settings, read here; a batch of mailboxes reads them once and passes them in."""
    if not account.active:
        raise MailboxUnavailable(UNAVAILABLE["disabled"])
    if account.service_removed:
        raise MailboxUnavailable(account.last_error or UNAVAILABLE["service_removed"])
    endpoint = account.server(protocol)
    if endpoint is None:
        raise MailboxUnavailable(UNAVAILABLE["no_server"].format(protocol=protocol.upper()))
    trust = trust_for_account(account)
    return settings_for(
        endpoint,
        protocol,
        verify=trust.verify,
        policy=(policy or address_policy()) if account.manual else None,
        ca_data=trust.ca_data,
        timeout=timeout,
    )


@contextmanager
def open_client(account: Account, protocol: str, transcript: Any = None, *, wait: float | None = None):
    """``with open_client(account, "imap") as client:`` connected and logged in; closed on exit.

    An IMAP or POP3 connection first takes one of the server's connection slots
    (:mod:`webapp.jobs.connection_slots`: at most K at once across every worker), waiting up to
    ``wait`` seconds for one.  Raises :class:`MailboxUnavailable` before connecting,
    :class:`NoFreeConnection` (a ``throttled`` MailError) when no slot freed in time, or
    :class:`connectors.errors.MailError` (classified) from the client.
    """
    settings = server_settings(account, protocol)
    client_class = plugins.protocol_clients().get(protocol)
    if client_class is None:
        raise MailError(
            ErrorClass.PROTOCOL, protocol, "connect", detail=f"No {protocol} client is installed."
        )
    client = client_class(settings, credentials(account, protocol), transcript)
    slot = connection_slot(account, settings.host, protocol, wait) if protocol in LIMITED else nullcontext()
    with slot, client:
        yield client


def timeout() -> int:
    """The console-wide connection timeout, in seconds."""
    return int(settings_store.get("connection_timeout"))
