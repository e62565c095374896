"""Discovery by the domain's autoconfig XML (Thunderbird's ``config-v1.1.xml``).

Both URLs are fetched in parallel, but the ISP's own host wins when it
answers: ``https://autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=<addr>``
first, then ``https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml``.
Fetches are HTTPS only with a verified certificate, go through the address
guard, follow redirects only to ``https://``, and read at most
``context.max_response_bytes``; a document that is not well-formed, too
large, or names no usable server is ignored.
"""

from __future__ import annotations

import time

from connectors.discovery import (
    DiscoveryContext,
    DiscoveryError,
    autoconfig_urls,
    fetch_https,
    first_in_order,
    parse_autoconfig,
)
from connectors.i18n import N_
from connectors.plugins import hookimpl
from connectors.presets import DiscoveredSettings

DISCOVERY_SOURCE = "autoconfig"
#: Its note when no file came in time (stored in English, translated when shown).
NO_FILE = N_("no usable autoconfig file within {seconds} s")


@hookimpl
def mailroom_discover_settings(
    email: str, domain: str, timeout: float, context: DiscoveryContext
) -> DiscoveredSettings | None:
    deadline = time.monotonic() + timeout

    def attempt(url: str):
        def run() -> DiscoveredSettings:
            fetched = fetch_https(context, url, deadline)
            document = parse_autoconfig(fetched.body, email, limit=context.max_response_bytes)
            extra = {"url": fetched.url} if fetched.url == url else {"url": fetched.url, "requested_url": url}
            return document.to_settings(source="autoconfig", extra=extra)

        return run

    def on_error(exc: BaseException) -> None:
        context.note(str(exc) if isinstance(exc, DiscoveryError) else f"{type(exc).__name__}: {exc}")

    answer = first_in_order([attempt(url) for url in autoconfig_urls(email, domain)], deadline, on_error)
    if answer is None and time.monotonic() >= deadline:
        context.note(NO_FILE.format(seconds=f"{timeout:g}"))
    return answer
