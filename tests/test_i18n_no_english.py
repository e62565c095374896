"""No English words on the Italian and Polish pages: every page of the console that a user and an
administrator reach, the error pages (404, 403, 400, a stale CSRF token) and the answers to a bad
e-mail address (forms and API) are rendered in it and pl, and their visible text (and the
placeholders, titles and labels a screen reader reads) is searched for common English words.

A word that must stay English (a product's name, a server's own words) is not in ``ENGLISH``;
a new page or a new sentence that was not marked for translation makes this test fail.
"""

from __future__ import annotations

import re
from datetime import datetime
from html.parser import HTMLParser

import pytest

from tests.conftest import login
from tests.i18n_catalogues import compile_catalogues
from tests.support.message_factory import make_account, make_folder, make_message
from webapp.extensions import db

#: Common English words that are not Italian or Polish words ("to", "do", "no", "on", "a", "in",
#: "password", "server", "email", "login", "host", "account", "token", "test" and "spam" are used
#: in both; "date" is Italian, "folder", "status" and "administrator" are Polish).
ENGLISH = (
    "the", "and", "of", "your", "you", "with", "this", "that", "are", "not", "has", "have", "been",
    "was", "from", "will", "can", "cannot", "must", "should", "for", "save", "cancel", "delete",
    "edit", "back", "next", "previous", "search", "send", "sent", "users", "sign", "connect",
    "folders", "message", "messages", "mailbox", "mailboxes", "settings", "never", "yes",
    "none", "new", "add", "remove", "show", "hide", "enabled", "disabled", "failed", "error",
    "unknown", "ago", "today", "yesterday", "minutes", "hours", "days", "page", "required", "field",
    "invalid", "valid", "please", "here", "when", "which", "only", "all", "any", "more", "first",
    "last", "open", "close", "time", "name", "subject", "inbox", "draft", "drafts", "trash",
    "archive", "junk", "outgoing", "incoming", "scheduled", "state", "passed", "succeeded",
    "working", "waiting", "queued", "running", "testing", "log", "logs", "level", "source",
    "details", "language", "profile", "tokens", "create", "created", "update", "updated",
    "disable", "enable", "reply", "forward", "compose", "attachment", "attachments", "signature",
    "filters", "filter", "rule", "rules", "action", "actions", "out of office", "operations",
    "services", "service", "user", "select", "choose", "optional", "found", "finished",
    "hidden", "visible", "default", "help", "note", "about", "address", "addresses",
    "nothing", "empty", "items", "item", "total", "size", "unread", "read", "flagged", "starred",
    "thread", "threads", "sync", "synced", "syncing", "now", "after", "before", "every", "minute",
    "hour", "day", "week", "month", "year", "it", "is", "be", "by", "at", "an", "if", "as",
    "there", "what", "how", "why", "who", "may", "would", "could", "than", "then", "forbidden",
    "not found", "bad request", "expired", "try again", "refresh",
)
#: Words that are also words of the language.
NATIVE = {"it": ("date",), "pl": ("folder", "status", "administrator")}
_ENGLISH = re.compile(r"(?<![\w@./-])(" + "|".join(re.escape(w) for w in ENGLISH) + r")(?![\w@/'’-])", re.I)
#: What may stay English on purpose (docs/translations.md): names, codes, a server's folder name.
KEEP = ("Mailroom", "Microsoft 365 (work or school)", "INBOX")
ATTRIBUTES = ("placeholder", "title", "aria-label", "alt")


class _VisibleText(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "template"):
            self._skip += 1
        values = dict(attrs)
        for name in ATTRIBUTES:
            if values.get(name):
                self.parts.append(values[name])
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            self.parts.append(values["value"])

    def handle_endtag(self, tag):
        if tag in ("script", "style", "template") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str) -> list[str]:
    parser = _VisibleText()
    parser.feed(html)
    return parser.parts


def english_in(texts: list[str], language: str = "", keep: tuple[str, ...] = ()) -> list[str]:
    """The texts among ``texts`` that hold an English word (not one that is also ``language``'s);
    ``keep``: more texts that may stay as they are (a server's folder names, say)."""
    native = NATIVE.get(language, ())
    found = []
    for text in texts:
        for kept in (*KEEP, *keep):
            text = text.replace(kept, "")
        if any(word.lower() not in native for word in _ENGLISH.findall(text)):
            found.append(text)
    return found


