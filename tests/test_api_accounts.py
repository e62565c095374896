"""/api/v1/accounts: users' mailboxes, the rules of the connect form, secrets."""

import pytest

from webapp.extensions import db
from webapp.models import Account

MANUAL = {
    "imap": {"host": "mail.example.test", "port": 993, "security": "tls"},
    "smtp": {"host": "mail.example.test", "port": 465, "security": "tls"},
}


@pytest.fixture
def gmail_id(api):
    return next(s["id"] for s in api["admin"].get("/api/v1/services").get_json() if s["key"] == "gmail")


def _connect(api, user, **body):
    return api[user].post("/api/v1/accounts", json=body)


def test_connecting_through_a_service_fills_email_and_description_from_the_login(api, gmail_id):
    response = _connect(
        api, "alice", service_id=gmail_id, username="alice@gmail.com", password="app password 1"
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["email"] == "alice@gmail.com" and body["description"] == "alice@gmail.com"
    assert (
        body["is_main"] is True
        and body["state"] == "new"
        and body["service_name"] == "Gmail / Google Workspace"
    )
    assert body["imap"] == {"host": "imap.gmail.com", "port": 993, "security": "tls"}
    assert "password" not in body and body["has_password"] is True


def test_a_login_that_is_not_an_address_needs_an_email(api):
    response = _connect(api, "alice", manual=MANUAL, username="alice", password="pw")
    assert response.status_code == 422 and set(response.get_json()["fields"]) == {"email"}
    ok = _connect(api, "alice", manual=MANUAL, username="alice", password="pw", email="Alice@Example.test")
    assert ok.status_code == 201 and ok.get_json()["email"] == "Alice@example.test"


def test_invalid_account_fields_are_named(api, gmail_id):
    cases = [
        ({"username": "a@b.test", "password": "x"}, {"service_id"}),
        ({"service_id": gmail_id, "manual": MANUAL, "username": "a@b.test", "password": "x"}, {"service_id"}),
        ({"service_id": 424242, "username": "a@b.test", "password": "x"}, {"service_id"}),
        ({"service_id": "1", "username": "a@b.test", "password": "x"}, {"service_id"}),
        ({"service_id": gmail_id, "username": "", "password": ""}, {"username", "password"}),
        (
            {"service_id": gmail_id, "username": "a@b.test", "password": "x", "email": "not-an-address"},
            {"email"},
        ),
        ({"service_id": gmail_id, "username": "a@b.test", "password": "x", "is_main": "yes"}, {"is_main"}),
        (
            {
                "manual": {"imap": {"host": "h.test", "port": 0, "security": "tls"}},
                "username": "a@b.test",
                "password": "x",
            },
            {"manual.imap.port", "manual.smtp"},
        ),
        ({"service_id": gmail_id, "username": "a@b.test", "password": "x", "token": "t"}, {"token"}),
    ]
    for body, fields in cases:
        response = api["alice"].post("/api/v1/accounts", json=body)
        assert response.status_code == 422, body
        assert set(response.get_json()["fields"]) == fields, (body, response.get_json())
    assert api["alice"].get("/api/v1/accounts").get_json() == []


def test_the_same_mailbox_cannot_be_connected_twice(api, gmail_id):
    assert (
        _connect(api, "alice", service_id=gmail_id, username="alice@gmail.com", password="p").status_code
        == 201
    )
    again = _connect(api, "alice", service_id=gmail_id, username="ALICE@gmail.com", password="p")
    assert again.status_code == 409 and again.get_json()["fields"] == {"username": "already connected"}
    # Another user may connect the same address (a shared mailbox).
    assert (
        _connect(api, "bob", service_id=gmail_id, username="alice@gmail.com", password="p").status_code == 201
    )


def test_exactly_one_mailbox_is_main_and_the_mark_moves(api, gmail_id):
    first = _connect(api, "alice", service_id=gmail_id, username="a1@gmail.com", password="p").get_json()
    second = _connect(api, "alice", service_id=gmail_id, username="a2@gmail.com", password="p").get_json()
    assert first["is_main"] and not second["is_main"]
    third = _connect(
        api, "alice", manual=MANUAL, username="a3@example.test", password="p", is_main=True
    ).get_json()
    mains = [a["id"] for a in api["alice"].get("/api/v1/accounts").get_json() if a["is_main"]]
    assert mains == [third["id"]]
    assert api["alice"].patch(f"/api/v1/accounts/{second['id']}", json={"is_main": True}).status_code == 200
    mains = [a["id"] for a in api["alice"].get("/api/v1/accounts").get_json() if a["is_main"]]
    assert mains == [second["id"]]
    refused = api["alice"].patch(f"/api/v1/accounts/{second['id']}", json={"is_main": False})
    assert refused.status_code == 422 and "is_main" in refused.get_json()["fields"]
    assert api["alice"].delete(f"/api/v1/accounts/{second['id']}").status_code == 204
    mains = [a["id"] for a in api["alice"].get("/api/v1/accounts").get_json() if a["is_main"]]
    assert mains == [first["id"]]


def test_users_see_and_change_only_their_own_mailboxes(api, gmail_id):
    acc = _connect(api, "alice", service_id=gmail_id, username="alice@gmail.com", password="p").get_json()
    assert api["bob"].get("/api/v1/accounts").get_json() == []
    assert api["bob"].get(f"/api/v1/accounts/{acc['id']}").status_code == 404
    assert api["bob"].patch(f"/api/v1/accounts/{acc['id']}", json={"description": "mine"}).status_code == 404
    assert api["bob"].delete(f"/api/v1/accounts/{acc['id']}").status_code == 404
    assert api["alice"].get(f"/api/v1/accounts/{acc['id']}").get_json()["description"] == "alice@gmail.com"
    # An administrator can list every mailbox (for defaults and support), explicitly.
    everyone = api["admin"].get("/api/v1/accounts?all=1").get_json()
    assert [a["id"] for a in everyone] == [acc["id"]]


def test_manual_details_are_refused_while_the_administrator_forbids_them(api):
    kept = _connect(api, "alice", manual=MANUAL, username="alice@example.test", password="p").get_json()
    assert api["admin"].patch("/api/v1/settings", json={"allow_manual_entry": False}).status_code == 200
    refused = _connect(api, "bob", manual=MANUAL, username="bob@example.test", password="p")
    assert refused.status_code == 403 and "manual" in refused.get_json()["fields"]
    moved = api["alice"].patch(f"/api/v1/accounts/{kept['id']}", json={"manual": MANUAL})
    assert moved.status_code == 403
    # The mailbox connected earlier keeps working and can still be edited otherwise.
    assert api["alice"].patch(f"/api/v1/accounts/{kept['id']}", json={"description": "ok"}).status_code == 200
    assert api["alice"].get(f"/api/v1/accounts/{kept['id']}").get_json()["imap"] == MANUAL["imap"]


def test_passwords_are_encrypted_never_returned_and_kept_when_left_empty(api, app, gmail_id):
    from webapp.accounts import password

    secret = "Sup3r-secret-mailbox-pw"
    acc = _connect(api, "alice", service_id=gmail_id, username="alice@gmail.com", password=secret)
    raw = acc.get_data(as_text=True)
    assert secret not in raw
    account = db.session.get(Account, acc.get_json()["id"])
    assert secret not in account.password_encrypted and password(account) == secret
    api["alice"].patch(f"/api/v1/accounts/{account.id}", json={"password": "", "description": "x"})
    db.session.expire_all()
    assert password(db.session.get(Account, account.id)) == secret
    api["alice"].patch(f"/api/v1/accounts/{account.id}", json={"password": "new-secret"})
    db.session.expire_all()
    assert password(db.session.get(Account, account.id)) == "new-secret"
    assert secret not in api["alice"].get("/api/v1/accounts").get_data(as_text=True)


def test_a_mailbox_that_lost_its_service_can_move_to_another(api, gmail_id):
    sid = api["admin"].post("/api/v1/services", json={"name": "Old", **MANUAL}).get_json()["id"]
    acc = _connect(api, "alice", service_id=sid, username="alice@example.test", password="p").get_json()
    api["admin"].delete(f"/api/v1/services/{sid}")
    moved = api["alice"].patch(f"/api/v1/accounts/{acc['id']}", json={"service_id": gmail_id})
    assert moved.status_code == 200
    assert moved.get_json()["state"] == "new" and moved.get_json()["last_error"] is None
