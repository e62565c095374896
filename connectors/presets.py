"""What Mailroom knows about a mail service before anyone types a server name.

A :class:`ServicePreset` is one provider's servers, ports, TLS modes, sign-in
methods and traps; built-in presets live in ``plugins/`` and third-party
plugins add more through the ``mailroom_service_presets`` hook.  A
:class:`DiscoveredSettings` is the answer to "which servers serve this
address?", returned by the ``mailroom_discover_settings`` hook.

All of these are frozen, so a preset handed to one request cannot be changed
under another.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

from connectors.settings import Protocol, Security, ServerSettings

#: The roles a folder can play; ``mailroom_folder_role_hints`` answers use these.
FOLDER_ROLES: tuple[str, ...] = ("inbox", "drafts", "sent", "spam", "trash", "archive")

#: Sign-in methods a preset may list in ``auth_methods`` (first is recommended).
AUTH_METHODS: tuple[str, ...] = ("password", "oauth2")

_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def _lower_tuple(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):  # a lone "gmail.com" would otherwise become letters
        values = (values,)
    return tuple(v.strip().lower().rstrip(".") for v in values)


@dataclass(frozen=True)
class Endpoint:
    """One server: host, port and the TLS mode that port speaks."""

    host: str
    port: int
    security: Security

    def __post_init__(self) -> None:
        # Plugins may write security="tls"; store the enum so comparisons work.
        _set(self, "security", Security.parse(self.security))
        _set(self, "host", self.host.strip().lower())
        if not self.host:
            raise ValueError("An endpoint needs a host.")
        if not 1 <= int(self.port) <= 65535:
            raise ValueError(f"Port {self.port} is not between 1 and 65535.")
        _set(self, "port", int(self.port))

    def as_dict(self) -> dict:
        return {"host": self.host, "port": self.port, "security": self.security.value}

    def server_settings(self, protocol: Protocol | str, **extra: object) -> ServerSettings:
        """The :class:`ServerSettings` a protocol client needs for this endpoint."""
        return ServerSettings(
            protocol=Protocol(protocol), host=self.host, port=self.port, security=self.security, **extra
        )


@dataclass(frozen=True)
class OAuth2Endpoints:
    """Where to send a person to grant access, and where to swap codes for tokens.

    Microsoft URLs carry a ``{tenant}`` placeholder (``common``,
    ``organizations``, ``consumers`` or a tenant id); fill it with
    :meth:`for_tenant`.
    """

    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    userinfo_url: str | None = None

    def __post_init__(self) -> None:
        scopes = (self.scopes,) if isinstance(self.scopes, str) else self.scopes
        _set(self, "scopes", tuple(scopes))

    def for_tenant(self, tenant: str) -> OAuth2Endpoints:
        return OAuth2Endpoints(
            authorize_url=self.authorize_url.replace("{tenant}", tenant),
            token_url=self.token_url.replace("{tenant}", tenant),
            scopes=self.scopes,
            userinfo_url=self.userinfo_url,
        )

    def as_dict(self) -> dict:
        return {
            "authorize_url": self.authorize_url,
            "token_url": self.token_url,
            "scopes": list(self.scopes),
            "userinfo_url": self.userinfo_url,
        }


@dataclass(frozen=True)
class ServicePreset:
    """One mail service as a person picks it from a list ("Gmail", "Aruba PEC").

    ``key`` is a stable slug stored with accounts, so it must never change once
    released; a plugin that returns a preset with an existing key replaces
    that preset (see ``docs/plugins.md``).  ``files_sent_copy`` is True where
    the server files the Sent copy itself (Gmail), so Mailroom must not append
    a second one.  ``username_is_email`` is False where the sign-in name is an
    account id rather than the address (Legalmail).  ``domains`` are address
    domains served by the preset; ``*.example.com`` stands for any subdomain.
    ``auth_methods`` lists ``password`` and/or ``oauth2``, recommended first.
    """

    key: str
    name: str
    imap: Endpoint
    smtp: Endpoint
    pop3: Endpoint | None = None
    domains: tuple[str, ...] = ()
    mx_suffixes: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()
    auth_methods: tuple[str, ...] = ("password",)
    oauth2: OAuth2Endpoints | None = None
    help_url: str | None = None
    files_sent_copy: bool = False
    username_is_email: bool = True

    def __post_init__(self) -> None:
        if not _KEY.match(self.key or ""):
            raise ValueError(f"Preset key {self.key!r} must be a lower-case slug like 'gmail'.")
        _set(self, "domains", _lower_tuple(self.domains))
        _set(self, "mx_suffixes", _lower_tuple(self.mx_suffixes))
        _set(self, "hints", (self.hints,) if isinstance(self.hints, str) else tuple(self.hints))
        methods = (self.auth_methods,) if isinstance(self.auth_methods, str) else tuple(self.auth_methods)
        unknown = set(methods) - set(AUTH_METHODS)
        if not methods or unknown:
            raise ValueError(f"auth_methods must be taken from {AUTH_METHODS}, got {methods}.")
        if "oauth2" in methods and self.oauth2 is None:
            raise ValueError(f"Preset {self.key!r} offers oauth2 but gives no OAuth2 endpoints.")
        _set(self, "auth_methods", methods)

    def endpoint(self, protocol: Protocol | str) -> Endpoint | None:
        return {"imap": self.imap, "smtp": self.smtp, "pop3": self.pop3}[Protocol(protocol).value]

    def as_dict(self) -> dict:
        """A JSON-able dict: endpoints as dicts, security as its string, tuples as lists."""
        d: dict = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Endpoint | OAuth2Endpoints):
                value = value.as_dict()
            elif isinstance(value, tuple):
                value = list(value)
            d[f.name] = value
        return d


@dataclass(frozen=True, kw_only=True)
class DiscoveredSettings:
    """The servers found for an address, and how they were found.

    ``source`` says where the answer came from ("preset", "mx", "autoconfig",
    "srv", ...) so the form can show it and a person can judge it;
    ``username_hint`` is the sign-in name to prefill, or None when it cannot be
    derived from the address.
    """

    imap: Endpoint | None
    smtp: Endpoint | None
    pop3: Endpoint | None = None
    source: str
    username_hint: str | None = None
    service_key: str | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "imap": self.imap.as_dict() if self.imap else None,
            "smtp": self.smtp.as_dict() if self.smtp else None,
            "pop3": self.pop3.as_dict() if self.pop3 else None,
            "source": self.source,
            "username_hint": self.username_hint,
            "service_key": self.service_key,
            "extra": dict(self.extra),
        }


def email_domain(email: str) -> str:
    """The lower-case, IDNA-encoded domain of ``email`` ("" when there is none)."""
    domain = (email or "").rpartition("@")[2].strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii") if domain else ""
    except UnicodeError:
        return domain


def find_by_domain(presets: Iterable[ServicePreset], domain: str) -> ServicePreset | None:
    """The preset whose ``domains`` list ``domain`` (no network).

    An entry ``*.onmicrosoft.com`` matches any subdomain of onmicrosoft.com
    but not onmicrosoft.com itself; other entries must match exactly.
    """
    domain = domain.strip().rstrip(".").lower()
    for preset in presets:
        for pattern in preset.domains:
            if domain == pattern or (pattern.startswith("*.") and domain.endswith(pattern[1:])):
                return preset
    return None


def find_by_mx(presets: Iterable[ServicePreset], mx_host: str) -> ServicePreset | None:
    """The preset whose ``mx_suffixes`` match ``mx_host``; the longest suffix wins.

    Longest wins because providers nest: Aruba PEC's ``pec.aruba.it`` sits
    inside Aruba's ``aruba.it``.
    """
    host = mx_host.strip().rstrip(".").lower()
    best: tuple[int, ServicePreset] | None = None
    for preset in presets:
        for suffix in preset.mx_suffixes:
            if (host == suffix or host.endswith("." + suffix)) and (best is None or len(suffix) > best[0]):
                best = (len(suffix), preset)
    return best[1] if best else None