USER_PAGES = (
    "/mailboxes/",
    "/mailboxes/connect",
    "/mailboxes/{account}/edit",
    "/mailboxes/{account}/folders",
    "/mailboxes/{account}/filters",
    "/mailboxes/{account}/filters/new",
    "/mailboxes/{account}/out-of-office",
    "/mailboxes/log",
    "/messages/",
    "/messages/{message}",
    "/messages/history",
    "/compose/",
    "/compose/reply/{message}",
    "/compose/forward/{message}",
    "/compose/outgoing",
    "/compose/scheduled",
    "/profile/",
    "/profile/password",
    "/profile/tokens",
    "/no-such-page",
    "/messages/999999",
    "/admin/email/services",
)
ADMIN_PAGES = (
    "/admin/email/services",
    "/admin/email/services/new",
    "/admin/email/users",
    "/admin/email/users/new",
    "/admin/email/users/{alice}/password",
    "/admin/email/users/{alice}/disable",
    "/admin/email/operations",
    "/admin/email/log",
    "/admin/email/senders",
    "/admin/email/signature",
    "/admin/email/oauth-apps",
    "/admin/email/locked-sign-ins",
    "/admin/email/services/{service}/edit",
    "/admin/email/services/{service}/delete",
    "/admin/email/oauth-apps/{service}",
    "/mailboxes/",
    "/profile/",
)


@pytest.fixture
def seeded(app, users):
    """Alice's mailbox with a thread of two messages in its INBOX, a log line; the ids."""
    from webapp import email_log, service_catalog
    from webapp.models import LogLevel, LogSource

    compile_catalogues()
    with app.app_context():
        account = make_account(users["alice"]["id"], "alice@example.com")
        inbox = make_folder(account)
        make_message(inbox, subject="Preventivo", message_id="<a@x>", date=datetime(2026, 3, 1, 9, 0))
        last = make_message(
            inbox, subject="Re: Preventivo", message_id="<b@x>", in_reply_to="<a@x>", date=datetime(2026, 3, 1, 10)
        )
        email_log.record(LogSource.SYNC, LogLevel.ERROR, "IMAP connection test failed.", account=account, commit=True)
        service = service_catalog.create_service(
            service_catalog.clean_service({"name": "Studio Rossi", "imap": MANUAL["imap"], "smtp": MANUAL["smtp"]})
        )
        ids = {"account": account.id, "message": last.id, "alice": users["alice"]["id"], "service": service.id}
    return app, ids


def _set_language(app, user_id: int, language: str) -> None:
    from webapp.models import User

    with app.app_context():
        db.session.get(User, user_id).language = language
        db.session.commit()
        db.session.remove()


@pytest.mark.parametrize("language", ["it", "pl"])
def test_pages_have_no_english(seeded, users, language):
    app, ids = seeded
    found = {}
    for name, pages in (("alice", USER_PAGES), ("admin", ADMIN_PAGES)):
        _set_language(app, users[name]["id"], language)
        client = app.test_client()
        assert login(client, name, users[name]["password"]).status_code == 302
        for page in pages:
            url = page.format(**ids)
            response = client.get(url)
            assert response.status_code in (200, 403, 404, 422), (url, response.status_code)
            hits = english_in(visible_text(response.get_data(as_text=True)), language)
            if hits:
                found[f"{name} {url} ({response.status_code})"] = hits
    assert not found, found


#: Addresses email-validator refuses, and a piece of our sentence for each, in it and pl.
BAD_ADDRESSES = {
    "a..b@acme.test": {"it": "due punti consecutivi", "pl": "dwie kropki pod rząd"},
    ".ab@acme.test": {"it": "non può iniziare con un punto", "pl": "nie może zaczynać się od kropki"},
    "ab.@acme.test": {"it": "non può terminare con un punto", "pl": "nie może kończyć się kropką"},
    "a@b@acme.test": {"it": "deve contenere una sola @", "pl": "dokładnie jeden znak @"},
    "a b(c)@acme.test": {"it": "prima della @: '(', ')', spazio.", "pl": "przed znakiem @: '(', ')', spacja."},
    "a\u200bb@acme.test": {"it": "caratteri invisibili o di controllo (U+200B)", "pl": "sterujące znaki (U+200B)"},
    '"a b"@acme.test': {"it": "le virgolette attorno", "pl": "cudzysłów wokół"},
    "Alice <a@acme.test>": {"it": "senza nome né <parentesi angolari>", "pl": "bez nazwy i <nawiasów ostrych>"},
}
MANUAL = {
    "imap": {"host": "mail.acme.test", "port": 993, "security": "tls"},
    "smtp": {"host": "mail.acme.test", "port": 465, "security": "tls"},
}


