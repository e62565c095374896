"""A page session lives on the server: logout, a password change or idleness end it for every copy.

These tests hold no app context across requests (the ``site`` fixture), as a real
server does not: each request must load its user afresh (Flask-Login caches it in ``g``).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from flask_login.utils import encode_cookie

from tests.conftest import login
from webapp.cli import cli
from webapp.extensions import db
from webapp.models import User, UserSession, utcnow
from webapp.users import change_password

PASSWORDS = {"alice": "alice-console-pw", "bob": "bob-console-pw"}


@pytest.fixture
def site(make_app):
    """The app with alice and bob, and no app context pushed."""
    from webapp.users import create_user

    app = make_app()
    with app.app_context():
        for name, password in PASSWORDS.items():
            create_user(name, password)
        db.session.remove()
    return app


@pytest.fixture
def users(site):
    with site.app_context():
        ids = {u.username: u.id for u in User.query}
    return {name: {"id": ids[name], "password": pw} for name, pw in PASSWORDS.items()}


@contextmanager
def database(app):
    with app.app_context():
        yield db.session
        db.session.remove()


def _rows(app):
    with database(app):
        return UserSession.query.count()


def _age(app, **fields):
    """Move the only session row's times back, as if that much time had passed."""
    with database(app) as session:
        row = UserSession.query.one()
        for name, delta in fields.items():
            setattr(row, name, utcnow() - delta)
        session.commit()


def _signed_in(app, users, name="alice"):
    client = app.test_client()
    assert login(client, name, users[name]["password"]).status_code == 302
    return client


def _replay(app, cookie_value):
    """A fresh client holding a copy of someone's session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", cookie_value)
    return thief


def _goes_to_login(response):
    return response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_cookie_copied_before_logout_stops_working_after_it(site, users):
    client = _signed_in(site, users)
    copied = client.get_cookie("session").value
    assert _replay(site, copied).get("/mailboxes/").status_code == 200  # the copy works while signed in
    assert client.post("/logout").status_code == 302
    assert _goes_to_login(_replay(site, copied).get("/mailboxes/"))
    assert _goes_to_login(client.get("/mailboxes/"))
    assert _rows(site) == 0


def test_signing_in_records_the_browser_with_only_a_hash_of_its_id(site, users):
    client = _signed_in(site, users)
    with client.session_transaction() as session:
        session_id = session["mailroom_sid"]
    with database(site):
        row = UserSession.query.one()
        assert row.user_id == users["alice"]["id"] and row.ip == "127.0.0.1"
        assert row.session_hash != session_id and len(row.session_hash) == 64


def test_a_password_change_ends_every_session_of_that_user_only(site, users):
    laptop, phone, bob = _signed_in(site, users), _signed_in(site, users), _signed_in(site, users, "bob")
    with database(site) as session:
        assert change_password(session.get(User, users["alice"]["id"]), "alice-new-password") == 2
    assert _goes_to_login(laptop.get("/mailboxes/")) and _goes_to_login(phone.get("/mailboxes/"))
    assert bob.get("/mailboxes/").status_code == 200
    fresh = site.test_client()
    assert login(fresh, "alice", users["alice"]["password"]).status_code == 200  # the old one is wrong now
    assert login(fresh, "alice", "alice-new-password").status_code == 302


def test_users_passwd_reads_the_new_password_and_ends_the_sessions(site, users):
    browser = _signed_in(site, users)
    runner = site.test_cli_runner()
    mismatch = runner.invoke(cli, ["users", "passwd", "alice"], input="alice-new-password\nalice-new-passwort\n")
    assert mismatch.exit_code != 0 and "differ" in mismatch.output
    assert browser.get("/mailboxes/").status_code == 200  # nothing changed
    result = runner.invoke(cli, ["users", "passwd", "alice"], input="alice-new-password\n" * 2)
    assert result.exit_code == 0, result.output
    assert "1 signed-in session(s) ended" in result.output and "alice-new-password" not in result.output
    assert _goes_to_login(browser.get("/mailboxes/"))
    assert login(site.test_client(), "alice", "alice-new-password").status_code == 302
    short = runner.invoke(cli, ["users", "passwd", "alice"], input="short-pw\nshort-pw\n")
    assert short.exit_code != 0 and "at least 12 characters" in short.output
    assert runner.invoke(cli, ["users", "passwd", "nobody"], input="long-enough-1\n" * 2).exit_code != 0


def test_an_idle_session_ends(site, users):
    client = _signed_in(site, users)
    _age(site, last_seen_at=timedelta(minutes=119))
    assert client.get("/mailboxes/").status_code == 200  # within MAILROOM_SESSION_IDLE_MINUTES (120)
    _age(site, last_seen_at=timedelta(minutes=121))
    assert _goes_to_login(client.get("/mailboxes/"))
    assert _rows(site) == 0


def test_the_idle_timeout_is_configurable(make_app):
    from webapp.users import create_user

    app = make_app(SESSION_IDLE_MINUTES=1)
    with database(app):
        create_user("alice", "alice-console-pw")
    client = app.test_client()
    login(client, "alice", "alice-console-pw")
    _age(app, last_seen_at=timedelta(seconds=30))
    assert client.get("/mailboxes/").status_code == 200
    _age(app, last_seen_at=timedelta(seconds=90))
    assert _goes_to_login(client.get("/mailboxes/"))


def test_a_session_ends_after_its_absolute_lifetime_even_when_busy(site, users):
    client = _signed_in(site, users)
    _age(site, created_at=timedelta(days=7, minutes=1))
    assert _goes_to_login(client.get("/mailboxes/"))


def _last_seen(app):
    with database(app):
        return UserSession.query.one().last_seen_at


def test_last_seen_is_written_at_most_once_a_minute(site, users):
    client = _signed_in(site, users)
    first = _last_seen(site)
    client.get("/mailboxes/")
    assert _last_seen(site) == first
    _age(site, last_seen_at=timedelta(minutes=2))
    client.get("/mailboxes/")
    assert _last_seen(site) >= first


def test_a_remember_me_cookie_cannot_bring_a_session_back(site, users):
    thief = site.test_client()
    with site.app_context():  # signed with the app's key, as Flask-Login would
        thief.set_cookie("remember_token", encode_cookie(str(users["alice"]["id"])))
    assert _goes_to_login(thief.get("/mailboxes/"))


def test_deleting_a_user_deletes_their_sessions(site, users):
    _signed_in(site, users)
    with database(site) as session:
        session.delete(session.get(User, users["alice"]["id"]))
        session.commit()
    assert _rows(site) == 0
