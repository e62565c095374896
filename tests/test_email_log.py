"""The email log: what is recorded, who sees what, filters, and the default mailboxes."""

from webapp.models import LogEntry

CORP = {
    "name": "ACME mail",
    "imap": {"host": "imap.acme.test", "port": 993, "security": "tls"},
    "smtp": {"host": "smtp.acme.test", "port": 465, "security": "tls"},
}


def _logs(api, user, **params):
    response = api[user].get("/api/v1/logs", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["entries"]


def test_admin_changes_are_logged_with_who_made_them(api):
    sid = api["admin"].post("/api/v1/services", json=CORP).get_json()["id"]
    api["admin"].patch(f"/api/v1/services/{sid}", json={"hidden": True})
    api["admin"].patch("/api/v1/settings", json={"allow_manual_entry": False})
    api["admin"].delete(f"/api/v1/services/{sid}")
    entries = _logs(api, "admin", source="Admin")
    messages = [e["message"] for e in entries]
    assert any('Added the corporate server "ACME mail"' in m for m in messages)
    assert any(m.startswith("Hid the mail service") for m in messages)
    assert (
        'Setting "Allow entering details of the mailing server manually" changed from yes to no.' in messages
    )
    assert any(m.startswith("Deleted the corporate server") for m in messages)
    assert {e["created_by"] for e in entries} == {"admin"}
    assert entries[0]["id"] > entries[-1]["id"]  # newest first


def test_users_see_only_their_own_mailboxes_entries(api):
    gmail = next(s["id"] for s in api["alice"].get("/api/v1/services").get_json() if s["key"] == "gmail")
    api["alice"].post(
        "/api/v1/accounts", json={"service_id": gmail, "username": "alice@gmail.com", "password": "p"}
    )
    api["bob"].post(
        "/api/v1/accounts", json={"service_id": gmail, "username": "bob@gmail.com", "password": "p"}
    )
    api["admin"].post("/api/v1/services", json=CORP)
    alice = _logs(api, "alice")
    assert [e["account"] for e in alice] == ["alice@gmail.com"]
    assert all(e["source"] != "Admin" for e in alice)
    assert {e["account"] for e in _logs(api, "admin", source="Email Logger")} == {
        "alice@gmail.com",
        "bob@gmail.com",
    }


def test_log_filters_are_validated_and_applied(api, users):
    api["admin"].post("/api/v1/services", json=CORP)
    assert _logs(api, "admin", level="warning") == []
    assert len(_logs(api, "admin", level="info")) == 1
    assert _logs(api, "admin", since="2999-01-01T00:00:00Z") == []
    assert len(_logs(api, "admin", until="2999-01-01T00:00:00Z", q="acme")) == 1
    assert len(_logs(api, "admin", user_id=users["alice"]["id"])) == 0
    bad = api["admin"].get(
        "/api/v1/logs", query_string={"level": "loud", "since": "yesterday", "limit": 0, "source": "X"}
    )
    assert bad.status_code == 422
    assert set(bad.get_json()["fields"]) == {"level", "since", "limit", "source"}


def test_log_pages_by_cursor(api, app):
    from webapp import email_log
    from webapp.models import LogLevel, LogSource

    for i in range(5):
        email_log.record(LogSource.SYNC, LogLevel.INFO, f"entry {i}")
    app.extensions["sqlalchemy"].session.commit()
    first = api["admin"].get("/api/v1/logs", query_string={"limit": 2}).get_json()
    second = (
        api["admin"].get("/api/v1/logs", query_string={"limit": 2, "cursor": first["next_cursor"]}).get_json()
    )
    assert [e["message"] for e in first["entries"] + second["entries"]] == [
        f"entry {i}" for i in (4, 3, 2, 1)
    ]


def test_default_mailboxes_are_chosen_and_cleared_with_a_warning_when_deleted(api):
    gmail = next(s["id"] for s in api["alice"].get("/api/v1/services").get_json() if s["key"] == "gmail")
    acc = (
        api["alice"]
        .post("/api/v1/accounts", json={"service_id": gmail, "username": "alice@gmail.com", "password": "p"})
        .get_json()
    )
    bad = api["admin"].patch(
        "/api/v1/settings", json={"default_incoming_account_id": 999999, "default_outgoing_account_id": "1"}
    )
    assert bad.status_code == 422 and set(bad.get_json()["fields"]) == {
        "default_incoming_account_id",
        "default_outgoing_account_id",
    }
    ok = api["admin"].patch(
        "/api/v1/settings",
        json={"default_incoming_account_id": acc["id"], "default_outgoing_account_id": acc["id"]},
    )
    assert ok.get_json()["default_incoming_account_id"] == acc["id"]
    api["alice"].delete(f"/api/v1/accounts/{acc['id']}")
    settings = api["admin"].get("/api/v1/settings").get_json()
    assert settings["default_incoming_account_id"] is None and settings["default_outgoing_account_id"] is None
    warnings = LogEntry.query.filter_by(level="warning", source="Admin").all()
    assert sorted(w.message.split(" mailbox")[0] for w in warnings) == [
        "The default incoming",
        "The default outgoing",
    ]


def test_internal_hosts_setting_accepts_hosts_and_networks(api):
    ok = api["admin"].patch(
        "/api/v1/settings", json={"allowed_internal_hosts": ["127.0.0.1", "10.1.0.0/16", "Mail.Corp.Local"]}
    )
    assert ok.get_json()["allowed_internal_hosts"] == ["127.0.0.1/32", "10.1.0.0/16", "mail.corp.local"]
    bad = api["admin"].patch("/api/v1/settings", json={"allowed_internal_hosts": ["not a host!"]})
    assert bad.status_code == 422 and "allowed_internal_hosts" in bad.get_json()["fields"]


def test_log_page_filters_for_admin_and_user(client, users, api):
    from tests.conftest import login

    api["admin"].post("/api/v1/services", json=CORP)
    login(client, "admin", "admin-console-pw")
    html = client.get("/admin/email/log?source=Admin").get_data(as_text=True)
    assert "Added the corporate server" in html
    assert "Added the corporate server" not in client.get("/admin/email/log?source=Sync").get_data(
        as_text=True
    )
    assert 'data-field="level"' in client.get("/admin/email/log?level=loud").get_data(as_text=True)
    client.post("/logout")
    login(client, "alice", "alice-console-pw")
    assert client.get("/admin/email/log").status_code == 403
    assert "Added the corporate server" not in client.get("/mailboxes/log").get_data(as_text=True)


def test_a_setting_change_is_logged_with_its_label_and_the_mailbox_in_the_readers_language(
    client, users, api
):
    """Not "Setting default_outgoing_account_id changed from None to 1": the field's label, the
    mailbox's address and owner, "none" when unset, translated when the log is shown."""
    from tests.conftest import login
    from tests.support.message_factory import make_account

    account = make_account(users["alice"]["id"], "alice@example.com")
    assert (
        api["admin"].patch("/api/v1/settings", json={"default_outgoing_account_id": account.id}).status_code
        == 200
    )
    stored = 'Setting "Default outgoing mailbox" changed from none to alice@example.com (alice).'
    assert stored in [e["message"] for e in _logs(api, "admin", source="Admin")]
    login(client, "admin", "admin-console-pw")
    italian = client.get("/admin/email/log?source=Admin", headers={"Accept-Language": "it"}).get_data(
        as_text=True
    )
    assert (
        "Impostazione «Casella predefinita per la posta in uscita» cambiata da nessuno a alice@example.com (alice)."
        in italian
    )
    polish = client.get("/admin/email/log?source=Admin", headers={"Accept-Language": "pl"}).get_data(
        as_text=True
    )
    assert (
        "Zmieniono ustawienie „Domyślne konto dla poczty wychodzącej”: brak → alice@example.com (alice)."
        in polish
    )


def test_the_default_mailboxes_say_what_they_are_for(client, users):
    from tests.conftest import login

    login(client, "admin", "admin-console-pw")
    page = client.get("/admin/email/services").get_data(as_text=True)
    assert "The mailbox your business system reads from by default." in page
    assert "The mailbox your business system sends through by default." in page
