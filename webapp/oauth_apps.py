"""OAuth2 applications: the client an administrator registered at a provider, per service.

Built-in providers (Gmail, Microsoft 365) bring their endpoints and default
scopes from their plugin; the administrator adds client id, client secret,
tenant (Microsoft) and, if wanted, other scopes.  A corporate service becomes a
"Custom OAuth2" service by giving it authorization and token URLs here, so any
standard provider works.  The client secret is encrypted like mailbox
passwords, never answered back, and an empty one on edit keeps the stored one.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask_babel import gettext as _

from connectors.i18n import N_
from connectors.presets import OAuth2Endpoints, ServicePreset

from . import email_log, validation
from .errors import Invalid, Malformed, NotFound
from .extensions import db
from .models import LogLevel, LogSource, OAuthApp, Service
from .secretbox import box
from .service_catalog import list_services, preset_for, sync_builtin_services
from .validation import SKIP, Rule, boolean, is_id

MICROSOFT_TENANTS = ("common", "organizations", "consumers")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.I)
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 scope-token characters
_HOST = re.compile(r"[a-z0-9.-]+")  # a host a CSP source expression can name as it is (not IPv6)
URL_FIELDS = ("authorization_url", "token_url", "userinfo_url", "revocation_url")
FIELDS = {"client_id", "client_secret", "tenant", "scopes", "enabled", *URL_FIELDS}

#: The email log's lines (stored in English, translated when shown: webapp.i18n).
LOG_LINES = {
    "set_up_enabled": N_('Set up the OAuth2 application of "{service}" (client id {client_id}, enabled).'),
    "set_up_disabled": N_('Set up the OAuth2 application of "{service}" (client id {client_id}, disabled).'),
    "changed_enabled": N_('Changed the OAuth2 application of "{service}" (client id {client_id}, enabled).'),
    "changed_disabled": N_('Changed the OAuth2 application of "{service}" (client id {client_id}, disabled).'),
    "removed": N_('Removed the OAuth2 application of "{service}".'),
}


def oauth_preset(service: Service | None) -> ServicePreset | None:
    """The plugin preset of a built-in service that offers OAuth2."""
    preset = preset_for(service)
    return preset if preset is not None and "oauth2" in preset.auth_methods and preset.oauth2 else None


def is_custom(service: Service) -> bool:
    """A corporate service can be given its own OAuth2 endpoints ("Custom OAuth2")."""
    return not service.is_builtin


def supports_oauth(service: Service) -> bool:
    return oauth_preset(service) is not None or is_custom(service)


def uses_tenant(service: Service) -> bool:
    preset = oauth_preset(service)
    return preset is not None and "{tenant}" in preset.oauth2.authorize_url


def app_for(service: Service) -> OAuthApp | None:
    return OAuthApp.query.filter_by(service_id=service.id).first()


def default_scopes(service: Service) -> tuple[str, ...]:
    preset = oauth_preset(service)
    return preset.oauth2.scopes if preset else ()


def endpoints(service: Service, app: OAuthApp) -> OAuth2Endpoints:
    """Where to send people and where to swap codes: the plugin's (tenant filled in) or the app's own."""
    scopes = tuple(app.scopes.split()) if app.scopes else default_scopes(service)
    preset = oauth_preset(service)
    if preset is not None:
        base = preset.oauth2.for_tenant(app.tenant or "common")
        return OAuth2Endpoints(
            base.authorize_url, base.token_url, scopes, app.userinfo_url or base.userinfo_url
        )
    return OAuth2Endpoints(app.authorization_url or "", app.token_url or "", scopes, app.userinfo_url)


def usable_app(service: Service | None) -> OAuthApp | None:
    """The service's OAuth2 app when people can sign in with it now (configured, enabled, endpoints)."""
    if service is None or not supports_oauth(service):
        return None
    app = app_for(service)
    if app is None or not app.enabled or not app.client_id:
        return None
    if oauth_preset(service) is None and not (app.authorization_url and app.token_url):
        return None
    return app


