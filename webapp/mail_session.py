"""Open an authenticated IMAP, POP3 or SMTP connection for a mailbox, inside a job.

One place decides how a stored mailbox becomes a connection: its current
server (the service's, so an edited service applies at the next connection),
the console-wide timeout, certificate validation, the address guard for
hand-typed servers, the decrypted credentials and the protocol client the
plugins provide.  Jobs (sync, folder listing, body fetch, sending) use it;
the web process never does, because it never talks to a mail server.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

from connectors import plugins
from connectors.errors import ErrorClass, MailError
from connectors.settings import Credentials

from . import settings_store
from .models import Account
from .secretbox import box
from .service_trust import trust_for_account


class MailboxUnavailable(Exception):
    """The mailbox cannot be used now (disabled, service removed, no server for the protocol)."""


def credentials(account: Account, protocol: str) -> Credentials:
    """The decrypted login for ``protocol`` (SMTP may have its own).

    An OAuth2 mailbox gets a fresh access token (refreshed here when it is about to expire;
    see :mod:`webapp.oauth_tokens`), which the clients send with XOAUTH2 or OAUTHBEARER.
    """
    if account.auth_method == "oauth2":
        from .oauth_tokens import access_token

        username = (account.smtp_username if protocol == "smtp" else None) or account.username
        return Credentials(username=username, oauth2_token=access_token(account))
    password = box().decrypt(account.password_encrypted) if account.password_encrypted else None
    if protocol == "smtp":
        smtp_password = (
            box().decrypt(account.smtp_password_encrypted) if account.smtp_password_encrypted else password
        )
        return Credentials(username=account.smtp_username or account.username, password=smtp_password)
    return Credentials(username=account.username, password=password)


def server_settings(account: Account, protocol: str):
    """The ServerSettings of the mailbox's current server for ``protocol``."""
    from .connection_tests import _settings, address_policy

    if not account.active:
        raise MailboxUnavailable("The mailbox is disabled.")
    if account.service_removed:
        raise MailboxUnavailable(account.last_error or "The mailbox's mail service was removed.")
    endpoint = account.server(protocol)
    if endpoint is None:
        raise MailboxUnavailable(f"The mailbox has no {protocol.upper()} server.")
    trust = trust_for_account(account)
    return _settings(
        endpoint,
        protocol,
        verify=trust.verify,
        policy=address_policy() if account.manual else None,
        ca_data=trust.ca_data,
    )


@contextmanager
def open_client(account: Account, protocol: str, transcript: Any = None):
    """``with open_client(account, "imap") as client:`` connected and logged in; closed on exit.

    Raises :class:`MailboxUnavailable` before connecting, or
    :class:`connectors.errors.MailError` (classified) from the client.
    """
    settings = server_settings(account, protocol)
    client_class = plugins.protocol_clients().get(protocol)
    if client_class is None:
        raise MailError(ErrorClass.PROTOCOL, protocol, "connect", detail=f"No {protocol} client is installed.")
    client = client_class(settings, credentials(account, protocol), transcript)
    with client:
        yield client


def timeout() -> int:
    """The console-wide connection timeout, in seconds."""
    return int(settings_store.get("connection_timeout"))
