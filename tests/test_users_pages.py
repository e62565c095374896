"""Administration › Users, My profile › Password and API tokens, as pages (CSRF on, no app context held).

A real server holds no app context between requests, and Flask-Login caches the user in it,
so these tests push none across requests (like tests/test_sessions.py).
"""

from __future__ import annotations

import re

import pytest

from webapp.extensions import db
from webapp.models import ApiToken, LogEntry, User, UserSession

PASSWORDS = {"admin": "admin-console-pw", "alice": "alice-console-pw", "bob": "bob-console-pw"}


@pytest.fixture
def site(make_app):
    from webapp.users import create_user

    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        for name, password in PASSWORDS.items():
            create_user(name, password, admin=name == "admin")
        db.session.remove()
    return app


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


def _signed_in(app, name):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    answer = client.post(
        "/login", data={"username": name, "password": PASSWORDS[name], "csrf_token": _csrf(page)}
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def _post(client, page_url, url, **data):
    token = _csrf(client.get(page_url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


def _user(app, name) -> User:
    with app.app_context():
        user = User.query.filter_by(username=name).one()
        db.session.expunge(user)
        return user


def test_an_administrator_creates_disables_enables_and_promotes(site):
    admin, alice = _signed_in(site, "admin"), _signed_in(site, "alice")
    listing = admin.get("/admin/email/users").get_data(as_text=True)
    assert all(f'data-username="{name}"' in listing for name in PASSWORDS)
    assert alice.get("/admin/email/users").status_code == 403

    form = admin.get("/admin/email/users/new").get_data(as_text=True)
    bad = admin.post(
        "/admin/email/users/new",
        data={"csrf_token": _csrf(form), "username": "carol x", "password": "short", "confirm": "short"},
    )
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and 'data-field="username"' in html and 'data-field="password"' in html
    assert "at least 12 characters" in html and "short" not in re.findall(r'value="([^"]*)"', html)
    made = admin.post(
        "/admin/email/users/new",
        data={
            "csrf_token": _csrf(form),
            "username": "carol",
            "password": "carol-password-1",
            "confirm": "carol-password-1",
        },
    )
    assert made.status_code == 302 and not _user(site, "carol").is_admin
    assert (
        admin.post("/admin/email/users/new", data={"username": "dave", "password": "x" * 12}).status_code
        == 400
    )

    alice_id = _user(site, "alice").id
    confirm = admin.get(f"/admin/email/users/{alice_id}/disable").get_data(as_text=True)
    assert "1 signed-in browser is signed out." in confirm and "0 mailboxes stop syncing." in confirm
    assert _user(site, "alice").disabled_at is None  # the confirmation page changes nothing
    assert admin.post(f"/admin/email/users/{alice_id}/disable").status_code == 400  # no CSRF token
    done = _post(admin, "/admin/email/users", f"/admin/email/users/{alice_id}/disable")
    assert done.status_code == 302 and _user(site, "alice").is_disabled
    signed_out = alice.get("/mailboxes/")
    assert signed_out.status_code == 302 and "/login" in signed_out.headers["Location"]
    with site.app_context():
        assert UserSession.query.filter_by(user_id=alice_id).count() == 0

    _post(admin, "/admin/email/users", f"/admin/email/users/{alice_id}/enable")
    assert not _user(site, "alice").is_disabled
    _post(admin, "/admin/email/users", f"/admin/email/users/{alice_id}/role", admin="1")
    assert _user(site, "alice").is_admin
    assert (
        _post(admin, "/admin/email/users", f"/admin/email/users/{alice_id}/role", admin="x").status_code
        == 400
    )
    assert admin.get("/admin/email/users/999999/disable").status_code == 404


def test_the_last_active_administrator_is_kept_on_the_page(site):
    admin = _signed_in(site, "admin")
    admin_id = _user(site, "admin").id
    refused = _post(admin, "/admin/email/users", f"/admin/email/users/{admin_id}/role", admin="0")
    assert refused.status_code == 302
    page = admin.get(refused.headers["Location"]).get_data(as_text=True)
    assert "admin is the last active administrator" in page and _user(site, "admin").is_admin
    own = _post(admin, "/admin/email/users", f"/admin/email/users/{admin_id}/disable")
    assert "You cannot disable yourself." in admin.get(own.headers["Location"]).get_data(as_text=True)
    assert not _user(site, "admin").is_disabled


def test_an_administrator_resets_a_password_and_that_user_is_signed_out(site):
    admin, bob = _signed_in(site, "admin"), _signed_in(site, "bob")
    bob_id = _user(site, "bob").id
    url = f"/admin/email/users/{bob_id}/password"
    mismatch = _post(admin, url, url, password="bob-new-password", confirm="bob-new-passwort")
    assert mismatch.status_code == 422 and 'data-field="confirm"' in mismatch.get_data(as_text=True)
    done = _post(admin, url, url, password="bob-new-password", confirm="bob-new-password")
    assert done.status_code == 302
    assert bob.get("/mailboxes/").status_code == 302
    assert _user(site, "bob").check_password("bob-new-password")
    with site.app_context():
        assert LogEntry.query.filter_by(message="Password of bob reset by admin.").count() == 1
    own = admin.get(f"/admin/email/users/{_user(site, 'admin').id}/password")
    assert own.status_code == 302 and own.headers["Location"].endswith("/profile/password")


def test_my_password_needs_the_current_one_and_signs_out_my_other_browsers(site):
    laptop, phone = _signed_in(site, "alice"), _signed_in(site, "alice")
    page = "/profile/password"
    wrong = _post(
        laptop,
        page,
        page,
        current_password="nope",
        new_password="alice-new-password",
        confirm="alice-new-password",
    )
    html = wrong.get_data(as_text=True)
    assert wrong.status_code == 422 and 'data-field="current_password"' in html and "not right" in html
    short = _post(
        laptop, page, page, current_password=PASSWORDS["alice"], new_password="short", confirm="short"
    )
    assert 'data-field="new_password"' in short.get_data(as_text=True)
    done = _post(
        laptop,
        page,
        page,
        current_password=PASSWORDS["alice"],
        new_password="alice-new-password",
        confirm="alice-new-password",
    )
    assert done.status_code == 302
    assert "1 other signed-in browser was signed out." in laptop.get(page).get_data(as_text=True)
    assert phone.get("/mailboxes/").status_code == 302  # the other browser is signed out
    assert laptop.get("/mailboxes/").status_code == 200  # this one stays
    assert _user(site, "alice").check_password("alice-new-password")


def test_api_tokens_page_creates_shows_once_and_revokes(site):
    alice, bob = _signed_in(site, "alice"), _signed_in(site, "bob")
    empty = alice.get("/profile/tokens").get_data(as_text=True)
    assert "You have no API token." in empty
    made = _post(alice, "/profile/tokens", "/profile/tokens", name="backup script", days="30")
    html = made.get_data(as_text=True)
    token = re.search(r'value="(mr_[^"]+)"', html).group(1)
    assert made.headers["Cache-Control"] == "no-store" and "backup script" in html
    assert token not in alice.get("/profile/tokens").get_data(as_text=True)  # shown only once
    api = site.test_client()
    assert api.get("/api/v1/accounts", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert "never" not in alice.get("/profile/tokens").get_data(as_text=True).split("backup script")[1][:400]
    bad = _post(alice, "/profile/tokens", "/profile/tokens", name="x", days="7")
    assert bad.status_code == 422 and 'data-field="days"' in bad.get_data(as_text=True)

    with site.app_context():
        token_id = ApiToken.query.filter_by(name="backup script").one().id
    assert _post(bob, "/profile/tokens", f"/profile/tokens/{token_id}/revoke").status_code == 404  # not his
    assert _post(alice, "/profile/tokens", f"/profile/tokens/{token_id}/revoke").status_code == 302
    refused = api.get("/api/v1/accounts", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401 and "revoked" in refused.get_json()["error"]
    assert 'data-state="revoked"' in alice.get("/profile/tokens").get_data(as_text=True)


def test_a_disabled_user_is_told_on_the_sign_in_page(site):
    admin = _signed_in(site, "admin")
    _post(admin, "/admin/email/users", f"/admin/email/users/{_user(site, 'bob').id}/disable")
    client = site.test_client()
    token = _csrf(client.get("/login").get_data(as_text=True))
    right = client.post("/login", data={"username": "bob", "password": PASSWORDS["bob"], "csrf_token": token})
    assert "This account is disabled. Ask an administrator to enable it." in right.get_data(as_text=True)
    wrong = client.post(
        "/login", data={"username": "bob", "password": "bob-wrong-password", "csrf_token": token}
    )
    text = wrong.get_data(as_text=True)
    assert "Wrong username or password." in text and "disabled" not in text
