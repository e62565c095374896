"""Headless Chromium clicks through the test OAuth2 server's consent page (user picker + Allow),
as the app's consent-flow browser tests do; the code it brings back buys a working token."""

from __future__ import annotations

import urllib.parse

from tests.test_oauth_servers import REDIRECT, authorize_url, introspect, pkce, post


def test_consent_page_in_chromium(page, oauth_server):
    verifier, challenge = pkce()
    # The client's callback is not served here: the browser's request to it is answered by Playwright.
    page.route(REDIRECT + "*", lambda route: route.fulfill(status=200, body="callback reached"))
    page.goto(authorize_url(oauth_server, challenge, state="browser-state"))
    page.select_option("#user", "bob@example.test")
    page.click("#allow")
    page.wait_for_url(REDIRECT + "*")
    back = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))
    assert back["state"] == "browser-state"
    status, token = post(
        oauth_server.token_url,
        {
            "grant_type": "authorization_code",
            "code": back["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    )
    assert status == 200, token
    assert introspect(oauth_server, token["access_token"])["email"] == "bob@example.test"


def test_deny_in_chromium(page, oauth_server):
    _, challenge = pkce()
    page.route(REDIRECT + "*", lambda route: route.fulfill(status=200, body="callback reached"))
    page.goto(authorize_url(oauth_server, challenge))
    page.click("#deny")
    page.wait_for_url(REDIRECT + "*")
    assert dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))["error"] == "access_denied"
    assert oauth_server.tokens == []
