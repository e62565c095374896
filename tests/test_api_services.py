"""/api/v1/services and /api/v1/settings: the administrator's list of mail services."""

from webapp.models import Account, Notification

CORP = {
    "name": "ACME mail",
    "imap": {"host": "imap.acme.test", "port": 993, "security": "tls"},
    "smtp": {"host": "smtp.acme.test", "port": 587, "security": "starttls"},
}


def _service(api, name):
    return next(s for s in api.get("/api/v1/services").get_json() if name in (s["name"], s["key"]))


def test_requests_without_a_valid_token_get_401(client, users):
    assert client.get("/api/v1/services").status_code == 401
    response = client.get("/api/v1/services", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert "token" in response.get_json()["error"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_tokens_are_issued_for_a_correct_password_only(client, users):
    good = client.post("/api/v1/tokens", json={"username": "alice", "password": "alice-console-pw"})
    assert good.status_code == 201
    token = good.get_json()["token"]
    assert client.get("/api/v1/accounts", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.post("/api/v1/tokens", json={"username": "alice", "password": "wrong"}).status_code == 401
    missing = client.post("/api/v1/tokens", json={"username": "alice"})
    assert missing.status_code == 422 and "password" in missing.get_json()["fields"]
    assert client.post("/api/v1/tokens", data="not json", content_type="text/plain").status_code == 400


def test_builtin_providers_are_listed_with_their_real_servers(api):
    services = {s["key"]: s for s in api["admin"].get("/api/v1/services").get_json()}
    for key in ("gmail", "office365", "yahoo", "aruba", "aruba_pec", "legalmail"):
        assert key in services, key
        assert services[key]["kind"] == "builtin"
    assert services["gmail"]["imap"] == {"host": "imap.gmail.com", "port": 993, "security": "tls"}
    assert services["aruba_pec"]["imap"]["host"] == "imaps.pec.aruba.it"
    assert services["legalmail"]["smtp"] == {
        "host": "sendm.cert.legalmail.it",
        "port": 465,
        "security": "tls",
    }
    assert services["office365"]["imap"] == {"host": "outlook.office365.com", "port": 993, "security": "tls"}


def test_admin_adds_a_corporate_server(api):
    response = api["admin"].post("/api/v1/services", json=CORP)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["kind"] == "corporate" and body["hidden"] is False
    assert body["imap"] == CORP["imap"] and body["smtp"] == CORP["smtp"]
    assert _service(api["alice"], "ACME mail")["id"] == body["id"]


def test_a_user_cannot_change_the_list_of_services(api):
    assert api["alice"].post("/api/v1/services", json=CORP).status_code == 403
    sid = api["admin"].post("/api/v1/services", json=CORP).get_json()["id"]
    assert api["alice"].patch(f"/api/v1/services/{sid}", json={"hidden": True}).status_code == 403
    assert api["alice"].delete(f"/api/v1/services/{sid}").status_code == 403
    assert api["alice"].get(f"/api/v1/services/{sid}/affected-accounts").status_code == 403
    assert api["alice"].get("/api/v1/settings").status_code == 403
    assert api["alice"].patch("/api/v1/settings", json={"allow_manual_entry": False}).status_code == 403


def test_service_names_are_unique_whatever_the_case(api):
    assert api["admin"].post("/api/v1/services", json=CORP).status_code == 201
    again = api["admin"].post("/api/v1/services", json=dict(CORP, name="acme MAIL"))
    assert again.status_code == 409
    assert again.get_json()["fields"] == {"name": "already in use"}
    assert (
        api["admin"].post("/api/v1/services", json=dict(CORP, name="gmail / google WORKSPACE")).status_code
        == 409
    )


def test_invalid_service_fields_are_named(api):
    bad = {
        "name": "",
        "imap": {"host": "imap.acme.test:993", "port": 70000, "security": "ssl3"},
        "smtp": {"host": "smtp acme", "port": "587", "security": "starttls"},
        "colour": "red",
    }
    response = api["admin"].post("/api/v1/services", json=bad)
    assert response.status_code == 422
    fields = response.get_json()["fields"]
    assert set(fields) == {
        "name",
        "imap.host",
        "imap.port",
        "imap.security",
        "smtp.host",
        "smtp.port",
        "colour",
    }
    assert "port" in fields["imap.host"]
    missing = api["admin"].post("/api/v1/services", json={"name": "X"})
    assert set(missing.get_json()["fields"]) == {"imap", "smtp"}
    assert api["admin"].post("/api/v1/services", json=[1, 2]).status_code == 400


def test_editing_a_server_moves_connected_mailboxes_without_reconnecting(api, app):
    sid = api["admin"].post("/api/v1/services", json=CORP).get_json()["id"]
    acc = (
        api["alice"]
        .post("/api/v1/accounts", json={"service_id": sid, "username": "alice@acme.test", "password": "pw-1"})
        .get_json()
    )
    patched = api["admin"].patch(
        f"/api/v1/services/{sid}",
        json={"imap": {"host": "mail2.acme.test", "port": 143, "security": "starttls"}},
    )
    assert patched.status_code == 200
    again = api["alice"].get(f"/api/v1/accounts/{acc['id']}").get_json()
    assert again["imap"] == {"host": "mail2.acme.test", "port": 143, "security": "starttls"}
    assert again["state"] == acc["state"] and again["has_password"]
    # The settings a worker builds at the next connection come from the service too.
    account = app.extensions["sqlalchemy"].session.get(Account, acc["id"])
    assert account.server_settings("imap").host == "mail2.acme.test"


def test_builtin_services_can_be_hidden_but_not_edited_or_deleted(api):
    gmail = _service(api["admin"], "gmail")
    edit = api["admin"].patch(
        f"/api/v1/services/{gmail['id']}", json={"imap": {"host": "x.test", "port": 1, "security": "tls"}}
    )
    assert edit.status_code == 403
    assert api["admin"].delete(f"/api/v1/services/{gmail['id']}").status_code == 403
    hide = api["admin"].patch(f"/api/v1/services/{gmail['id']}", json={"hidden": True})
    assert hide.status_code == 200 and hide.get_json()["hidden"] is True
    assert "gmail" not in [s["key"] for s in api["alice"].get("/api/v1/services").get_json()]
    assert "gmail" in [s["key"] for s in api["admin"].get("/api/v1/services").get_json()]


def test_hidden_service_refuses_new_mailboxes_but_keeps_existing_ones(api):
    sid = api["admin"].post("/api/v1/services", json=CORP).get_json()["id"]
    acc = (
        api["alice"]
        .post("/api/v1/accounts", json={"service_id": sid, "username": "alice@acme.test", "password": "pw-1"})
        .get_json()
    )
    assert api["admin"].patch(f"/api/v1/services/{sid}", json={"hidden": True}).status_code == 200
    refused = api["bob"].post(
        "/api/v1/accounts", json={"service_id": sid, "username": "bob@acme.test", "password": "p"}
    )
    assert refused.status_code == 403
    assert refused.get_json()["fields"] == {"service_id": "hidden service"}
    kept = api["alice"].get(f"/api/v1/accounts/{acc['id']}").get_json()
    assert kept["service_id"] == sid and kept["state"] != "service_removed"
    assert (
        api["alice"].patch(f"/api/v1/accounts/{acc['id']}", json={"description": "still here"}).status_code
        == 200
    )
    assert api["alice"].get(f"/api/v1/services/{sid}").status_code == 404
    api["admin"].patch(f"/api/v1/services/{sid}", json={"hidden": False})
    assert (
        api["bob"]
        .post("/api/v1/accounts", json={"service_id": sid, "username": "bob@acme.test", "password": "p"})
        .status_code
        == 201
    )


def test_deleting_a_server_lists_and_marks_the_affected_mailboxes(api, users):
    sid = api["admin"].post("/api/v1/services", json=CORP).get_json()["id"]
    a = (
        api["alice"]
        .post("/api/v1/accounts", json={"service_id": sid, "username": "alice@acme.test", "password": "p"})
        .get_json()
    )
    b = (
        api["bob"]
        .post("/api/v1/accounts", json={"service_id": sid, "username": "bob@acme.test", "password": "p"})
        .get_json()
    )
    affected = api["admin"].get(f"/api/v1/services/{sid}/affected-accounts").get_json()
    assert {(x["user"], x["email"]) for x in affected} == {
        ("alice", "alice@acme.test"),
        ("bob", "bob@acme.test"),
    }
    deleted = api["admin"].delete(f"/api/v1/services/{sid}")
    assert deleted.status_code == 200 and sorted(deleted.get_json()["affected_accounts"]) == sorted(
        [a["id"], b["id"]]
    )
    assert api["admin"].get(f"/api/v1/services/{sid}").status_code == 404
    lost = api["alice"].get(f"/api/v1/accounts/{a['id']}").get_json()
    assert lost["state"] == "service_removed" and lost["service_id"] is None
    assert lost["service_name"] == "ACME mail" and "ACME mail" in lost["last_error"]
    assert Notification.query.filter_by(user_id=users["alice"]["id"], kind="service_removed").count() == 1


def test_unknown_service_ids_answer_404(api):
    assert api["admin"].get("/api/v1/services/999999").status_code == 404
    assert api["admin"].patch("/api/v1/services/999999", json={"hidden": True}).status_code == 404
    assert api["admin"].delete("/api/v1/services/999999").status_code == 404


def test_settings_are_validated_and_stored(api):
    assert api["admin"].get("/api/v1/settings").get_json()["allow_manual_entry"] is True
    bad = api["admin"].patch("/api/v1/settings", json={"allow_manual_entry": "no", "colour": 1})
    assert bad.status_code == 422 and set(bad.get_json()["fields"]) == {"allow_manual_entry", "colour"}
    assert api["admin"].get("/api/v1/settings").get_json()["allow_manual_entry"] is True
    ok = api["admin"].patch("/api/v1/settings", json={"allow_manual_entry": False})
    assert ok.status_code == 200 and ok.get_json()["allow_manual_entry"] is False
