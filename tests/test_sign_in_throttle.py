"""Password guessing is throttled per account and per address (in Redis); administrators unlock.

Every test here runs with the shipped limits (10 failures lock an account for 15 minutes,
30 failures from one address give 429), against the test run's real Redis.
"""

from __future__ import annotations

import json
import statistics
import time

import pytest

from tests.conftest import Api, login
from webapp.cli import cli
from webapp.extensions import db
from webapp.models import LogEntry, LogSource

LOCKED = "This account is locked for 15 minutes after too many failed sign-ins"


def _from(app, address):
    """A test client whose requests come from ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _page_guess(client, username, password="not-the-password"):
    return client.post("/login", data={"username": username, "password": password})


def _api_guess(client, username, password="not-the-password"):
    return client.post("/api/v1/tokens", json={"username": username, "password": password})


@pytest.mark.parametrize("guess", [_page_guess, _api_guess], ids=["page", "api"])
def test_400_wrong_passwords_are_stopped_and_the_right_one_waits_for_the_lock(app, users, guess):
    attacker = _from(app, "203.0.113.7")
    statuses = [guess(attacker, "alice").status_code for _ in range(400)]
    assert statuses.count(429) >= 390, statuses[:40]
    assert all(code in (200, 401, 429) for code in statuses)
    throttled = guess(attacker, "alice")
    assert throttled.status_code == 429 and 0 < int(throttled.headers["Retry-After"]) <= 15 * 60

    # From another address the account itself is locked: even the right password is refused.
    owner = _from(app, "198.51.100.1")
    refused = guess(owner, "alice", users["alice"]["password"])
    assert refused.status_code == 429
    assert LOCKED in refused.get_data(as_text=True)
    assert "administrator" in refused.get_data(as_text=True)
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60


def test_a_lockout_writes_one_log_line_without_the_password(app, users):
    attacker = _from(app, "203.0.113.8")
    for attempt in range(12):
        _page_guess(attacker, "alice", f"secret-guess-{attempt}")
    lines = LogEntry.query.filter(LogEntry.source == LogSource.ADMIN.value).all()
    assert len(lines) == 1
    line = lines[0]
    assert line.level == "warning" and line.user_id == users["alice"]["id"]
    assert "alice" in line.message and "203.0.113.8" in line.message
    text = line.message + (line.details or "")
    assert "secret-guess" not in text and users["alice"]["password"] not in text
    assert json.loads(line.details)["username"] == "alice"


def _lock(app, username="alice"):
    attacker = _from(app, "203.0.113.9")
    for _ in range(10):
        _api_guess(attacker, username)  # the API: no CSRF token needed, even when it is on
    return _from(app, "198.51.100.2")


def test_cli_unlock_lets_the_right_password_in_at_once(app, users, runner):
    owner = _lock(app)
    assert LOCKED in _page_guess(owner, "alice", users["alice"]["password"]).get_data(as_text=True)
    result = runner.invoke(cli, ["users", "unlock", "alice"])
    assert result.exit_code == 0 and "Unlocked alice" in result.output
    assert login(owner, "alice", users["alice"]["password"]).status_code == 302
    assert "was not locked" in runner.invoke(cli, ["users", "unlock", "alice"]).output


def test_api_unlock_is_for_administrators_only(app, client, users):
    owner = _lock(app)
    assert Api(client, users["bob"]["token"]).post("/api/v1/users/alice/unlock").status_code == 403
    assert _api_guess(owner, "alice", users["alice"]["password"]).status_code == 429
    response = Api(client, users["admin"]["token"]).post("/api/v1/users/alice/unlock")
    assert response.status_code == 200 and response.get_json() == {"username": "alice", "unlocked": True}
    assert _api_guess(owner, "alice", users["alice"]["password"]).status_code == 201


def _csrf(client, url):
    page = client.get(url).get_data(as_text=True)
    return page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]


def test_the_admin_page_lists_locked_names_and_unlocks_with_a_csrf_protected_form(make_app):
    from webapp.users import create_user

    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        create_user("admin", "admin-console-pw", admin=True)
        create_user("alice", "alice-console-pw")
        db.session.remove()
    # Requests outside any app context of the test: each gets its own ``g`` (CSRF tokens are cached there).
    owner = _lock(app)
    _lock(app, "nobody-by-that-name")
    admin = _from(app, "198.51.100.3")
    token = _csrf(admin, "/login")
    signed_in = admin.post(
        "/login", data={"username": "admin", "password": "admin-console-pw", "csrf_token": token}
    )
    assert signed_in.status_code == 302
    assert 'id="nav-locked-sign-ins"' in admin.get("/mailboxes/").get_data(as_text=True)
    listing = admin.get("/admin/email/locked-sign-ins").get_data(as_text=True)
    assert 'data-username="alice"' in listing and "(no such user)" in listing
    assert admin.post("/admin/email/locked-sign-ins/unlock", data={"username": "alice"}).status_code == 400
    token = _csrf(admin, "/admin/email/locked-sign-ins")
    done = admin.post(
        "/admin/email/locked-sign-ins/unlock",
        data={"username": "alice", "csrf_token": token},
        follow_redirects=True,
    )
    assert "Unlocked alice." in done.get_data(as_text=True)
    assert 'data-username="alice"' not in done.get_data(as_text=True)
    token = _csrf(owner, "/login")
    back = owner.post(
        "/login", data={"username": "alice", "password": "alice-console-pw", "csrf_token": token}
    )
    assert back.status_code == 302


def test_the_locked_sign_ins_page_is_for_administrators_only(app, client, users):
    login(client, "alice", users["alice"]["password"])
    assert client.get("/admin/email/locked-sign-ins").status_code == 403
    assert client.post("/admin/email/locked-sign-ins/unlock", data={"username": "x"}).status_code == 403


def test_an_address_is_limited_across_names_and_others_are_not(app, users):
    guesser = _from(app, "203.0.113.10")
    # Three failures for each of ten names: no account reaches its limit, the address does.
    answers = [_page_guess(guesser, f"name-{i % 10}").status_code for i in range(30)]
    assert 429 not in answers
    throttled = _page_guess(guesser, "alice", users["alice"]["password"])
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins from your address" in throttled.get_data(as_text=True)
    assert _api_guess(guesser, "bob", users["bob"]["password"]).status_code == 429
    assert login(_from(app, "198.51.100.4"), "alice", users["alice"]["password"]).status_code == 302


def test_a_right_password_resets_the_account_count(app, users):
    client = _from(app, "198.51.100.5")
    for _ in range(9):
        _page_guess(client, "alice")
    assert login(client, "alice", users["alice"]["password"]).status_code == 302
    client.post("/logout")
    for _ in range(9):
        assert LOCKED not in _page_guess(client, "alice").get_data(as_text=True)


def test_unknown_names_get_the_same_answer_and_are_locked_the_same(app, users):
    client = _from(app, "198.51.100.6")
    unknown = _page_guess(client, "no-such-user").get_data(as_text=True)
    known = _page_guess(client, "alice").get_data(as_text=True)
    assert "Wrong username or password." in unknown and "Wrong username or password." in known
    for _ in range(9):
        last = _api_guess(client, "no-such-user")
    assert last.status_code == 429 and LOCKED in last.get_json()["error"]


def _median_seconds(call, times=10):
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


@pytest.mark.real_password_hash
def test_an_unknown_name_takes_as_long_as_a_wrong_password(make_app):
    from webapp.users import create_user

    # Limits high enough that all 20 attempts reach the password check.
    app = make_app(SIGN_IN_ACCOUNT_FAILURES=1000, SIGN_IN_ADDRESS_FAILURES=1000)
    with app.app_context():
        create_user("alice", "alice-console-pw")
        client = _from(app, "198.51.100.7")
        _page_guess(client, "warm-up")  # the dummy hash is made once per process
        # Interleaved, so that a change in the machine's load weighs on both alike.
        known, unknown = [], []
        for _ in range(10):
            known.append(_median_seconds(lambda: _page_guess(client, "alice"), times=1))
            unknown.append(_median_seconds(lambda: _page_guess(client, "no-such-user"), times=1))
        known, unknown = statistics.median(known), statistics.median(unknown)
        db.session.remove()
    ratio = unknown / known
    print(
        f"median wrong password {known * 1000:.1f} ms, unknown name {unknown * 1000:.1f} ms, ratio {ratio:.2f}"
    )
    assert 0.5 < ratio < 2


@pytest.mark.real_password_hash
def test_a_throttled_answer_computes_no_password_hash(app, users):
    guesser = _from(app, "203.0.113.11")
    wrong = _median_seconds(lambda: _page_guess(guesser, f"n{time.perf_counter_ns()}"), times=9)
    for i in range(30):
        _api_guess(guesser, f"other-{i}")
    throttled = _median_seconds(lambda: _page_guess(guesser, "alice", users["alice"]["password"]))
    print(f"median wrong password {wrong * 1000:.1f} ms, throttled {throttled * 1000:.1f} ms")
    assert throttled < wrong / 2


def test_sign_in_works_when_redis_is_down(make_app, caplog):
    from webapp.api_tokens import issue_token
    from webapp.users import create_user

    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    with app.app_context():
        create_user("alice", "alice-console-pw")
        admin_token = issue_token(create_user("admin", "admin-console-pw", admin=True))
        db.session.remove()
    client = app.test_client()
    assert "Wrong username or password." in _page_guess(client, "alice").get_data(as_text=True)
    assert _api_guess(client, "alice", "alice-console-pw").status_code == 201
    assert "Redis is unavailable" in caplog.text
    # Locks cannot be listed or lifted without Redis: a sentence, never a 500.
    unlock = Api(client, admin_token).post("/api/v1/users/alice/unlock")
    assert unlock.status_code == 503 and "Redis" in unlock.get_json()["error"]
    assert login(client, "admin", "admin-console-pw").status_code == 302
    page = client.get("/admin/email/locked-sign-ins")
    assert page.status_code == 200 and "cannot be reached" in page.get_data(as_text=True)
