"""In Chromium: an element with the ``hidden`` attribute is never shown, whatever the stylesheet says.

The password form once showed the OAuth2 explanation ("You will be sent to the provider…")
because ``.help { display:block }`` beat the browser's own ``[hidden] { display:none }``.
Every page with ``hidden`` elements is checked, in each state its script can put it in.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from webapp import oauth_apps, service_catalog
from webapp.extensions import db
from webapp.models import Service

from .conftest import login
from .helpers import add_corporate_server, add_mailbox

pytestmark = pytest.mark.browser

#: Every element carrying ``hidden`` that the browser nevertheless renders (a box with a size).
SHOWN_HIDDEN = """() => [...document.querySelectorAll('[hidden]')]
  .filter((el) => el.getClientRects().length > 0 || getComputedStyle(el).display !== 'none')
  .map((el) => el.id || el.className || el.tagName)"""


def assert_hidden_elements_invisible(page) -> int:
    """Check every ``[hidden]`` element of the page is invisible; return how many there were."""
    count = page.locator("[hidden]").count()
    assert page.evaluate(SHOWN_HIDDEN) == [], page.url
    for i in range(count):
        expect(page.locator("[hidden]").nth(i)).to_be_hidden()
    return count


def _oauth_service(live) -> int:
    service_id = add_corporate_server(live, "Corp OAuth")
    with live.app.app_context():
        service = db.session.get(Service, service_id)
        oauth_apps.save_oauth_app(
            service,
            oauth_apps.clean_oauth_app(
                service,
                {
                    "client_id": "mailroom-test",
                    "client_secret": "s3cret-value",
                    "authorization_url": "https://login.corp.example/authorize",
                    "token_url": "https://login.corp.example/token",
                    "scopes": "mail offline_access",
                },
                None,
            ),
        )
        service_catalog.sync_builtin_services(force=True)
        db.session.remove()
    return service_id


def test_no_element_with_the_hidden_attribute_is_visible_on_any_page(live_server, page):
    oauth_id = _oauth_service(live_server)
    account_id = add_mailbox(live_server, "alice", oauth_id, "alice@corp.example")
    login(page, live_server, "alice")

    page.goto(live_server.url + "/mailboxes/connect")
    page.select_option("#service", str(oauth_id))
    page.select_option("#auth_method", "password")
    assert assert_hidden_elements_invisible(page) >= 1
    expect(page.locator("#oauth-explain")).to_be_hidden()  # the reported defect
    expect(page.locator("#password")).to_be_visible()

    page.select_option("#auth_method", "oauth2")
    expect(page.locator("#oauth-explain")).to_be_visible()
    assert assert_hidden_elements_invisible(page) >= 1
    expect(page.locator("#password-fields")).to_be_hidden()

    page.goto(live_server.url + f"/mailboxes/{account_id}/edit")
    assert assert_hidden_elements_invisible(page) >= 1

    page.goto(live_server.url + "/compose/")
    assert_hidden_elements_invisible(page)

    page.goto(live_server.url + f"/mailboxes/{account_id}/filters")
    assert_hidden_elements_invisible(page)
    page.goto(live_server.url + f"/mailboxes/{account_id}/filters/new")
    assert assert_hidden_elements_invisible(page) >= 1
