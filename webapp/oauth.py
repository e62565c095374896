"""Connecting a mailbox with OAuth2: the authorization-code flow with PKCE, done with Authlib.

``start`` builds the provider's consent URL (PKCE S256, a random ``state``)
and keeps what the callback needs in Redis for ten minutes, encrypted, under
a hash of the state: who started it, for which service (and mailbox, when
signing in again), the PKCE verifier, and whether a page or an API client
started it.  A page-started flow also records the state in the person's
session, so only the browser that started it can finish it; every flow can
only be finished by the console user who started it, once.

``finish`` checks the state, swaps the code for tokens at the provider's token
endpoint (a request to the provider, not to a mail server, with a short
timeout), reads the address from the id_token or the userinfo endpoint, and
creates or updates the mailbox with ``auth_method="oauth2"`` and the tokens
encrypted.  The caller then enqueues a connection test.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from flask import session
from flask_babel import gettext as _
from sqlalchemy import func

from connectors.i18n import N_

from . import account_states, email_log
from .accounts import _set_main
from .errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from .extensions import db
from .models import Account, LogLevel, LogSource, Notification, Service, User, utcnow
from .oauth_apps import endpoints, oauth_preset, usable_app
from .oauth_tokens import NOTIFICATION_KIND, REQUEST_TIMEOUT, oauth_client, store_tokens
from .queue import get_redis
from .secretbox import box
from .service_catalog import sync_builtin_services
from .validation import email as valid_email
from .validation import is_id

PENDING_KEY = "mailroom:oauth:pending:{}"
PENDING_TTL = 600
SESSION_KEY = "oauth_states"
#: Where an address is still missing after the token exchange (neither id_token nor userinfo gave one).
ASK_EMAIL_KEY = "mailroom:oauth:ask-email:{}"

#: The email log's lines of an OAuth2 sign-in (stored in English, translated when shown).
SIGNED_IN_LINE = N_('Mailbox {email} connected with OAuth2 through the service "{service}".')
SIGNED_IN_AGAIN_LINE = N_('Mailbox {email} signed in again with OAuth2 through the service "{service}".')


class FlowError(DomainError):
    """The sign-in cannot be finished; the message says why in plain words."""

    status = 400


@dataclass
class Finished:
    account: Account | None
    created: bool
    #: Set when the address must be asked: the key of the waiting tokens.
    ask_email: str | None = None


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _redis():
    return get_redis()


def start(
    user: User, service_id, *, redirect_uri: str, account: Account | None = None, via: str = "page"
) -> str:
    """The provider's authorization URL for ``user`` to connect (or re-connect) a mailbox.

    ``redirect_uri`` is the console's callback URL, which the web layer builds
    (:func:`webapp.mailboxes.oauth_routes.callback_url`); :func:`finish` is given the same one.
    """

    sync_builtin_services()
    service = db.session.get(Service, service_id) if is_id(service_id) else None
    if service is None:
        raise Invalid({"service_id": _("No such mail service.")})
    if service.hidden and (account is None or account.service_id != service.id):
        raise Forbidden(
            _("This mail service is not offered for new mailboxes."), {"service_id": "hidden service"}
        )
    app = usable_app(service)
    if app is None:
        raise Invalid({"service_id": _("OAuth2 sign-in is not set up for this service; ask an administrator.")})
    ep = endpoints(service, app)
    verifier = generate_token(64)
    state = generate_token(40)
    extra: dict = {}
    preset = oauth_preset(service)
    if preset is not None and preset.key == "gmail":
        extra.update(access_type="offline", prompt="consent")  # Google sends a refresh token only then
    if account is not None:
        extra["login_hint"] = account.email

    with oauth_client(service, app, redirect_uri=redirect_uri, code_challenge_method="S256") as client:
        url, state = client.create_authorization_url(
            ep.authorize_url, state=state, code_verifier=verifier, **extra
        )
    pending = {
        "user_id": user.id,
        "service_id": service.id,
        "account_id": account.id if account is not None else None,
        "verifier": verifier,
        "via": via,
    }
    _redis().set(PENDING_KEY.format(_digest(state)), box().encrypt(json.dumps(pending)), ex=PENDING_TTL)
    if via == "page":
        session[SESSION_KEY] = [*session.get(SESSION_KEY, [])[-4:], _digest(state)]
    return url


def _take_pending(user: User, state: str | None) -> dict:
    mismatch = FlowError(
        "The answer from the provider does not match a sign-in started by you in this browser "
        "(state mismatch or expired). Nothing was changed; start the sign-in again."
    )
    if not state or len(state) > 512:
        raise mismatch
    digest = _digest(state)
    blob = _redis().getdel(PENDING_KEY.format(digest))  # single use, whatever happens next
    if blob is None:
        raise mismatch
    pending = json.loads(box().decrypt(blob.decode()))
    if pending["user_id"] != user.id:
        raise mismatch
    if pending["via"] == "page":
        states = session.get(SESSION_KEY, [])
        if digest not in states:
            raise mismatch
        session[SESSION_KEY] = [s for s in states if s != digest]
    return pending


def _claims(id_token: str | None) -> dict:
    """The id_token's claims.  It came straight from the token endpoint over TLS (OIDC Core 3.1.3.7),
    and only the address is read from it, so its signature is not what vouches for it."""
    if not id_token or id_token.count(".") != 2:
        return {}
    payload = id_token.split(".")[1]
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _address_from(claims: dict) -> str | None:
    if claims.get("email") and claims.get("email_verified") is not False:
        return claims["email"]
    for key in ("preferred_username", "upn"):  # Microsoft's id_token names the sign-in address here
        if isinstance(claims.get(key), str) and "@" in claims[key]:
            return claims[key]
    return None


def _email(service: Service, app, token: dict) -> str | None:
    address = _address_from(_claims(token.get("id_token")))
    userinfo = endpoints(service, app).userinfo_url
    if not address and userinfo:
        try:
            resp = requests.get(
                userinfo,
                headers={"Authorization": f"Bearer {token['access_token']}"},
                timeout=REQUEST_TIMEOUT,
            )
            if resp.ok:
                address = _address_from(resp.json())
        except (requests.RequestException, ValueError):
            address = None
    if not address:
        return None
    try:
        return valid_email(address.strip())
    except ValueError:
        return None


def finish(user: User, args: dict, redirect_uri: str) -> Finished:
    """Handle the provider's redirect back (``args`` = its query string)."""
    pending = _take_pending(user, args.get("state"))
    if args.get("error"):
        what = (
            "You declined access" if args["error"] == "access_denied" else "The provider refused the sign-in"
        )
        detail = args.get("error_description") or args["error"]
        raise FlowError(f"{what} ({detail[:200]}). Nothing was changed.")
    code = args.get("code")
    if not code:
        raise FlowError("The provider sent no authorization code. Start the sign-in again.")
    service = db.session.get(Service, pending["service_id"])
    app = usable_app(service)
    if app is None:
        raise FlowError("OAuth2 sign-in is no longer set up for this service; ask an administrator.")

    try:
        with oauth_client(service, app, redirect_uri=redirect_uri) as client:
            token = client.fetch_token(
                endpoints(service, app).token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=pending["verifier"],
                timeout=REQUEST_TIMEOUT,
            )
    except OAuthError as exc:
        raise FlowError(
            f"The provider did not accept the sign-in ({exc.error}: {(exc.description or '')[:200]})."
        ) from None
    except (requests.RequestException, ValueError):
        raise FlowError(
            "The provider's token endpoint could not be reached; try again in a moment."
        ) from None
    if not token.get("access_token"):
        raise FlowError("The provider sent no access token.")
    address = _email(service, app, token)
    if address is None:
        key = generate_token(32)
        blob = json.dumps({**pending, "token": dict(token)})
        _redis().set(ASK_EMAIL_KEY.format(key), box().encrypt(blob), ex=PENDING_TTL)
        session["oauth_ask_email"] = key
        return Finished(None, False, ask_email=key)
    return _save(user, service, pending.get("account_id"), address, token)


