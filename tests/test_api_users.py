"""``/api/v1/users`` (administrators) and ``/api/v1/me/password`` (anyone): the same rules as the pages."""

from __future__ import annotations

from tests.conftest import Api, login
from webapp.models import UserSession


def test_an_administrator_manages_users_through_the_api(client, api, users):
    admin = api["admin"]
    listed = admin.get("/api/v1/users").get_json()
    assert [u["username"] for u in listed] == ["admin", "alice", "bob"]
    assert listed[1] | {"id": 0, "created_at": ""} == {
        "id": 0,
        "username": "alice",
        "role": "user",
        "admin": False,
        "state": "active",
        "disabled_at": None,
        "last_sign_in_at": None,
        "created_at": "",
        "mailboxes": 0,
    }
    assert all("password" not in key for user in listed for key in user)

    created = admin.post("/api/v1/users", json={"username": "carol", "password": "carol-password-1"})
    assert created.status_code == 201 and created.get_json()["state"] == "active"
    carol_id = created.get_json()["id"]
    taken = admin.post("/api/v1/users", json={"username": "carol", "password": "carol-password-1"})
    assert taken.status_code == 409 and "exists already" in taken.get_json()["fields"]["username"]
    bad = admin.post("/api/v1/users", json={"username": "c d", "password": "short", "admin": "yes", "x": 1})
    assert bad.status_code == 422 and set(bad.get_json()["fields"]) == {"x"}
    bad = admin.post("/api/v1/users", json={"username": "c d", "password": "short"})
    assert bad.status_code == 422 and set(bad.get_json()["fields"]) == {"username", "password"}
    assert admin.post("/api/v1/users", json=["x"]).status_code == 400

    promoted = admin.patch(f"/api/v1/users/{carol_id}", json={"admin": True})
    assert promoted.status_code == 200 and promoted.get_json()["role"] == "admin"
    assert admin.patch(f"/api/v1/users/{carol_id}", json={"disabled": "yes"}).status_code == 422
    disabled = admin.patch(f"/api/v1/users/{users['alice']['id']}", json={"disabled": True})
    assert disabled.get_json()["state"] == "disabled" and disabled.get_json()["disabled_at"]
    refused = api["alice"].get("/api/v1/accounts")
    assert refused.status_code == 401 and "disabled" in refused.get_json()["error"]
    enabled = admin.patch(f"/api/v1/users/{users['alice']['id']}", json={"disabled": False})
    assert enabled.get_json()["state"] == "active"
    assert api["alice"].get("/api/v1/accounts").status_code == 200

    myself = admin.patch(f"/api/v1/users/{users['admin']['id']}", json={"disabled": True})
    assert myself.status_code == 409 and "yourself" in myself.get_json()["fields"]["disabled"]
    assert admin.get("/api/v1/users/999999").status_code == 404
    assert admin.patch("/api/v1/users/99999999999", json={}).status_code == 404


def test_the_last_active_administrator_stays_through_the_api(client, api, users):
    admin_id = users["admin"]["id"]
    alice = users["alice"]["id"]
    api["admin"].patch(f"/api/v1/users/{alice}", json={"admin": True})
    # alice disables admin, then cannot demote herself: she is the last active administrator.
    assert api["alice"].patch(f"/api/v1/users/{admin_id}", json={"disabled": True}).status_code == 200
    last = api["alice"].patch(f"/api/v1/users/{alice}", json={"admin": False})
    assert last.status_code == 409 and "last active administrator" in last.get_json()["error"]
    assert api["admin"].get("/api/v1/users").status_code == 401  # admin's own token stopped


def test_only_administrators_reach_the_users_api(client, api, users):
    alice = api["alice"]
    assert alice.get("/api/v1/users").status_code == 403
    assert (
        alice.post("/api/v1/users", json={"username": "x", "password": "x-password-123"}).status_code == 403
    )
    assert alice.patch(f"/api/v1/users/{users['alice']['id']}", json={"admin": True}).status_code == 403
    assert (
        alice.post(f"/api/v1/users/{users['bob']['id']}/password", json={"password": "p" * 12}).status_code
        == 403
    )
    assert Api(client, None).get("/api/v1/users").status_code == 401


def test_passwords_through_the_api_end_browser_sessions_and_keep_tokens(client, app, api, users):
    browser = app.test_client()
    assert login(browser, "alice", users["alice"]["password"]).status_code == 302
    me = api["alice"]
    wrong = me.post(
        "/api/v1/me/password", json={"current_password": "nope", "new_password": "alice-new-password"}
    )
    assert wrong.status_code == 422 and set(wrong.get_json()["fields"]) == {"current_password"}
    short = me.post(
        "/api/v1/me/password", json={"current_password": users["alice"]["password"], "new_password": "short"}
    )
    assert short.status_code == 422 and "at least 12" in short.get_json()["fields"]["new_password"]
    changed = me.post(
        "/api/v1/me/password",
        json={"current_password": users["alice"]["password"], "new_password": "alice-new-password"},
    )
    assert changed.get_json() == {"sessions_ended": 1}
    # (test_sessions.py shows a deleted row signs the browser out; the app fixture's context caches g)
    assert UserSession.query.filter_by(user_id=users["alice"]["id"]).count() == 0
    assert me.get("/api/v1/accounts").status_code == 200  # the token is a credential of its own

    reset = api["admin"].post(
        f"/api/v1/users/{users['bob']['id']}/password", json={"password": "bob-reset-password"}
    )
    assert reset.status_code == 200
    assert login(app.test_client(), "bob", "bob-reset-password").status_code == 302
    assert api["admin"].post(f"/api/v1/users/{users['bob']['id']}/password", json={}).status_code == 422


def test_a_disabled_user_cannot_get_a_token(client, api, users):
    api["admin"].patch(f"/api/v1/users/{users['bob']['id']}", json={"disabled": True})
    right = client.post("/api/v1/tokens", json={"username": "bob", "password": users["bob"]["password"]})
    assert right.status_code == 403 and right.get_json()["error"].startswith("This account is disabled")
    wrong = client.post("/api/v1/tokens", json={"username": "bob", "password": "bob-wrong-password"})
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "Wrong username or password."