def authorization_origins() -> list[str]:
    """The origins (``https://host[:port]``) of the consent pages people can be sent to now.

    The connect page's Content-Security-Policy lists them in ``form-action``: its form's
    answer redirects there, and browsers check form-action on that redirect too.
    """
    origins = set()
    for service in oauth_services():
        app = usable_app(service)
        if app is None:
            continue
        url = urlsplit(endpoints(service, app).authorize_url)
        if url.scheme in ("https", "http") and url.hostname and _HOST.fullmatch(url.hostname):
            origins.add(f"{url.scheme}://{url.hostname}" + (f":{url.port}" if url.port else ""))
    return sorted(origins)


def oauth_services() -> list[Service]:
    """Services an administrator can set up OAuth2 for: OAuth2 presets and every corporate service."""
    return [s for s in list_services() if supports_oauth(s)]


def get_oauth_service(service_id: Any) -> Service:
    sync_builtin_services()
    service = db.session.get(Service, service_id) if is_id(service_id) else None
    if service is None:
        raise NotFound(_("No such mail service."))
    if not supports_oauth(service):
        raise NotFound(_("This mail service does not offer OAuth2 sign-in."))
    return service


def _url(value: Any, required: bool) -> str | None:
    if value in (None, ""):
        if required:
            raise ValueError(_("This field is required."))
        return None
    if not isinstance(value, str) or len(value) > 1024:
        raise ValueError(_("must be a URL of at most 1024 characters"))
    value = value.strip()
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValueError(_("is not a valid URL")) from None
    if not parts.hostname or parts.scheme not in ("https", "http"):
        raise ValueError(_("must be an https:// URL"))
    if parts.scheme == "http":
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(_("must be an https:// URL (plain http only for this machine)"))
    if parts.fragment:
        raise ValueError(_("must not contain a #fragment"))
    return value


def clean_oauth_app(service: Service, data: Any, existing: OAuthApp | None) -> dict:
    """Validate a PUT body (API shape); errors name their field. The rules are :data:`APP_FIELDS`."""
    if not isinstance(data, dict):
        raise Malformed(_("Send a JSON object."))
    known = FIELDS | {"service_id", "redirect_uri", "has_client_secret", "default_scopes"}
    errors: dict[str, str] = {key: "unknown field" for key in set(data) - known}
    out: dict[str, Any] = {}
    context = _Context(service=service, custom=oauth_preset(service) is None)
    # A PUT replaces the whole app: every field with ``on_create`` is checked, sent or not.
    validation.clean_fields(APP_FIELDS, data, context, True, out, errors)
    if errors:
        raise Invalid(errors)
    return out


@dataclass(frozen=True)
class _Context:
    service: Service
    custom: bool  # no plugin preset: the administrator gives the endpoints


def _client_id(value: Any, _context: _Context) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(_("This field is required."))
    value = value.strip()
    if len(value) > 512 or any(c.isspace() for c in value):
        raise ValueError(_("must be at most 512 characters, without spaces"))
    return value


def _client_secret(value: Any, _context: _Context) -> Any:
    if value in (None, ""):
        return SKIP  # an empty secret on edit keeps the stored one
    if not isinstance(value, str) or len(value) > 1024:
        raise ValueError(_("must be a string of at most 1024 characters"))
    return value


def _tenant(value: Any, context: _Context) -> Any:
    if not uses_tenant(context.service):
        if value not in (None, ""):
            raise ValueError(_("Only Microsoft services take a tenant."))
        return SKIP
    tenant = (value or "common") if isinstance(value, str | type(None)) else value
    if not isinstance(tenant, str):
        raise ValueError(_("must be a string"))
    tenant = tenant.strip()
    if tenant.lower() in MICROSOFT_TENANTS or _GUID.match(tenant) or _DOMAIN.match(tenant):
        return tenant.lower()
    raise ValueError(
        _("must be common, organizations, consumers, a tenant id "
        "(00000000-0000-0000-0000-000000000000) or a domain (contoso.onmicrosoft.com)")
    )


