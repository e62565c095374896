"""API routes for OAuth2: the administrator's OAuth2 apps per service, and starting a sign-in."""

from __future__ import annotations

from flask import g, jsonify
from flask_babel import gettext as _

from .. import accounts, oauth, oauth_apps
from ..errors import Invalid
from ..mailboxes.oauth_routes import callback_url
from ..validation import MAX_ID, is_id
from . import bp
from .common import _json, admin_only, token_required


@bp.get("/services/<int:service_id>/oauth-app")
@admin_only
def get_oauth_app(service_id: int):
    """The service's OAuth2 app (never the client secret) and the redirect URL to register."""
    service = oauth_apps.get_oauth_service(service_id)
    return jsonify(oauth_apps.oauth_app_as_dict(service, oauth_apps.app_for(service), callback_url()))


@bp.put("/services/<int:service_id>/oauth-app")
@admin_only
def put_oauth_app(service_id: int):
    """Create or replace it; an empty or missing client_secret keeps the stored one."""
    service = oauth_apps.get_oauth_service(service_id)
    cleaned = oauth_apps.clean_oauth_app(service, _json(), oauth_apps.app_for(service))
    app = oauth_apps.save_oauth_app(service, cleaned)
    return jsonify(oauth_apps.oauth_app_as_dict(service, app, callback_url()))


@bp.delete("/services/<int:service_id>/oauth-app")
@admin_only
def delete_oauth_app(service_id: int):
    oauth_apps.delete_oauth_app(oauth_apps.get_oauth_service(service_id))
    return "", 204


@bp.post("/accounts/oauth/start")
@token_required
def start_oauth():
    """``{"service_id"}`` (or ``{"account_id"}`` to sign in again) → ``{"authorization_url"}``.

    Open the URL in a browser signed in to the console as the same user: the provider
    sends it back to the same callback as the pages, which finishes the connection.
    """
    body = _json()
    unknown = set(body) - {"service_id", "account_id"}
    if unknown:
        raise Invalid({k: "unknown field" for k in unknown})
    account = None
    if body.get("account_id") is not None:
        if not is_id(body["account_id"]):
            raise Invalid({"account_id": _("must be an id (a whole number from 1 to %(MAX_ID)s)", MAX_ID=MAX_ID)})
        account = accounts.get_account(g.api_user, body["account_id"])
        if account.user_id != g.api_user.id:
            raise Invalid({"account_id": _("Only the mailbox's owner can sign in to it.")})
    service_id = body.get("service_id", account.service_id if account is not None else None)
    if service_id is None:
        raise Invalid({"service_id": _("This field is required.")})
    if not is_id(service_id):
        raise Invalid({"service_id": _("must be an id (a whole number from 1 to %(MAX_ID)s)", MAX_ID=MAX_ID)})
    url = oauth.start(g.api_user, service_id, redirect_uri=callback_url(), account=account, via="api")
    return jsonify({"authorization_url": url})
