"""Every answer carries the browser-hardening headers; HSTS and Secure cookies only over HTTPS,
which behind a proxy is believed only with MAILROOM_TRUSTED_PROXIES set."""

from __future__ import annotations

import pytest

from webapp import config as config_module
from webapp.security_headers import CSP, FRAMED_CSP

from .conftest import login

FORWARDED_HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
EXPECTED = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _answers(client, token: str, headers: dict | None = None) -> dict:
    """One answer of each kind: a page, an API answer, a 404, a static file, a redirect."""
    headers = dict(headers or {})
    out = {
        "page": client.get("/login", headers=headers),
        "api": client.get("/api/v1/me", headers={**headers, "Authorization": f"Bearer {token}"}),
        "404": client.get("/no/such/page", headers=headers),
        "static": client.get("/static/mailroom.css", headers=headers),
        "redirect": client.get("/", headers=headers),
    }
    assert [r.status_code for r in out.values()] == [200, 200, 404, 200, 302]
    return out


def test_every_kind_of_answer_carries_the_security_headers(client, users):
    for kind, response in _answers(client, users["alice"]["token"]).items():
        for name, value in EXPECTED.items():
            assert response.headers.get(name) == value, (kind, name)
        policy = response.headers["Permissions-Policy"]
        assert "camera=()" in policy and "microphone=()" in policy and "geolocation=()" in policy, kind
        assert "Strict-Transport-Security" not in response.headers, kind  # plain HTTP: no HSTS
        response.close()


