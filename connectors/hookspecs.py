"""The hooks a Mailroom plugin can implement: the contract between core and plugins.

Every hook is prefixed ``mailroom_``.  An implementation may accept any subset
of a hook's arguments, by name.  ``docs/plugins.md`` has an example for each.
"""

from __future__ import annotations

import pluggy

from connectors.connection_limits import ConnectionLimit
from connectors.discovery_context import DiscoveryContext
from connectors.presets import DiscoveredSettings, ServicePreset
from connectors.settings import ServerSettings

hookspec = pluggy.HookspecMarker("mailroom")


@hookspec
def mailroom_service_presets() -> list[ServicePreset]:
    """Return the mail services this plugin knows, as a list of ``ServicePreset``.

    Every plugin's list is collected and flattened.  A preset whose ``key``
    equals one registered earlier replaces it (in the earlier one's place in
    the list), which is how a plugin corrects a built-in provider.
    """


@hookspec
def mailroom_protocol_clients() -> dict[str, type]:
    """Return ``{protocol name: client class}``, e.g. ``{"imap": MyImapClient}``.

    Collected from every plugin and merged; a plugin registered later replaces
    an earlier one's class for the same protocol, so a deployment can swap in
    its own client (a proxy-aware IMAP, a JMAP bridge) without forking.
    """


@hookspec(firstresult=True)
def mailroom_discover_settings(
    email: str, domain: str, timeout: float, context: DiscoveryContext
) -> DiscoveredSettings | None:
    """Find the servers for ``email`` (``domain`` is its lower-case, IDNA domain).

    Return a ``DiscoveredSettings`` or None to let the next plugin try; the
    first answer wins, because discovery is an ordered search (presets by
    domain and by MX host, then autoconfig XML, SRV records, probing) and
    later steps are slower.  Network work must finish within ``timeout``
    seconds, this source's own timeout.

    ``context`` is a :class:`connectors.discovery_context.DiscoveryContext`: the DNS
    resolver to use, HTTPS settings, the address policy every fetch and
    connection must pass (``connectors.discovery.connect_checked`` and
    ``fetch_https`` apply it), and ``context.note(text)`` to say why nothing
    was found.  ``connectors.discovery.run_discovery`` calls each
    implementation on its own, in hook order, bounded by its timeout.
    """


@hookspec
def mailroom_diagnosis_hints(
    error_class: str, protocol: str, service_key: str | None, settings: ServerSettings | None
) -> list[str]:
    """Return extra fix hints for a failed connection, or an empty list.

    ``error_class`` is one of the taxonomy names in ``connectors/errors.py``
    (``auth``, ``timeout``, ``refused``, ``tls``, ...), ``protocol`` is
    ``imap``/``pop3``/``smtp``, ``service_key`` the preset the account uses (or
    None for hand-entered servers) and ``settings`` the server that failed.
    All plugins' hints are shown, so providers add their own known traps
    (Gmail app passwords, Microsoft 365 on port 993 not 443).
    """


@hookspec
def mailroom_folder_role_hints(service_key: str | None, folders: list[str]) -> dict[str, str]:
    """Return ``{folder name: role}`` for the folders this plugin recognises.

    ``folders`` are decoded folder names as the server lists them; roles are
    ``inbox``, ``drafts``, ``sent``, ``spam``, ``trash``, ``archive``.  Used
    when a server gives no SPECIAL-USE flags, and for names like
    ``[Gmail]/Posta inviata`` that only a provider plugin understands.
    Answers are merged; a plugin registered later wins for the same folder.
    """


@hookspec
def mailroom_messages_synced(account_id: int, folder: str, uids: list[int]) -> None:
    """Called after new messages were stored by a sync run; return value ignored.

    ``uids`` are the new UIDs in ``folder`` of mailbox account ``account_id``.
    Runs inside the sync worker: keep it quick, or enqueue your own job.
    """


@hookspec(firstresult=True)
def mailroom_server_saves_sent(service_key: str | None) -> bool | None:
    """Return True when the provider files a copy of every sent message in Sent itself.

    Mailroom then skips its IMAP APPEND of the Sent copy, so the message is not
    in Sent twice (Gmail files what goes through smtp.gmail.com).  Return False
    to force the APPEND, or None to let the next plugin answer; with no answer
    the preset's ``files_sent_copy`` decides.  ``service_key`` is the mailbox's
    service preset key, or None for hand-entered servers.
    """


@hookspec(firstresult=True)
def mailroom_connection_limit(host: str) -> ConnectionLimit | None:
    """Return the provider's cap on concurrent connections to ``host``, or None.

    ``host`` is the lower-case IMAP (or POP3) server name a mailbox connects to.  Answer a
    :class:`connectors.connection_limits.ConnectionLimit` (``max_connections``, and
    ``per_account=True`` when the provider counts per mailbox, as Gmail's 15 and Microsoft
    365's 20 are) or None to let the next plugin answer; the first answer wins.  A service's own
    ``max_connections`` (set by the administrator) overrides it; with neither there is no cap.
    """


@hookspec
def mailroom_translation_directories() -> list[str]:
    """Return folders holding this plugin's catalogues (``<dir>/<lang>/LC_MESSAGES/messages.mo``).

    Every plugin's list is collected; the web adds them after Mailroom's own
    ``webapp/translations`` to ``BABEL_TRANSLATION_DIRECTORIES`` when the app is built, so the
    texts a plugin marks (hints, preset notes, with ``connectors.i18n.N_``) are shown in the
    reader's language.  A plugin's entry for a msgid Mailroom also has wins.  See
    docs/translations.md.
    """
