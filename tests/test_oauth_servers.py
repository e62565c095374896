"""The local OAuth2 authorization server the OAuth2 tests rely on (tests/servers/oauth_server.py).

Everything goes over real HTTP with the standard library: the code + PKCE flow through the
consent form, refresh-token rotation, revocation, introspection, userinfo and the failure switch.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.servers.oauth_server import (
    CLIENT_ID,
    CLIENT_SECRET,
    INTROSPECTION_CLIENT_ID,
    INTROSPECTION_CLIENT_SECRET,
    OAuthServer,
)

REDIRECT = "http://127.0.0.1:9/callback"


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def post(url: str, data: dict, auth: tuple[str, str] | None = (CLIENT_ID, CLIENT_SECRET)) -> tuple[int, dict]:
    """POST a form; (status, JSON body) also for 4xx answers."""
    req = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode(), method="POST")
    if auth:
        req.add_header("Authorization", _basic(*auth))
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body)
        except ValueError:
            return exc.code, {"text": body.decode("utf-8", "replace")}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_url(server: OAuthServer, challenge: str | None, state: str = "st-1") -> str:
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "state": state}
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return server.authorization_url + "?" + urllib.parse.urlencode(params)


def code_from(location: str) -> dict[str, str]:
    assert location.startswith(REDIRECT + "?"), location
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def full_flow(server: OAuthServer, user: str = "alice@example.test") -> dict:
    verifier, challenge = pkce()
    back = code_from(server.consent(authorize_url(server, challenge), user))
    status, token = post(
        server.token_url,
        {
            "grant_type": "authorization_code",
            "code": back["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    )
    assert status == 200, token
    return token


def introspect(server: OAuthServer, token: str) -> dict:
    status, body = post(
        server.base_url + "/introspect",
        {"token": token},
        (INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET),
    )
    assert status == 200, body
    return body


@pytest.fixture
def server():
    with OAuthServer() as s:
        yield s


def test_consent_page_lists_users_and_buttons(server):
    _, challenge = pkce()
    with urllib.request.urlopen(authorize_url(server, challenge), timeout=10) as resp:
        page = resp.read().decode()
    assert '<option value="alice@example.test">' in page and '<option value="bob@example.test">' in page
    assert 'id="allow"' in page and 'id="deny"' in page and CLIENT_ID in page


def test_code_flow_with_pkce_gives_tokens_for_the_chosen_user(server):
    verifier, challenge = pkce()
    back = code_from(server.consent(authorize_url(server, challenge, state="xyz"), "bob@example.test"))
    assert back["state"] == "xyz"
    # A wrong verifier is refused, and the code is still single-use afterwards for the right one.
    status, body = post(
        server.token_url,
        {
            "grant_type": "authorization_code",
            "code": back["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": "x" * 43,
        },
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    form = {
        "grant_type": "authorization_code",
        "code": back["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    status, token = post(server.token_url, form)
    assert status == 200, token
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    assert token["access_token"] and token["refresh_token"]
    assert introspect(server, token["access_token"])["email"] == "bob@example.test"
    status, body = post(server.token_url, form)
    assert (status, body["error"]) == (400, "invalid_grant")  # the code was used up
    assert server.token_requests["authorization_code"] == 3


def test_pkce_is_required(server):
    back = code_from(server.consent(authorize_url(server, None), "alice@example.test"))
    assert back["error"] == "invalid_request" and "code_challenge" in back["error_description"]
    assert back["state"] == "st-1"


def test_unknown_redirect_uri_is_not_followed(server):
    server.add_client("fixed-app", "s", ["http://127.0.0.1:9/only"])
    _, challenge = pkce()
    url = authorize_url(server, challenge).replace(CLIENT_ID, "fixed-app")
    with pytest.raises(AssertionError, match="consent failed \\(400\\).*invalid_request"):
        server.consent(url, "alice@example.test")


def test_deny_redirects_with_access_denied(server):
    _, challenge = pkce()
    back = code_from(server.consent(authorize_url(server, challenge), "alice@example.test", allow=False))
    assert back["error"] == "access_denied" and back["state"] == "st-1"


def test_public_client_needs_verifier():
    with OAuthServer() as server:
        server.add_client("public-app", None, [REDIRECT])
        verifier, challenge = pkce()
        url = authorize_url(server, challenge).replace(CLIENT_ID, "public-app")
        back = code_from(server.consent(url, "alice@example.test"))
        form = {
            "grant_type": "authorization_code",
            "code": back["code"],
            "redirect_uri": REDIRECT,
            "client_id": "public-app",
        }
        status, body = post(server.token_url, form, auth=None)
        assert (status, body["error"]) == (400, "invalid_request")
        status, token = post(server.token_url, form | {"code_verifier": verifier}, auth=None)
        assert status == 200 and token["access_token"]


def test_refresh_rotates_and_revokes_the_old_refresh_token(server):
    first = full_flow(server)
    status, second = post(
        server.token_url, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert status == 200, second
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    status, body = post(
        server.token_url, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    assert introspect(server, first["refresh_token"]) == {"active": False}
    assert introspect(server, second["refresh_token"])["active"] is True
    assert server.token_requests == {"authorization_code": 1, "refresh_token": 2}


def test_two_refreshes_racing_with_one_token_get_one_success(server):
    token = full_flow(server)
    results: list[int] = []
    barrier = threading.Barrier(2)

    def refresh() -> None:
        barrier.wait()
        results.append(
            post(server.token_url, {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]})[
                0
            ]
        )

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 400]
    assert server.token_requests["refresh_token"] == 2


def test_revoke_refresh_tokens_control_and_rfc7009(server):
    token = full_flow(server)
    assert server.revoke_refresh_tokens("alice@example.test") == 1
    status, body = post(
        server.token_url, {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    assert introspect(server, token["access_token"])["active"] is True  # the access token lives on
    # RFC 7009 revocation of the access token by its client.
    other = full_flow(server, "bob@example.test")
    status, _ = post(
        server.revocation_url, {"token": other["access_token"], "token_type_hint": "access_token"}
    )
    assert status == 200
    assert introspect(server, other["access_token"]) == {"active": False}


def test_introspection_needs_client_credentials_and_reports_expiry(server):
    token = full_flow(server)
    status, body = post(server.base_url + "/introspect", {"token": token["access_token"]}, auth=None)
    assert status == 401 and body["error"] == "invalid_client"
    info = introspect(server, token["access_token"])
    assert info["active"] is True and info["username"] == info["email"] == "alice@example.test"
    assert info["exp"] > info["iat"]
    assert server.expire_access_tokens("alice@example.test") == 1
    assert introspect(server, token["access_token"]) == {"active": False}
    assert introspect(server, "no-such-token") == {"active": False}


def test_short_lifetime_and_userinfo(server):
    server.access_token_lifetime = 5
    token = full_flow(server)
    assert token["expires_in"] == 5
    req = urllib.request.Request(
        server.userinfo_url, headers={"Authorization": "Bearer " + token["access_token"]}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["email"] == "alice@example.test"
    server.expire_access_tokens("alice@example.test")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 401


def test_issue_token_without_browser(server):
    token = server.issue_token("bob@example.test")
    assert introspect(server, token["access_token"])["email"] == "bob@example.test"
    assert token["refresh_token"]
    assert server.token_requests == {}  # not a token-endpoint request


def test_failure_switch_503_then_recovers(server):
    token = full_flow(server)
    server.fail_token_endpoint("503", times=2)
    form = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    assert post(server.token_url, form)[0] == 503
    assert post(server.token_url, form)[0] == 503
    status, body = post(server.token_url, form)
    assert status == 200, body
    assert server.token_requests["refresh_token"] == 3


def test_failure_switch_close_drops_the_connection(server):
    token = full_flow(server)
    server.fail_token_endpoint("close")
    form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": token["refresh_token"]})
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("POST", "/token", body=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        conn.getresponse()
    conn.close()
    server.fail_token_endpoint(None)
    assert (
        post(server.token_url, {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]})[0]
        == 200
    )


def test_metadata_document(server):
    with urllib.request.urlopen(
        server.base_url + "/.well-known/oauth-authorization-server", timeout=10
    ) as resp:
        meta = json.loads(resp.read())
    assert meta["token_endpoint"] == server.token_url
    assert meta["authorization_endpoint"] == server.authorization_url
    assert meta["code_challenge_methods_supported"] == ["S256"]