def finish_with_email(user: User, key: str | None, address: str) -> Finished:
    """The second step when the provider did not say which address signed in."""
    if not key or session.get("oauth_ask_email") != key:
        raise FlowError("This sign-in is not waiting for an address any more; start it again.")
    blob = _redis().get(ASK_EMAIL_KEY.format(key))
    if blob is None:
        raise FlowError("This sign-in expired; start it again.")
    data = json.loads(box().decrypt(blob.decode()))
    if data["user_id"] != user.id:
        raise FlowError("This sign-in is not yours.")
    try:
        address = valid_email((address or "").strip())
    except ValueError as exc:
        raise Invalid({"email": str(exc)}) from None
    service = db.session.get(Service, data["service_id"])
    if service is None:
        raise FlowError("The mail service was removed meanwhile.")
    result = _save(user, service, data.get("account_id"), address, data["token"])
    _redis().delete(ASK_EMAIL_KEY.format(key))
    session.pop("oauth_ask_email", None)
    return result


def _account_signed_in(user: User, service: Service, account_id: int | None, address: str) -> Account | None:
    """The mailbox this sign-in is for: the one being signed in again (it must be the same
    address), or the user's mailbox of this service with this login; None: a new mailbox."""

    if account_id is None:
        return Account.query.filter(
            Account.user_id == user.id,
            Account.service_id == service.id,
            func.lower(Account.username) == address.lower(),
        ).first()
    account = db.session.get(Account, account_id)
    if account is None or account.user_id != user.id:
        raise NotFound(_("The mailbox no longer exists."))
    if account.email.lower() != address.lower() and account.username.lower() != address.lower():
        raise Conflict(
            _("You signed in as %(address)s, but this mailbox is %(email)s. Sign in with that account, or connect the other one as a new mailbox.", address=address, email=account.email),
            {"email": "a different account signed in"},
        )
    return account


def _save(user: User, service: Service, account_id: int | None, address: str, token: dict) -> Finished:
    account = _account_signed_in(user, service, account_id, address)
    created = account is None
    if created:
        account = Account(
            user_id=user.id, username=address, email=address, description=address, is_main=False, manual=False
        )
        account.service = service
        account.service_name = service.name
        db.session.add(account)
    elif account.service_id != service.id:
        account.service, account.service_name = service, service.name
    account.auth_method = "oauth2"
    account.password_encrypted = None
    account.smtp_password_encrypted = None
    store_tokens(account, token)
    account_states.signed_in(account, created)
    db.session.flush()
    for note in Notification.query.filter_by(account_id=account.id, kind=NOTIFICATION_KIND, read_at=None):
        note.read_at = utcnow()
    if created and Account.query.filter_by(user_id=user.id).count() == 1:
        _set_main(user, account)
    email_log.record(
        LogSource.EMAIL_LOGGER,
        LogLevel.INFO,
        (SIGNED_IN_LINE if created else SIGNED_IN_AGAIN_LINE).format(email=account.email, service=service.name),
        account=account,
    )
    db.session.commit()
    return Finished(account, created)
