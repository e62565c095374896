"""After sign-in, ``next`` leads only to a page of this site, read the way a browser reads it."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest

from webapp.sign_in import safe_next

# Raw query values, percent-encoded as an attacker would put them in a link.
OFF_SITE = [
    "//evil.example",
    "///evil.example",
    "////evil.example",
    "/%09/evil.example",
    "/%09%09/evil.example",
    "/%0a/evil.example",
    "/%0d%0a/evil.example",
    "%09//evil.example",
    "%20//evil.example",
    "%00//evil.example",
    "%0a",
    "%0d%0a",
    "%09",
    "/%5Cevil.example",
    "/%5C/evil.example",
    "%5C%5Cevil.example",
    "%5C/evil.example",
    "/%5C%09/evil.example",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt%3Aalert(1)",
    "%20javascript:alert(1)",
    "java%09script:alert(1)",
    "https://evil.example",
    "https:evil.example",
    "https:/evil.example",
    "http:/%5C/evil.example",
    "%09https://evil.example/",
    "data:text/html,hi",
    "evil.example",
    "@evil.example",
    ".evil.example",
]

ON_SITE = [
    ("%2Fmessages%2F%3Ffolder%3D1", "/messages/"),
    ("/messages/?folder=1", "/messages/"),  # unencoded: the & / ? belong to /login's own query
    ("/mailboxes/", "/mailboxes/"),
    ("/admin/email/services#top", "/admin/email/services"),
]


def _as_a_browser_reads(location: str) -> str:
    """The absolute URL a browser on http://localhost/login goes to for this Location header."""
    cleaned = location.strip("".join(chr(c) for c in range(0x21)))
    cleaned = cleaned.replace("\t", "").replace("\r", "").replace("\n", "").replace("\\", "/")
    return urljoin("http://localhost/login", cleaned)


@pytest.fixture
def sign_in(client, users):
    def post(raw_next: str):
        return client.post(
            "/login?next=" + raw_next, data={"username": "alice", "password": users["alice"]["password"]}
        )

    return post


@pytest.mark.parametrize("raw_next", OFF_SITE)
def test_an_off_site_next_is_replaced_by_the_mailbox_list(sign_in, raw_next):
    response = sign_in(raw_next)
    if response.status_code != 302:  # refused outright (a NUL byte in the query) is fine too
        assert 400 <= response.status_code < 500
        return
    location = response.headers["Location"]
    assert urlsplit(_as_a_browser_reads(location)).netloc == "localhost", location
    assert location == "/mailboxes/"


@pytest.mark.parametrize(("raw_next", "path"), ON_SITE)
def test_a_page_of_this_site_is_still_the_destination(sign_in, raw_next, path):
    response = sign_in(raw_next)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == path
    assert urlsplit(_as_a_browser_reads(response.headers["Location"])).netloc == "localhost"


def test_the_query_of_next_is_kept(sign_in):
    assert sign_in("%2Fmessages%2F%3Ffolder%3D1").headers["Location"] == "/messages/?folder=1"


def test_safe_next_reads_like_a_browser():
    assert safe_next("/\t/evil.example") is None
    assert safe_next("\n") is None
    assert safe_next(None) is None
    assert safe_next(" /messages/ ") == "/messages/"
    assert safe_next("/mess\tages/") == "/messages/"