@pytest.mark.parametrize("language", ["it", "pl"])
def test_a_refused_address_is_explained_in_the_readers_language(app, users, client, api, language):
    """email-validator speaks English only: the API (Accept-Language) and the connect form (the
    user's language) answer with our sentence, which keeps the detail that helps to fix it."""
    _set_language(app, users["alice"]["id"], language)
    login(client, "alice", users["alice"]["password"])
    for address, expected in BAD_ADDRESSES.items():
        body = {"manual": MANUAL, "username": "alice", "password": "pw", "email": address}
        answer = api["alice"].post("/api/v1/accounts", json=body, headers={"Accept-Language": language})
        assert answer.status_code == 422, address
        sentence = answer.get_json()["fields"]["email"]
        assert expected[language] in sentence and not english_in([sentence]), (address, sentence)
        page = client.post(
            "/mailboxes/connect",
            data={
                "service": "other",
                "username": "alice",
                "email": address,
                "password": "pw",
                "imap_server": "mail.acme.test:993",
                "imap_security": "tls",
                "smtp_server": "mail.acme.test:465",
                "smtp_use_tls": "y",
            },
        )
        texts = visible_text(page.get_data(as_text=True))
        assert any(expected[language] in text for text in texts), (address, language)
        assert not [t for t in english_in(texts) if "@" in t], address


def test_a_refused_address_is_explained_in_english_too(api):
    answer = api["alice"].post(
        "/api/v1/accounts", json={"manual": MANUAL, "username": "alice", "password": "pw", "email": "a..b@acme.test"}
    )
    assert answer.get_json()["fields"]["email"] == "Not an email address: the part before the @ has two dots in a row."


@pytest.mark.parametrize("language", ["it", "pl"])
def test_api_errors_answer_in_the_readers_language(api, language):
    """werkzeug's own descriptions (an unknown path, a wrong method) and the input guard's answers
    (a broken JSON body, checked before any view) follow Accept-Language like the views' errors."""
    alice, headers = api["alice"], {"Accept-Language": language}
    answers = {
        "unknown path": alice.get("/api/v1/no-such-thing", headers=headers),
        "wrong method": alice.delete("/api/v1/me", headers=headers),
        "broken JSON": alice.post(
            "/api/v1/accounts", data="{", headers={**headers, "Content-Type": "application/json"}
        ),
        "bad address": alice.post("/api/v1/messages/send", json={"to": "a b@x.test", "subject": "s"}, headers=headers),
    }
    for what, answer in answers.items():
        body = answer.get_json()
        texts = [body["error"], *body.get("fields", {}).values()]
        assert answer.status_code in (400, 404, 405, 422) and not english_in(texts, language), (what, body)


def test_api_errors_in_english_are_our_sentences(api):
    assert api["alice"].get("/api/v1/no-such-thing").get_json() == {
        "error": "Nothing is at this address: check the path, or what it named was removed."
    }


@pytest.mark.parametrize("language", ["it", "pl"])
def test_a_stale_form_is_explained_in_the_readers_language(make_app, language):
    """A form sent without its CSRF token: the 400 page, and the JSON a page script gets."""
    compile_catalogues()
    client = make_app(WTF_CSRF_ENABLED=True).test_client()
    headers = {"Accept-Language": language}
    page = client.post("/login", data={"username": "alice", "password": "x"}, headers=headers)
    assert page.status_code == 400
    texts = visible_text(page.get_data(as_text=True))
    assert texts and not english_in(texts, language), texts
    answer = client.post("/login", json={}, headers=headers)
    assert answer.status_code == 400 and "CSRF" in answer.get_json()["error"]
    assert not english_in([answer.get_json()["error"]], language)


@pytest.mark.parametrize("language", ["it", "pl"])
def test_the_sign_in_page_follows_the_browsers_language(app, users, language):
    """Before signing in, the page follows Accept-Language: the form and a refused password."""
    compile_catalogues()
    client, headers = app.test_client(), {"Accept-Language": language}
    for answer in (
        client.get("/login", headers=headers),
        client.post("/login", data={"username": "alice", "password": "wrong"}, headers=headers),
        client.get("/mailboxes/", headers=headers, follow_redirects=True),
    ):
        texts = visible_text(answer.get_data(as_text=True))
        assert answer.status_code in (200, 401) and texts and not english_in(texts, language), texts
