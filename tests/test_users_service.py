"""User management as a service: the rules pages, API and CLI share (webapp/users.py, webapp/passwords.py).

Creating (names, minimum length, confirmation), the last active administrator kept,
disabling (sessions, tokens, cron's due query, mailroom idle's selection; nothing deleted),
hash upgrade on sign-in, and a disabled user's sign-in: clear, and no slower or faster.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta

import pytest
from werkzeug.security import generate_password_hash

from tests.conftest import login
from webapp import users as users_service
from webapp.api_tokens import user_for_token
from webapp.errors import Conflict, Invalid
from webapp.extensions import db
from webapp.jobs.due import due_query
from webapp.jobs.idle import watched_ids
from webapp.jobs.sync import sync_account
from webapp.models import Account, LogEntry, User, UserSession
from webapp.operations import sync_lag
from webapp.sign_in import WRONG_PASSWORD, SignInRefused, sign_in


def _mailbox(user: User, push: bool = True) -> int:
    account = Account(
        user_id=user.id,
        manual=True,
        username=f"{user.username}@example.com",
        email=f"{user.username}@example.com",
        description="",
        state="connected",
        push=push,
        incoming_protocol="imap",
    )
    db.session.add(account)
    db.session.commit()
    return account.id


@pytest.mark.real_password_hash
def test_create_names_the_field_of_each_problem(app):
    with pytest.raises(Invalid) as bad:
        users_service.create_user("", "short")
    assert set(bad.value.fields) == {"username", "password"}
    assert "at least 12 characters" in bad.value.fields["password"]
    with pytest.raises(Invalid) as spaced:
        users_service.create_user("carol smith", "carol-password-1")
    assert "no spaces" in spaced.value.fields["username"]
    with pytest.raises(Invalid) as mismatch:
        users_service.create_user("carol", "carol-password-1", confirm="carol-password-2")
    assert set(mismatch.value.fields) == {"confirm"}
    carol = users_service.create_user("carol", "carol-password-1", confirm="carol-password-1")
    assert carol.password_hash.startswith("scrypt:32768:8:1$") and not carol.is_admin
    with pytest.raises(Conflict) as taken:
        users_service.create_user("carol", "carol-password-1")
    assert taken.value.fields == {"username": "A user named carol exists already."}
    assert User.query.count() == 1


def test_the_minimum_length_is_configurable(make_app):
    app = make_app(PASSWORD_MIN_LENGTH=20)
    with app.app_context():
        with pytest.raises(Invalid) as short:
            users_service.create_user("dave", "nineteen-characters")
        assert "at least 20 characters" in short.value.fields["password"]
        assert users_service.create_user("dave", "twenty-characters-ok").id


def test_the_last_active_administrator_is_neither_demoted_nor_disabled(app, users):
    admin, alice = users["admin"]["user"], users["alice"]["user"]
    for change in ({"admin": False}, {"disabled": True}):
        with pytest.raises(Conflict) as refused:
            users_service.update_user(admin, **change)
        assert "last active administrator" in refused.value.message
        assert list(refused.value.fields) == [next(iter(change))]
    users_service.set_admin(alice, True, actor=admin)
    with pytest.raises(Conflict, match="your own account"):
        users_service.disable_user(admin, actor=admin)
    users_service.disable_user(alice, actor=admin)  # an admin, but not the last active one
    # alice is disabled now: she does not count, so admin is the last active administrator again.
    with pytest.raises(Conflict):
        users_service.set_admin(admin, False, actor=admin)
    users_service.enable_user(alice, actor=admin)
    users_service.set_admin(admin, False, actor=alice)
    db.session.expire_all()
    assert not db.session.get(User, admin.id).is_admin and db.session.get(User, alice.id).is_admin
    log = [entry.message for entry in LogEntry.query.all()]
    assert "User alice disabled by admin." in log and "User admin no longer an administrator by alice." in log


def test_disabling_stops_sessions_tokens_cron_and_idle_and_deletes_nothing(app, users, client):
    alice, admin = users["alice"]["user"], users["admin"]["user"]
    mine, bobs = _mailbox(alice), _mailbox(users["bob"]["user"])
    assert login(client, "alice", users["alice"]["password"]).status_code == 302
    assert client.get("/mailboxes/").status_code == 200
    now = datetime(2030, 1, 1)
    assert {mine, bobs} <= {row.id for row in db.session.execute(due_query(now, timedelta(minutes=5)))}
    assert {mine, bobs} <= set(watched_ids())
    assert sync_lag().mailboxes == 2

    impact = users_service.disable_impact(alice)
    assert (impact.sessions, impact.tokens, impact.mailboxes) == (1, 1, 1)
    users_service.disable_user(alice, actor=admin)
    assert UserSession.query.filter_by(user_id=alice.id).count() == 0
    assert client.get("/mailboxes/").status_code == 302  # the open browser is signed out
    assert user_for_token(users["alice"]["token"]) is None
    due = {row.id for row in db.session.execute(due_query(now, timedelta(minutes=5)))}
    assert mine not in due and bobs in due
    assert mine not in watched_ids() and bobs in watched_ids()
    assert sync_lag().mailboxes == 1  # not synced on purpose: no lag alarm on the Operations page
    assert db.session.get(Account, mine) is not None  # nothing deleted
    # A sync queued before the owner was disabled does nothing when it runs.
    assert sync_account(mine) == {"ok": False, "skipped": True, "error": "The mailbox's owner is disabled."}

    users_service.enable_user(alice, actor=admin)
    assert user_for_token(users["alice"]["token"]).id == alice.id
    assert mine in {row.id for row in db.session.execute(due_query(now, timedelta(minutes=5)))}
    assert mine in watched_ids()


@pytest.mark.real_password_hash
def test_an_old_pbkdf2_hash_is_upgraded_at_the_next_sign_in(app, users):
    alice = users["alice"]["user"]
    alice.password_hash = generate_password_hash("alice-console-pw", method="pbkdf2:sha256:600000")
    db.session.commit()
    with pytest.raises(SignInRefused):
        sign_in("alice", "wrong-password-1", "192.0.2.1")
    assert db.session.get(User, alice.id).password_hash.startswith("pbkdf2:")  # only with the right one
    assert sign_in("alice", "alice-console-pw", "192.0.2.1").id == alice.id
    stored = db.session.get(User, alice.id)
    assert stored.password_hash.startswith("scrypt:32768:8:1$") and stored.check_password("alice-console-pw")
    assert stored.last_sign_in_at is not None
    # Other costs count as another method too: scrypt with n=2**14 is brought up to n=2**15.
    stored.password_hash = generate_password_hash("alice-console-pw", method="scrypt:16384:8:1")
    db.session.commit()
    sign_in("alice", "alice-console-pw", "192.0.2.1")
    assert db.session.get(User, alice.id).password_hash.startswith("scrypt:32768:8:1$")


def _timed(username: str, password: str) -> tuple[float, str]:
    start = time.perf_counter()
    try:
        sign_in(username, password, "198.51.100.7")
        message = "signed in"
    except SignInRefused as exc:
        message = exc.message
    return time.perf_counter() - start, message


@pytest.mark.real_password_hash
def test_a_disabled_user_is_told_after_the_right_password_only_and_as_fast_as_a_wrong_one(make_app):
    app = make_app(SIGN_IN_ACCOUNT_FAILURES=1000, SIGN_IN_ADDRESS_FAILURES=1000)
    with app.app_context():
        admin = users_service.create_user("admin", "admin-console-pw", admin=True)
        alice = users_service.create_user("alice", "alice-console-pw")
        users_service.disable_user(alice, actor=admin)
        wrong, disabled = [], []
        for _ in range(10):
            elapsed, message = _timed("alice", "not-her-password")
            assert message == WRONG_PASSWORD
            wrong.append(elapsed)
            elapsed, message = _timed("alice", "alice-console-pw")
            assert message == "This account is disabled. Ask an administrator to enable it."
            disabled.append(elapsed)
        ratio = statistics.median(disabled) / statistics.median(wrong)
        print(
            f"disabled/wrong sign-in time: {statistics.median(disabled):.4f}/{statistics.median(wrong):.4f} s"
        )
        assert 0.5 < ratio < 2, ratio  # as for unknown names (test_sign_in_failures.py)
        assert db.session.get(User, alice.id).last_sign_in_at is None