def test_the_policy_allows_nothing_inline():
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
    directives = dict(part.strip().split(" ", 1) for part in CSP.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"


def test_plain_http_login_cookie_is_not_secure(client, users):
    response = login(client, "alice", users["alice"]["password"])
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=") and "HttpOnly" in cookie
    assert "Secure" not in cookie


def test_behind_a_trusted_proxy_https_gives_secure_cookies_and_hsts(make_app):
    app = make_app(TRUSTED_PROXIES=1)
    client = app.test_client()
    with app.app_context():
        alice = _alice()
        response = client.post(
            "/login", data={"username": "alice", "password": "alice-console-pw"}, headers=FORWARDED_HTTPS
        )
        assert response.status_code == 302
        assert "; Secure" in response.headers["Set-Cookie"]
        for kind, answer in _answers(client, alice, FORWARDED_HTTPS).items():
            assert answer.headers.get("Strict-Transport-Security", "").startswith("max-age="), kind
            assert answer.headers["Content-Security-Policy"] == CSP, kind
            answer.close()


def test_without_trusted_proxies_the_forwarded_headers_are_ignored(make_app):
    app = make_app()  # TRUSTED_PROXIES defaults to 0
    client = app.test_client()
    with app.app_context():
        alice = _alice()
        response = client.post(
            "/login", data={"username": "alice", "password": "alice-console-pw"}, headers=FORWARDED_HTTPS
        )
        assert response.status_code == 302
        assert "Secure" not in response.headers["Set-Cookie"]
        for kind, answer in _answers(client, alice, FORWARDED_HTTPS).items():
            assert "Strict-Transport-Security" not in answer.headers, kind
            answer.close()


def test_direct_https_gives_secure_cookies_and_hsts(client, users):
    response = client.post(
        "/login",
        data={"username": "alice", "password": users["alice"]["password"]},
        base_url="https://localhost",
    )
    assert "; Secure" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_secure_cookies_setting_makes_them_secure_even_over_http(make_app):
    app = make_app(SESSION_COOKIE_SECURE=True)
    client = app.test_client()
    with app.app_context():
        _alice()
        response = client.post("/login", data={"username": "alice", "password": "alice-console-pw"})
        assert "; Secure" in response.headers["Set-Cookie"]


def test_trusted_proxy_prefix_and_client_address_are_believed(make_app):
    app = make_app(TRUSTED_PROXIES=1)
    seen = {}

    @app.get("/_probe_address")
    def probe():
        from flask import request

        seen.update(addr=request.remote_addr, root=request.url_root)
        return "ok"

    client = app.test_client()
    headers = {**FORWARDED_HTTPS, "X-Forwarded-Host": "mail.example.com", "X-Forwarded-Prefix": "/mail"}
    assert client.get("/", headers=headers).headers["Location"] == "/mail/login"
    client.get("/_probe_address", headers=headers)
    assert seen == {"addr": "203.0.113.7", "root": "https://mail.example.com/mail/"}


def test_signature_frame_has_its_own_policy_and_is_sanitized(client, users):
    login(client, "alice", users["alice"]["password"])
    response = client.post(
        "/profile/signature-frame",
        data={"html": '<p style="color: red">Hi<script>alert(1)</script><img src="http://x/a.png"></p>'},
    )
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == FRAMED_CSP
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    body = response.get_data(as_text=True)
    assert 'style="color:red"' in body and "Hi" in body
    assert "<script" not in body and "alert(1)" not in body and "http://x" not in body


def test_signature_frame_needs_a_signed_in_user(client, users):
    response = client.post("/profile/signature-frame", data={"html": "<p>x</p>"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("value", ["abc", "-1", "1.5"])
def test_a_bad_trusted_proxies_value_stops_the_start_naming_the_variable(monkeypatch, tmp_path, value):
    monkeypatch.setenv("MAILROOM_TRUSTED_PROXIES", value)
    with pytest.raises(ValueError, match="MAILROOM_TRUSTED_PROXIES"):
        config_module.from_environment(str(tmp_path))


def test_proxy_and_cookie_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MAILROOM_TRUSTED_PROXIES", "2")
    monkeypatch.setenv("MAILROOM_SECURE_COOKIES", "1")
    values = config_module.from_environment(str(tmp_path))
    assert values["TRUSTED_PROXIES"] == 2
    assert values["SESSION_COOKIE_SECURE"] is True and values["REMEMBER_COOKIE_SECURE"] is True
    monkeypatch.delenv("MAILROOM_TRUSTED_PROXIES")
    monkeypatch.delenv("MAILROOM_SECURE_COOKIES")
    values = config_module.from_environment(str(tmp_path))
    assert values["TRUSTED_PROXIES"] == 0 and values["SESSION_COOKIE_SECURE"] is False


def _alice() -> str:
    """Create alice (password alice-console-pw); return an API token of hers."""
    from webapp.api_tokens import issue_token
    from webapp.users import create_user

    return issue_token(create_user("alice", "alice-console-pw"))


def test_connect_page_lets_its_form_lead_to_the_configured_oauth2_provider(client, users, api):
    """Browsers check form-action on the redirect after a post: the connect form's answer goes to
    the provider's consent page, so that page's origin is in its policy, and only there."""
    login(client, "alice", users["alice"]["password"])
    assert client.get("/mailboxes/connect").headers["Content-Security-Policy"] == CSP  # no app yet
    created = api["admin"].post(
        "/api/v1/services",
        json={
            "name": "Corp OAuth",
            "imap": {"host": "imap.corp.example", "port": 993, "security": "tls"},
            "smtp": {"host": "smtp.corp.example", "port": 465, "security": "tls"},
        },
    )
    put = api["admin"].put(
        f"/api/v1/services/{created.get_json()['id']}/oauth-app",
        json={
            "client_id": "console",
            "client_secret": "s3cret",
            "authorization_url": "https://login.corp.example:8443/authorize?x=1",
            "token_url": "https://login.corp.example:8443/token",
            "scopes": "mail",
        },
    )
    assert put.status_code == 200, put.get_json()
    policy = client.get("/mailboxes/connect").headers["Content-Security-Policy"]
    assert "form-action 'self' https://login.corp.example:8443;" in policy
    assert policy.replace(" https://login.corp.example:8443", "") == CSP
    assert client.get("/mailboxes/").headers["Content-Security-Policy"] == CSP
