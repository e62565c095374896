"""A real local OAuth2 authorization server for the test suite (Authlib's server side).

A small Flask app served by werkzeug in a thread on 127.0.0.1 and a free port, with
in-memory storage:

* ``/authorize``: authorization code grant, PKCE (RFC 7636) required by default; a consent
  page with a user picker (``<select name="user">``) and *Allow* / *Deny* buttons that a
  headless Chromium test can click;
* ``/token``: ``authorization_code`` and ``refresh_token`` grants; every refresh issues a
  new refresh token and revokes the old one (rotation);
* ``/introspect`` (RFC 7662), ``/revoke`` (RFC 7009), ``/userinfo`` (``{"email": ...}``),
  ``/.well-known/oauth-authorization-server`` (RFC 8414 metadata).

Test controls: ``access_token_lifetime`` (seconds, changeable at any time),
``expire_access_tokens``, ``revoke_refresh_tokens``, ``revoke_access_tokens``,
``token_requests`` (a Counter of token-endpoint requests by grant type, counted as they
arrive, failed ones included), ``introspections`` and ``fail_token_endpoint`` (answer
503 or drop the connection, like a network error, for the next N requests).

The token endpoint handles one request at a time, so two refreshes racing with the same
refresh token give one success and one ``invalid_grant``, as a real rotating server would.
Mail servers (Dovecot, aiosmtpd) check tokens at ``introspection_url``, which carries the
resource-server client's credentials (``http://id:secret@host:port/introspect``).
"""

from __future__ import annotations

import collections
import html
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from authlib.common.security import generate_token
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, current_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError, grants
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

HOST = "127.0.0.1"
DEFAULT_USERS = ("alice@example.test", "bob@example.test")
#: The client an app under test uses (confidential: id + secret; PKCE still required).
CLIENT_ID, CLIENT_SECRET = "mailroom-test-client", "mailroom-test-client-secret"
#: The resource-server client mail servers use for introspection.
INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET = "mail-servers", "mail-servers-secret"
DEFAULT_SCOPE = "mail offline_access"
FAIL_MODES = ("503", "close")


@dataclass
class Client:
    """A registered client; ``redirect_uris=None`` accepts any http(s) loopback redirect URI."""

    client_id: str
    client_secret: str | None
    redirect_uris: list[str] | None = None
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or DEFAULT_SCOPE

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        if self.redirect_uris is not None:
            return redirect_uri in self.redirect_uris
        parts = urlsplit(redirect_uri)
        return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost", "::1")

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client_secret is not None and client_secret == self.client_secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.client_secret is None:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    code_challenge: str | None
    code_challenge_method: str | None
    issued_at: float = field(default_factory=time.time)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return time.time() - self.issued_at > 600


@dataclass
class Token:
    """One token response: an access token and (maybe) its refresh token."""

    client_id: str
    user: str
    access_token: str
    refresh_token: str | None
    scope: str
    expires_in: int
    issued_at: float = field(default_factory=time.time)
    access_revoked: bool = False
    refresh_revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def get_expires_at(self) -> float:
        return self.issued_at + self.expires_in

    def is_expired(self) -> bool:
        return time.time() >= self.get_expires_at()

    def is_revoked(self) -> bool:
        return self.access_revoked

    def get_user(self) -> str:
        return self.user

    def get_client(self) -> Any:
        return self.client_id


class _RequiredCodeChallenge(CodeChallenge):
    """PKCE for every client, not only public ones: an authorization request without
    ``code_challenge`` is refused (``require_pkce=True``), and only S256 is offered."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def __init__(self, server: OAuthServer) -> None:
        super().__init__(required=True)
        self.owner = server

    def validate_code_challenge(self, grant, redirect_uri):
        if self.owner.require_pkce and not grant.request.payload.data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge' (PKCE is required)")
        return super().validate_code_challenge(grant, redirect_uri)


class _QuietHandler(WSGIRequestHandler):
    """No request log lines: authorization codes and tokens must not reach test output."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log_error(self, *args: Any) -> None:
        pass


