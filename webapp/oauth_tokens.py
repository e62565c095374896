"""OAuth2 tokens of a mailbox: how a token answer is stored, and the client that asks for one.

The web's sign-in (:mod:`webapp.oauth`) exchanges a code with these; the jobs refresh an
expiring token with them (:mod:`webapp.jobs.oauth_refresh`).  Tokens are stored encrypted,
like passwords.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from authlib.integrations.requests_client import OAuth2Session

from .models import Account, OAuthApp, Service, utcnow
from .oauth_apps import client_secret, endpoints
from .secretbox import box

#: Seconds a token request may take (connect and read).
REQUEST_TIMEOUT = 10
NOTIFICATION_KIND = "needs_sign_in"


def expires_at_from(token: dict) -> datetime | None:
    """The token's expiry as naive UTC, from ``expires_at`` (epoch) or ``expires_in``."""
    if token.get("expires_at"):
        return datetime.fromtimestamp(int(token["expires_at"]), UTC).replace(tzinfo=None)
    if token.get("expires_in"):
        return utcnow() + timedelta(seconds=int(token["expires_in"]))
    return None


def store_tokens(account: Account, token: dict) -> None:
    """Encrypt and store a token response; a response without a refresh token keeps the old one."""
    account.oauth_access_token_encrypted = box().encrypt(token["access_token"])
    if token.get("refresh_token"):
        account.oauth_refresh_token_encrypted = box().encrypt(token["refresh_token"])
    account.oauth_expires_at = expires_at_from(token)
    if token.get("scope"):
        scope = token["scope"]
        account.oauth_scope = " ".join(scope) if isinstance(scope, list | tuple) else str(scope)


def oauth_client(service: Service, app: OAuthApp, **kwargs) -> OAuth2Session:
    """An Authlib client for the service's OAuth2 app (client secret decrypted here only)."""
    secret = client_secret(app)
    return OAuth2Session(
        client_id=app.client_id,
        client_secret=secret,
        scope=" ".join(endpoints(service, app).scopes) or None,
        token_endpoint_auth_method="client_secret_post" if secret else "none",
        **kwargs,
    )