def _scopes(value: Any, context: _Context) -> str:
    if isinstance(value, list):
        value = " ".join(value) if all(isinstance(s, str) for s in value) else 0
    if not isinstance(value, str):
        raise ValueError(_("must be a space-separated string or a list of strings"))
    tokens = value.split()
    if len(value) > 2000:
        raise ValueError(_("must be at most 2000 characters"))
    if any(not _SCOPE.match(t) for t in tokens):
        raise ValueError(_("contains a character that is not allowed in a scope"))
    # The plugin's defaults are stored as "" so later plugin updates apply.
    return "" if tuple(tokens) == default_scopes(context.service) else " ".join(tokens)


def _endpoint_url(key: str):
    """The rule of one URL field: a built-in provider's come from its plugin (userinfo excepted)."""

    def clean(value: Any, context: _Context) -> str | None:
        if not context.custom and key != "userinfo_url" and value not in (None, ""):
            raise ValueError(_("comes from the provider's plugin and cannot be changed"))
        return _url(value, required=context.custom and key in ("authorization_url", "token_url"))

    return clean


#: Field -> its rule (webapp.validation.Rule), in the order errors are found. ``on_create`` marks
#: the fields a PUT always checks (absent ones as null; scopes as "").
APP_FIELDS: dict[str, Rule] = {
    "client_id": Rule(_client_id, on_create=True),
    "client_secret": Rule(_client_secret, on_create=True),
    "tenant": Rule(_tenant, on_create=True),
    "scopes": Rule(_scopes, on_create=True, default=""),
    **{key: Rule(_endpoint_url(key), on_create=True) for key in URL_FIELDS},
    "enabled": Rule(lambda value, _context: boolean(value)),
}


def save_oauth_app(service: Service, cleaned: dict) -> OAuthApp:
    app = app_for(service)
    creating = app is None
    if creating:
        app = OAuthApp(service_id=service.id)
        db.session.add(app)
    app.client_id = cleaned["client_id"]
    if cleaned.get("client_secret"):
        app.client_secret_encrypted = box().encrypt(cleaned["client_secret"])
    app.tenant = cleaned.get("tenant")
    app.scopes = cleaned.get("scopes", "")
    for key in URL_FIELDS:
        setattr(app, key, cleaned.get(key))
    if "enabled" in cleaned:
        app.enabled = cleaned["enabled"]
    elif creating:
        app.enabled = True
    email_log.record(
        LogSource.ADMIN,
        LogLevel.INFO,
        LOG_LINES[f"{'set_up' if creating else 'changed'}_{'enabled' if app.enabled else 'disabled'}"].format(
            service=service.name, client_id=app.client_id
        ),
    )
    db.session.commit()
    return app


def delete_oauth_app(service: Service) -> None:
    app = app_for(service)
    if app is None:
        raise NotFound(_("This service has no OAuth2 application."))
    db.session.delete(app)
    email_log.record(LogSource.ADMIN, LogLevel.INFO, LOG_LINES["removed"].format(service=service.name))
    db.session.commit()


def client_secret(app: OAuthApp) -> str | None:
    """The decrypted client secret, for the token requests only; never rendered or logged."""
    return box().decrypt(app.client_secret_encrypted) if app.client_secret_encrypted else None


def oauth_app_as_dict(service: Service, app: OAuthApp | None, redirect_uri: str) -> dict:
    """What the API and pages show: never the client secret, only whether one is stored."""
    return {
        "service_id": service.id,
        "service_name": service.name,
        "custom": oauth_preset(service) is None,
        "configured": app is not None,
        "usable": usable_app(service) is not None,
        "client_id": app.client_id if app else None,
        "has_client_secret": bool(app and app.client_secret_encrypted),
        "tenant": (app.tenant if app else None) if uses_tenant(service) else None,
        "uses_tenant": uses_tenant(service),
        "scopes": (app.scopes if app and app.scopes else " ".join(default_scopes(service))),
        "default_scopes": " ".join(default_scopes(service)),
        "authorization_url": endpoints(service, app).authorize_url if app else None,
        "token_url": endpoints(service, app).token_url if app else None,
        "userinfo_url": app.userinfo_url if app else None,
        "revocation_url": app.revocation_url if app else None,
        "enabled": app.enabled if app else False,
        "redirect_uri": redirect_uri,
    }