class OAuthServer:
    """The authorization server; ``start()`` binds a free port, ``stop()`` shuts it down.

    ``users`` are the e-mail addresses offered on the consent page (the token's identity).
    ``access_token_lifetime`` is in seconds.  ``require_pkce=False`` lets confidential
    clients skip PKCE (public clients always need it).
    """

    def __init__(
        self,
        users: Iterable[str] = DEFAULT_USERS,
        *,
        access_token_lifetime: int = 3600,
        require_pkce: bool = True,
        host: str = HOST,
    ) -> None:
        self.users = list(users)
        self.access_token_lifetime = access_token_lifetime
        self.require_pkce = require_pkce
        self.host = host
        self._initial = (tuple(self.users), access_token_lifetime, require_pkce)
        self.port: int | None = None
        #: Token-endpoint requests by ``grant_type`` as they arrived (failed and refused ones too).
        self.token_requests: collections.Counter[str] = collections.Counter()
        #: Introspection requests answered (Dovecot / SMTP logins checked).
        self.introspections = 0
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, AuthCode] = {}
        self.tokens: list[Token] = []
        self._lock = threading.RLock()
        self._token_lock = threading.Lock()
        self._fail_mode: str | None = None
        self._fail_remaining: int | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.add_client(CLIENT_ID, CLIENT_SECRET)
        self.add_client(INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET, grant_types=())
        self.app = self._build_app()

    # -- URLs -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self.port, "OAuthServer not started"
        return f"http://{self.host}:{self.port}"

    @property
    def authorization_url(self) -> str:
        return self.base_url + "/authorize"

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    @property
    def revocation_url(self) -> str:
        return self.base_url + "/revoke"

    @property
    def userinfo_url(self) -> str:
        return self.base_url + "/userinfo"

    @property
    def introspection_url(self) -> str:
        """With the mail servers' client credentials in it (HTTP Basic), as Dovecot takes it."""
        return f"http://{INTROSPECTION_CLIENT_ID}:{INTROSPECTION_CLIENT_SECRET}@{self.host}:{self.port}/introspect"

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> OAuthServer:
        if self._server is not None:
            return self
        self._server = make_server(self.host, 0, self.app, threaded=True, request_handler=_QuietHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="oauth-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OAuthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls ----------------------------------------------------------------

    def add_client(
        self,
        client_id: str,
        client_secret: str | None,
        redirect_uris: list[str] | None = None,
        grant_types: tuple[str, ...] = ("authorization_code", "refresh_token"),
    ) -> Client:
        """Register a client; ``client_secret=None`` makes a public client (auth method ``none``)."""
        client = Client(client_id, client_secret, redirect_uris, tuple(grant_types))
        with self._lock:
            self.clients[client_id] = client
        return client

    def fail_token_endpoint(self, mode: str | None = "503", times: int | None = None) -> None:
        """Make the next ``times`` token requests (all, if None) fail: ``"503"`` answers
        503 Service Unavailable, ``"close"`` drops the connection without an answer.
        ``mode=None`` turns failing off."""
        if mode is not None and mode not in FAIL_MODES:
            raise ValueError(f"mode must be one of {FAIL_MODES} or None")
        with self._lock:
            self._fail_mode, self._fail_remaining = mode, times

    def reset(self) -> None:
        """Back to a fresh server between tests: no codes or tokens, no extra clients, default
        lifetime, users and PKCE rule, failing off, counters zero (the port stays)."""
        with self._lock:
            self.codes.clear()
            self.tokens.clear()
            for client_id in list(self.clients):
                if client_id not in (CLIENT_ID, INTROSPECTION_CLIENT_ID):
                    del self.clients[client_id]
            self.users = list(self._initial[0])
            self.access_token_lifetime, self.require_pkce = self._initial[1:]
            self._fail_mode = self._fail_remaining = None
        self.reset_counters()

    def reset_counters(self) -> None:
        with self._lock:
            self.token_requests.clear()
            self.introspections = 0

    def tokens_for(self, user: str) -> list[Token]:
        with self._lock:
            return [t for t in self.tokens if t.user == user]

    def revoke_refresh_tokens(self, user: str) -> int:
        """Revoke every refresh token of ``user`` (as if the user removed the app); how many."""
        with self._lock:
            hit = [t for t in self.tokens if t.user == user and t.refresh_token and not t.refresh_revoked]
            for t in hit:
                t.refresh_revoked = True
            return len(hit)

    def revoke_access_tokens(self, user: str) -> int:
        with self._lock:
            hit = [t for t in self.tokens if t.user == user and not t.access_revoked]
            for t in hit:
                t.access_revoked = True
            return len(hit)

    def expire_access_tokens(self, user: str) -> int:
        """Make every access token of ``user`` expired now (their refresh tokens stay valid)."""
        with self._lock:
            hit = [t for t in self.tokens if t.user == user]
            for t in hit:
                t.issued_at = time.time() - t.expires_in - 1
            return len(hit)

    def issue_token(self, user: str, client_id: str = CLIENT_ID, scope: str = DEFAULT_SCOPE) -> dict:
        """A token response for ``user`` without the browser dance (protocol tests)."""
        client = self.clients[client_id]
        token = self._generator(
            grant_type="authorization_code", client=client, user=user, scope=scope, include_refresh_token=True
        )
        self._save_token(token, client, user)
        return token

    def consent(self, authorize_url: str, user: str, allow: bool = True) -> str:
        """Click through the consent page over HTTP (no browser): POST the picker form for
        ``authorize_url`` (as built by the app under test) and return the redirect
        ``Location`` (the app's callback URL with ``code`` and ``state``, or ``error``).
        Raises ``AssertionError`` with the page's text if the server answers without a redirect."""
        data = urllib.parse.urlencode({"user": user, "action": "allow" if allow else "deny"}).encode()
        req = urllib.request.Request(authorize_url, data=data, method="POST")
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(req, timeout=10) as resp:
                body = resp.read().decode("utf-8", "replace")
                raise AssertionError(f"no redirect from the consent page ({resp.status}): {body}")
        except urllib.error.HTTPError as exc:
            if exc.code in (301, 302, 303, 307) and exc.headers.get("Location"):
                return exc.headers["Location"]
            raise AssertionError(
                f"consent failed ({exc.code}): {exc.read().decode('utf-8', 'replace')}"
            ) from None

    # -- storage callbacks ------------------------------------------------------------

    def _query_client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    def _save_token(self, token: dict, client: Client, user: str) -> None:
        with self._lock:
            self.tokens.append(
                Token(
                    client_id=client.client_id,
                    user=user,
                    access_token=token["access_token"],
                    refresh_token=token.get("refresh_token"),
                    scope=token.get("scope", ""),
                    expires_in=int(token.get("expires_in", 0)),
                )
            )

    def _find_token(self, value: str, hint: str | None = None) -> Token | None:
        with self._lock:
            for t in self.tokens:
                if hint != "refresh_token" and t.access_token == value:
                    return t
                if hint != "access_token" and t.refresh_token == value:
                    return t
        return None

    # -- the Flask app ----------------------------------------------------------------

    def _build_app(self) -> Flask:  # noqa: C901 - one place for the routes and grant classes
        owner = self
        app = Flask(__name__)
        server = AuthorizationServer(
            app,
            query_client=self._query_client,
            save_token=lambda t, r: self._save_token(t, r.client, r.user),
        )
        self._generator = BearerTokenGenerator(
            access_token_generator=lambda **kw: generate_token(42),
            refresh_token_generator=lambda **kw: generate_token(48),
            expires_generator=lambda client, grant_type: owner.access_token_lifetime,
        )
        server.register_token_generator("default", self._generator)

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

            def save_authorization_code(self, code, req):
                with owner._lock:
                    owner.codes[code] = AuthCode(
                        code=code,
                        client_id=req.client.client_id,
                        redirect_uri=req.payload.redirect_uri or "",
                        scope=req.scope,
                        user=req.user,
                        code_challenge=req.payload.data.get("code_challenge"),
                        code_challenge_method=req.payload.data.get("code_challenge_method"),
                    )

            def query_authorization_code(self, code, client):
                item = owner.codes.get(code)
                if item and item.client_id == client.client_id and not item.is_expired():
                    return item
                return None

            def delete_authorization_code(self, authorization_code):
                with owner._lock:
                    owner.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        class RotatingRefreshGrant(grants.RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
            INCLUDE_NEW_REFRESH_TOKEN = True

            def authenticate_refresh_token(self, refresh_token):
                token = owner._find_token(refresh_token, "refresh_token")
                if token and not token.refresh_revoked:
                    return token
                return None

            def authenticate_user(self, refresh_token):
                return refresh_token.user

            def revoke_old_credential(self, refresh_token):
                with owner._lock:
                    refresh_token.refresh_revoked = True

        class Introspection(IntrospectionEndpoint):
            CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def query_token(self, token_string, token_type_hint):
                return owner._find_token(token_string, token_type_hint)

            def check_permission(self, token, client, req):
                return True  # any registered client may ask (the mail servers' one does)

            def create_introspection_payload(self, token):
                with owner._lock:
                    owner.introspections += 1
                if token is not None and token.refresh_token == request.form.get("token"):
                    # A refresh token is introspected on its own revocation flag, not the access token's.
                    if token.refresh_revoked:
                        return {"active": False}
                    return self.introspect_token(token) | {"active": True, "token_type": "refresh_token"}
                return super().create_introspection_payload(token)

            def introspect_token(self, token):
                return {
                    "active": True,
                    "client_id": token.client_id,
                    "token_type": "Bearer",
                    "username": token.user,
                    "email": token.user,
                    "sub": token.user,
                    "scope": token.scope,
                    "iat": int(token.issued_at),
                    "exp": int(token.get_expires_at()),
                    "iss": owner.base_url,
                }

        class Revocation(RevocationEndpoint):
            CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

            def query_token(self, token_string, token_type_hint):
                return owner._find_token(token_string, token_type_hint)

            def revoke_token(self, token, req):
                with owner._lock:
                    token.access_revoked = True
                    if req.form.get("token_type_hint") != "access_token":
                        token.refresh_revoked = True

        class Validator(BearerTokenValidator):
            def authenticate_token(self, token_string):
                return owner._find_token(token_string, "access_token")

        server.register_grant(CodeGrant, [_RequiredCodeChallenge(self)])
        server.register_grant(RotatingRefreshGrant)
        server.register_endpoint(Introspection)
        server.register_endpoint(Revocation)
        protector = ResourceProtector()
        protector.register_token_validator(Validator())

        @app.route("/authorize", methods=["GET", "POST"])
        def authorize() -> Response:
            try:
                grant = server.get_consent_grant(end_user=None)
            except OAuth2Error as error:
                if getattr(
                    error, "redirect_uri", None
                ):  # the client is known: tell it, as RFC 6749 4.1.2.1 says
                    return server.handle_error_response(request, error)
                return Response(
                    f"<h1>Authorization error</h1><p id='error'>{html.escape(error.error or '')}: "
                    f"{html.escape(error.description or '')}</p>",
                    status=400,
                )
            if request.method == "GET":
                return Response(owner._consent_page(grant.client.client_id, request.full_path))
            user = request.form.get("user")
            if request.form.get("action") != "allow":
                return server.create_authorization_response(grant_user=None, grant=grant)
            if user not in owner.users:
                return Response("<p id='error'>Unknown user</p>", status=400)
            return server.create_authorization_response(grant_user=user, grant=grant)

        @app.post("/token")
        def token() -> Response:
            with owner._lock:
                owner.token_requests[request.form.get("grant_type", "")] += 1
                failing = owner._fail_mode
                if failing and owner._fail_remaining is not None:
                    owner._fail_remaining -= 1
                    if owner._fail_remaining <= 0:
                        owner._fail_mode = owner._fail_remaining = None
            if failing == "close":
                _drop_connection()
                return Response("", status=500)
            if failing == "503":
                return Response("Service Unavailable", status=503, content_type="text/plain")
            with owner._token_lock:
                return server.create_token_response()

        @app.post("/introspect")
        def introspect() -> Response:
            return server.create_endpoint_response(Introspection.ENDPOINT_NAME)

        @app.post("/revoke")
        def revoke() -> Response:
            return server.create_endpoint_response(Revocation.ENDPOINT_NAME)

        @app.route("/userinfo", methods=["GET", "POST"])
        @protector()
        def userinfo() -> Response:
            return jsonify(email=current_token.user, sub=current_token.user, email_verified=True)

        @app.get("/.well-known/oauth-authorization-server")
        def metadata() -> Response:
            return jsonify(
                issuer=owner.base_url,
                authorization_endpoint=owner.authorization_url,
                token_endpoint=owner.token_url,
                introspection_endpoint=owner.base_url + "/introspect",
                revocation_endpoint=owner.revocation_url,
                userinfo_endpoint=owner.userinfo_url,
                response_types_supported=["code"],
                grant_types_supported=["authorization_code", "refresh_token"],
                code_challenge_methods_supported=["S256"],
                token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post", "none"],
            )

        return app

    def _consent_page(self, client_id: str, action: str) -> str:
        options = "".join(f'<option value="{html.escape(u)}">{html.escape(u)}</option>' for u in self.users)
        return f"""<!doctype html>
<html><head><title>Test OAuth2 consent</title></head><body>
<h1>Sign in to the test provider</h1>
<p>The application <strong id="client">{html.escape(client_id)}</strong> wants to read and send your mail.</p>
<form method="post" action="{html.escape(action)}">
  <label for="user">Account</label>
  <select id="user" name="user">{options}</select>
  <button type="submit" name="action" value="allow" id="allow">Allow</button>
  <button type="submit" name="action" value="deny" id="deny">Deny</button>
</form></body></html>"""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _drop_connection() -> None:
    """Close the client's TCP connection with no HTTP answer (a network error to the client)."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
