"""Error pages in the console's layout (a heading, a sentence, a way back) while the API keeps
its JSON; and what the look promises for states and icons: one word, icon and colour per state,
with WCAG AA contrast, every icon drawn from the vendored sprite, no emoji left as an icon."""

from __future__ import annotations

import os
import re

import pytest
from werkzeug.exceptions import TooManyRequests

from webapp import look
from webapp.compose.routes import STATE_LABELS
from webapp.models import AccountState

from .conftest import login

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "webapp")
SPRITE = os.path.join(ROOT, "static", "vendor", "lucide", "icons.svg")
CSS = os.path.join(ROOT, "static", "mailroom.css")


def _page(response) -> str:
    assert response.mimetype == "text/html", response.mimetype
    return response.get_data(as_text=True)


def _in_layout(html: str, heading: str) -> None:
    assert 'class="card error-page"' in html and f"<h1>{heading}</h1>" in html, html[:2000]
    assert 'class="topbar"' in html and 'id="error-home"' in html  # the console's header, a way back


@pytest.fixture
def error_app(make_app):
    """The app with two routes that fail the way nothing in Mailroom fails on demand (500, 429)."""
    app = make_app(MAX_CONTENT_LENGTH=2_000)
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def boom():
        raise RuntimeError("secret-internal-detail")

    def slow_down():
        raise TooManyRequests()

    for rule, view in (("/boom", boom), ("/api/v1/boom", boom), ("/slow-down", slow_down)):
        app.add_url_rule(rule, endpoint=rule, view_func=view)
    return app


@pytest.fixture
def signed_in(error_app):
    from webapp.extensions import db
    from webapp.users import create_user

    with error_app.app_context():
        create_user("admin", "admin-console-pw", admin=True)
        create_user("alice", "alice-console-pw")
        db.session.remove()
    clients = {}
    for name in ("admin", "alice"):
        clients[name] = error_app.test_client()
        assert login(clients[name], name, f"{name}-console-pw").status_code == 302
    return clients


def test_403_404_405_in_the_layout_with_a_way_back_and_json_for_the_api(signed_in, error_app):
    alice = signed_in["alice"]
    # 403: a user opening an administrator's page.
    response = alice.get("/admin/email/services")
    assert response.status_code == 403
    html = _page(response)
    _in_layout(html, "You may not open this page")
    assert 'id="site-nav"' in html and 'href="/"' in html  # signed in: the navigation and home
    # 404: an unknown address, and a view's own 404 (another person's or no such mailbox).
    for url in ("/no-such-page", "/mailboxes/999999/edit"):
        response = alice.get(url, headers={"Referer": "http://localhost/messages/"})
        assert response.status_code == 404, url
        html = _page(response)
        _in_layout(html, "Nothing is here")
        assert 'href="http://localhost/messages/" id="error-back"' in html  # back where they came from
    # A referrer elsewhere is not offered as the way back.
    assert 'id="error-back"' not in _page(
        alice.get("/no-such-page", headers={"Referer": "https://evil.example/"})
    )
    # 405: GET on a form's POST address; the Allow header stays.
    response = alice.get("/logout")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]
    _in_layout(_page(response), "This address does not answer that kind of request")
    # A refused field (input_guard's page) names the field and offers the same way back.
    response = alice.get("/messages/?page=%00")
    assert response.status_code == 422
    html = _page(response)
    assert "<strong>page</strong>" in html and 'id="error-home"' in html and 'class="card error-page"' in html
    # Signed out: the same page, with Sign in as the way back.
    response = error_app.test_client().get("/no-such-page")
    assert response.status_code == 404 and 'href="/login" id="error-home"' in _page(response)
    # The API keeps JSON: a 404 of routing, a 403 of an admin-only call, a 405.
    api = error_app.test_client()
    for method, url, status in (("GET", "/api/v1/nope", 404), ("POST", "/api/v1/openapi.json", 405)):
        response = api.open(url, method=method)
        assert response.status_code == status and response.is_json and "error" in response.get_json(), url
    # A page asked for JSON (a script's fetch) gets JSON too.
    response = alice.get("/no-such-page", headers={"Accept": "application/json"})
    assert response.status_code == 404 and response.is_json


def test_413_429_500_in_the_layout_and_500_hides_the_detail(signed_in, error_app, caplog):
    alice = signed_in["alice"]
    response = alice.post("/mailboxes/connect", data={"email": "x" * 5_000})
    assert response.status_code == 413
    _in_layout(_page(response), "That is too large")
    response = alice.get("/slow-down")
    assert response.status_code == 429
    _in_layout(_page(response), "Too many requests")
    response = alice.get("/boom")
    assert response.status_code == 500
    html = _page(response)
    _in_layout(html, "Something went wrong on our side")
    assert "secret-internal-detail" not in html and "Traceback" not in html
    assert "secret-internal-detail" in caplog.text  # logged for the administrators
    response = error_app.test_client().get("/api/v1/boom")
    assert response.status_code == 500 and response.get_json() == {"error": "Internal server error."}


def test_metrics_keeps_its_plain_answers(signed_in):
    response = signed_in["alice"].get("/metrics")
    assert response.status_code == 403 and "error-page" not in response.get_data(as_text=True)


# --- states and icons ----------------------------------------------------------------------


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _badge_colours() -> dict[str, tuple[str, str]]:
    with open(CSS) as fh:
        css = fh.read()
    found = re.findall(r"\.badge\.state-(\w+) \{ background:(#[0-9a-f]{6}); color:(#[0-9a-f]{6});", css)
    return {state: (bg, fg) for state, bg, fg in found}


def _sprite_ids() -> set[str]:
    with open(SPRITE) as fh:
        return set(re.findall(r'<symbol id="([\w-]+)"', fh.read()))


def test_each_state_has_its_word_icon_and_a_colour_with_aa_contrast():
    colours = _badge_colours()
    for state in look.STATE_WORDS:
        assert state in colours, f"no .badge.state-{state} colours in mailroom.css"
        bg, fg = colours[state]
        assert _contrast(bg, fg) >= 4.5, (state, bg, fg, round(_contrast(bg, fg), 2))
        assert look.state_icon(state) in _sprite_ids(), state
    # Mailbox and outgoing states: the words the rest of the code uses, each its own colour.
    for state in AccountState:
        assert look.state_word(state.value) == state.label
    for state, word in STATE_LABELS.items():
        assert look.state_word(state) == word
    errors = ("auth_error", "connection_error", "service_removed", "failed")
    assert len({colours[s] for s in errors}) == len(errors) - 1  # failed shares auth_error's red
    assert len({colours[s] for s in ("connected", "new", "disabled", "needs_sign_in", "auth_error")}) == 5


def test_every_icon_a_template_draws_is_in_the_sprite_and_no_emoji_is_left():
    used, emoji = set(), []
    pattern = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\u2b50\u2b55\u2190-\u21ff\u25cf\u2605]")
    for folder, _dirs, files in os.walk(ROOT):
        for name in files:
            if not name.endswith((".html", ".js")) or "vendor" in folder:
                continue
            with open(os.path.join(folder, name)) as fh:
                text = fh.read()
            used.update(re.findall(r"""icon\(["']([\w-]+)["']\s*[,)]""", text))
            emoji += [f"{name}: {m}" for m in pattern.findall(text)]
    assert used and not used - _sprite_ids(), sorted(used - _sprite_ids())
    assert not emoji, emoji
