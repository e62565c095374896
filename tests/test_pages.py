"""The HTML pages through Flask's test client: forms, field errors, roles, notifications."""

from __future__ import annotations

import re

import pytest

from tests.conftest import login
from webapp.models import Account, Service


def _add_form(**overrides):
    data = {
        "name": "ACME mail",
        "imap_server": "imap.acme.test:993",
        "imap_security": "tls",
        "smtp_server": "smtp.acme.test:465",
        "smtp_use_tls": "y",
    }
    data.update(overrides)
    return data


def _corporate_services() -> int:
    """The services an administrator added (built-in ones are listed on first use)."""
    return sum(not service.is_builtin for service in Service.query)


def test_pages_need_a_login_and_admin_pages_need_an_admin(client, users):
    assert client.get("/mailboxes/").status_code == 302
    assert "/login" in client.get("/admin/email/services").headers["Location"]
    login(client, "alice", "alice-console-pw")
    assert client.get("/mailboxes/").status_code == 200
    assert client.get("/admin/email/services").status_code == 403
    assert client.post("/admin/email/services/new", data=_add_form()).status_code == 403
    assert client.post("/admin/email/settings", data={"allow_manual_entry": ""}).status_code == 403


def test_wrong_password_is_refused_at_login(client, users):
    response = client.post("/login", data={"username": "alice", "password": "nope"})
    assert response.status_code == 200 and "Wrong username or password." in response.get_data(as_text=True)


def test_admin_form_understands_ssl_prefix_and_maps_use_tls_to_the_port(client, users, app):
    login(client, "admin", "admin-console-pw")
    response = client.post(
        "/admin/email/services/new",
        data=_add_form(
            smtp_server="ssl://smtps.aruba.it", imap_server="imap.acme.test:143", imap_security="starttls"
        ),
    )
    assert response.status_code == 302
    service = Service.query.filter_by(name="ACME mail").one()
    assert (service.smtp_host, service.smtp_port, service.smtp_security) == ("smtps.aruba.it", 465, "tls")
    assert (service.imap_host, service.imap_port, service.imap_security) == (
        "imap.acme.test",
        143,
        "starttls",
    )
    client.post(
        "/admin/email/services/new", data=_add_form(name="Submission", smtp_server="smtp.acme.test:587")
    )
    assert Service.query.filter_by(name="Submission").one().smtp_security == "starttls"
    client.post(
        "/admin/email/services/new",
        data=_add_form(name="Plain", smtp_server="smtp.acme.test:25", smtp_use_tls=""),
    )
    assert Service.query.filter_by(name="Plain").one().smtp_security == "none"


def test_admin_form_errors_are_shown_under_their_field_and_nothing_is_stored(client, users):
    login(client, "admin", "admin-console-pw")
    before = _corporate_services()
    response = client.post(
        "/admin/email/services/new",
        data=_add_form(
            name="", imap_server="imap.acme.test", smtp_server="ssl://smtps.aruba.it", smtp_use_tls=""
        ),
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    errors = dict(re.findall(r'class="error" data-field="(\w+)">([^<]+)<', html))
    assert set(errors) == {"name", "imap_server", "smtp_server"}
    assert "Add the port" in errors["imap_server"]
    assert "means TLS" in errors["smtp_server"]
    assert _corporate_services() == before


def test_delete_confirmation_lists_affected_users_and_they_are_told_at_login(client, users, api, app):
    sid = (
        api["admin"]
        .post(
            "/api/v1/services",
            json={
                "name": "ACME mail",
                "imap": {"host": "imap.acme.test", "port": 993, "security": "tls"},
                "smtp": {"host": "smtp.acme.test", "port": 465, "security": "tls"},
            },
        )
        .get_json()["id"]
    )
    api["alice"].post(
        "/api/v1/accounts", json={"service_id": sid, "username": "alice@acme.test", "password": "p"}
    )
    login(client, "admin", "admin-console-pw")
    page = client.get(f"/admin/email/services/{sid}/delete").get_data(as_text=True)
    assert "alice" in page and "alice@acme.test" in page and "bob" not in page
    assert client.post(f"/admin/email/services/{sid}/delete").status_code == 302
    client.post("/logout")
    landing = login(client, "alice", "alice-console-pw")
    mailboxes = client.get(landing.headers["Location"]).get_data(as_text=True)
    assert "ACME mail" in mailboxes and "was removed by an administrator" in mailboxes
    assert "Service removed" in mailboxes
    assert Account.query.one().state == "service_removed"


def test_connect_form_offers_visible_services_and_other_only_when_allowed(client, users, api):
    sid = (
        api["admin"]
        .post(
            "/api/v1/services",
            json={
                "name": "Secret server",
                "imap": {"host": "imap.acme.test", "port": 993, "security": "tls"},
                "smtp": {"host": "smtp.acme.test", "port": 465, "security": "tls"},
            },
        )
        .get_json()["id"]
    )
    login(client, "alice", "alice-console-pw")
    html = client.get("/mailboxes/connect").get_data(as_text=True)
    assert "Secret server" in html and 'value="other"' in html
    api["admin"].patch(f"/api/v1/services/{sid}", json={"hidden": True})
    api["admin"].patch("/api/v1/settings", json={"allow_manual_entry": False})
    html = client.get("/mailboxes/connect").get_data(as_text=True)
    assert "Secret server" not in html and 'value="other"' not in html
    refused = client.post(
        "/mailboxes/connect",
        data={
            "service": "other",
            "username": "alice@acme.test",
            "password": "p",
            "imap_server": "imap.acme.test:993",
            "imap_security": "tls",
            "smtp_server": "smtp.acme.test:465",
            "smtp_use_tls": "y",
        },
    )
    assert refused.status_code == 200 and Account.query.count() == 0


def test_connecting_with_the_form_makes_the_first_mailbox_main(client, users, api):
    gmail = next(s["id"] for s in api["alice"].get("/api/v1/services").get_json() if s["key"] == "gmail")
    login(client, "alice", "alice-console-pw")
    response = client.post(
        "/mailboxes/connect",
        data={"service": str(gmail), "username": "alice@gmail.com", "password": "abcd efgh ijkl mnop"},
    )
    assert response.status_code == 302
    account = Account.query.one()
    assert account.is_main and account.email == "alice@gmail.com" and account.description == "alice@gmail.com"
    html = client.get("/mailboxes/").get_data(as_text=True)
    assert "abcd efgh" not in html and "Main" in html
    edit = client.get(f"/mailboxes/{account.id}/edit").get_data(as_text=True)
    assert "abcd efgh" not in edit  # a password is never rendered back
    bad = client.post(
        "/mailboxes/connect",
        data={
            "service": "other",
            "username": "alice@acme.test",
            "password": "p",
            "imap_server": "imap.acme.test",
            "imap_security": "tls",
            "smtp_server": "smtp.acme.test:465",
            "smtp_use_tls": "y",
        },
    )
    assert 'data-field="imap_server"' in bad.get_data(as_text=True)


def test_csrf_token_is_required_on_forms(make_app):
    from webapp.users import create_user

    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        create_user("admin", "admin-console-pw", admin=True)
    client = app.test_client()
    assert (
        client.post("/login", data={"username": "admin", "password": "admin-console-pw"}).status_code == 400
    )
    # The API uses bearer tokens and is exempt.
    assert (
        client.post("/api/v1/tokens", json={"username": "admin", "password": "admin-console-pw"}).status_code
        == 201
    )


def test_admin_settings_form_saves_defaults_and_reports_field_errors(client, users, api):
    gmail = next(s["id"] for s in api["alice"].get("/api/v1/services").get_json() if s["key"] == "gmail")
    acc = (
        api["alice"]
        .post("/api/v1/accounts", json={"service_id": gmail, "username": "alice@gmail.com", "password": "p"})
        .get_json()
    )
    login(client, "admin", "admin-console-pw")
    page = client.get("/admin/email/services").get_data(as_text=True)
    assert "alice@gmail.com (alice)" in page
    ok = client.post(
        "/admin/email/settings",
        data={
            "allow_manual_entry": "y",
            "default_incoming_account_id": str(acc["id"]),
            "default_outgoing_account_id": "",
            "allowed_internal_hosts": "127.0.0.1\n10.0.0.0/8",
            "connection_timeout": "20",
        },
    )
    assert ok.status_code == 302
    settings = api["admin"].get("/api/v1/settings").get_json()
    assert (
        settings["default_incoming_account_id"] == acc["id"]
        and settings["default_outgoing_account_id"] is None
    )
    assert (
        settings["allowed_internal_hosts"] == ["127.0.0.1/32", "10.0.0.0/8"]
        and settings["connection_timeout"] == 20
    )
    bad = client.post(
        "/admin/email/settings",
        data={
            "allow_manual_entry": "y",
            "default_incoming_account_id": "",
            "default_outgoing_account_id": "",
            "allowed_internal_hosts": "not a host!",
            "connection_timeout": "500",
        },
    )
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert 'data-field="allowed_internal_hosts"' in html and 'data-field="connection_timeout"' in html
    assert api["admin"].get("/api/v1/settings").get_json()["connection_timeout"] == 20


@pytest.mark.parametrize(
    "security, port, shown",
    [
        ("tls", 2465, "ssl://smtp.acme.test:2465"),
        ("starttls", 465, "starttls://smtp.acme.test:465"),
        ("tls", 465, "smtp.acme.test:465"),
        ("starttls", 587, "smtp.acme.test:587"),
    ],
)
def test_saving_the_edit_form_unchanged_keeps_the_smtp_tls_mode(client, users, api, security, port, shown):
    """The form's only SMTP control is "Use TLS": an unusual port/mode pair must survive a save."""
    api["admin"].patch("/api/v1/settings", json={"allow_manual_entry": True})
    created = api["alice"].post(
        "/api/v1/accounts",
        json={
            "manual": {
                "imap": {"host": "imap.acme.test", "port": 993, "security": "tls"},
                "smtp": {"host": "smtp.acme.test", "port": port, "security": security},
            },
            "username": "alice@acme.test",
            "password": "pw",
        },
    )
    assert created.status_code == 201, created.get_json()
    account_id = created.get_json()["id"]
    login(client, "alice", "alice-console-pw")
    page = client.get(f"/mailboxes/{account_id}/edit").get_data(as_text=True)
    assert f'value="{shown}"' in page
    saved = client.post(
        f"/mailboxes/{account_id}/edit",
        data={
            "service": "other",
            "username": "alice@acme.test",
            "email": "alice@acme.test",
            "imap_server": "imap.acme.test:993",
            "imap_security": "tls",
            "smtp_server": shown,
            "smtp_use_tls": "y",
            "incoming_protocol": "imap",
            "active": "y",
            "smtp_requires_auth": "y",
            "pop3_leave_on_server": "y",
        },
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)[-3000:]
    smtp = api["alice"].get(f"/api/v1/accounts/{account_id}").get_json()["smtp"]
    assert (smtp["port"], smtp["security"]) == (port, security)


def _field_errors(response) -> dict[str, str]:
    return dict(re.findall(r'class="error" data-field="(\w+)">([^<]+)<', response.get_data(as_text=True)))


def test_user_and_password_forms_name_every_wrong_field_at_once(client, users):
    """A taken name, a short password and a differing repetition: all three said in one answer,
    not the password's alone; the same on the reset and own-password forms."""
    login(client, "admin", "admin-console-pw")
    made = client.post("/admin/email/users/new", data={"username": "alice", "password": "short", "confirm": "other"})
    errors = _field_errors(made)
    assert made.status_code == 422 and set(errors) == {"username", "password", "confirm"}, errors
    assert "exists already" in errors["username"] and "at least 12" in errors["password"]
    assert "differ" in errors["confirm"]
    reset = client.post(f"/admin/email/users/{users['alice']['id']}/password", data={"password": "short", "confirm": "other"})
    assert reset.status_code == 422 and set(_field_errors(reset)) == {"password", "confirm"}
    own = client.post("/profile/password", data={"current_password": "wrong", "new_password": "short", "confirm": "x"})
    assert own.status_code == 422 and set(_field_errors(own)) == {"current_password", "new_password", "confirm"}
    assert client.post("/admin/email/users/new", data={"username": "alice", "password": "long-enough-pw",
                                                       "confirm": "long-enough-pw"}).status_code == 409  # fmt: skip


def test_service_form_names_every_wrong_field_at_once(client, users):
    """A security choice the form does not offer, a taken name, a bad server and a bad connection
    limit: each under its field, none hiding the others."""
    login(client, "admin", "admin-console-pw")
    assert client.post("/admin/email/services/new", data=_add_form()).status_code == 302
    before = _corporate_services()
    response = client.post(
        "/admin/email/services/new",
        data=_add_form(imap_security="rot13", smtp_server="smtp.acme.test", max_connections="many"),
    )
    errors = _field_errors(response)
    assert set(errors) == {"name", "imap_security", "smtp_server", "max_connections"}, errors
    assert "exists already" in errors["name"] and "whole number" in errors["max_connections"]
    assert _corporate_services() == before


@pytest.mark.parametrize("who", ["alice", "admin"])
def test_nul_in_any_page_form_is_a_4xx_page_in_the_layout_naming_the_field(client, users, app, who):
    """Every page that takes a POST: a NUL in a form field (plain or multipart, with a file) is
    refused before the view, in the console's layout, with the field named; never a 500 or a bare
    error. A form page (input_guard.form_page) shows it on its own form, in the layout, instead.
    (The API's JSON answers are tested in test_malformed_input.py.)"""
    import io

    app.config["WTF_CSRF_ENABLED"] = False  # the guard must answer before the CSRF check matters
    login(client, who, users[who]["password"])
    rules = [r for r in app.url_map.iter_rules() if "POST" in r.methods and not r.rule.startswith("/api/")]
    assert len(rules) > 30
    for rule in rules:
        url = re.sub(r"<[^>]+>", lambda g: "1" if "int:" in g.group(0) else "x", rule.rule)
        for body in ({"data": {"name": "a\x00b"}},
                     {"data": {"subject": "a\x00b", "file": (io.BytesIO(b"x"), "a.txt")}, "content_type": "multipart/form-data"}):  # fmt: skip
            response = client.post(url, **body)
            html = response.get_data(as_text=True)
            form_page = getattr(app.view_functions[rule.endpoint], "shows_form_problems", False)
            if form_page and response.status_code in (200, 422) and not response.is_json:
                # A form page (input_guard.form_page) shows the problem on its own form instead.
                assert "<footer>" in html and "must not contain NUL characters" in html, (url, html[:200])
                continue
            assert response.status_code in (400, 403, 404, 405, 422), (url, response.status_code)
            assert "<footer>" in html or response.is_json, (url, html[:200])
            if response.status_code == 422 and not response.is_json:
                assert re.search(r"<li><strong>(name|subject)</strong>", html), url


def test_state_and_mark_words_agree_with_what_they_describe_in_italian_and_polish(client, users):
    """Italian "casella" is feminine (a disabled mailbox is "Disattivata", its checkbox "Attiva");
    one message is singular (a flagged one "Contrassegnato", not the view's "Contrassegnati"; pl an
    unread "wiadomość" is "Nieprzeczytana"); a token is masculine in Polish ("Aktywny", beside
    "Unieważniony"), while the Flagged view keeps its plural."""
    from tests.support.message_factory import make_account, make_folder, make_message
    from webapp.api_tokens import issue_token
    from webapp.extensions import db

    alice = users["alice"]["user"]
    account = make_account(alice.id, "alice@work.example")
    account.state = "disabled"
    make_message(make_folder(account), subject="Urgent", flagged=True, seen=False)
    db.session.commit()
    issue_token(alice)
    login(client, "alice", users["alice"]["password"])
    it, pl = {"Accept-Language": "it"}, {"Accept-Language": "pl"}

    mailboxes = client.get("/mailboxes/", headers=it).get_data(as_text=True)
    assert re.search(r'state-disabled"[^>]*>.*?<span class="word">Disattivata</span>', mailboxes, re.S)
    connect = client.get("/mailboxes/connect", headers=it).get_data(as_text=True)
    assert re.search(r'id="active"[^>]*>\s*Attiva</label>', connect)
    messages = client.get("/messages/?role=inbox", headers=it).get_data(as_text=True)
    row = messages.split('id="messages"')[1].split("</table>")[0]
    assert 'aria-label="Contrassegnato"' in row and "Contrassegnati" not in row
    assert ">Contrassegnati</a>" in messages.split('id="mail-nav"')[1]  # the view: plural
    polish = client.get("/messages/?role=inbox", headers=pl).get_data(as_text=True).split('id="messages"')[1].split("</table>")[0]
    assert 'aria-label="Nieprzeczytana"' in polish and 'aria-label="Oznaczona flagą"' in polish
    tokens = client.get("/profile/tokens", headers=pl).get_data(as_text=True)
    assert '<span class="word">Aktywny</span>' in tokens


def test_the_scheduler_heartbeat_is_a_readable_utc_time_in_the_readers_language(client, users):
    """It was shown as the raw ``2026-11-29T22:45:50+00:00 (UTC)``."""
    from webapp.jobs.schedule import heartbeat

    stamp = heartbeat()  # what `mailroom cron` has the worker run every minute
    login(client, "admin", "admin-console-pw")
    shown = {}
    for language in ("en", "it"):
        page = client.get("/admin/email/services", headers={"Accept-Language": language}).get_data(as_text=True)
        shown[language] = re.search(r'<p class="help">[^<]*?(\d[^<]*?)</p>', page).group(1)
        assert stamp not in page and "+00:00" not in shown[language]
    year, hour = stamp[:4], stamp[11:13]
    assert year in shown["en"] and "(UTC)" in shown["en"] and re.search(r"\d{1,2}:\d\d:\d\d\s[AP]M", shown["en"])
    assert f"{hour}:" in shown["it"] and "(UTC)" in shown["it"]


def test_settings_form_names_every_wrong_field_at_once(client, users):
    """A timeout that is not a number (refused by the form), a negative sync interval and an
    unreadable internal host (refused by the store's rules): all three named, nothing saved."""
    from webapp import settings_store

    login(client, "admin", "admin-console-pw")
    before = settings_store.all_settings()
    response = client.post("/admin/email/settings", data={
        "connection_timeout": "soon", "sync_interval_minutes": "-5", "allowed_internal_hosts": "not a host!",
        "default_incoming_account_id": "", "default_outgoing_account_id": ""})  # fmt: skip
    errors = _field_errors(response)
    assert response.status_code == 422
    assert {"connection_timeout", "sync_interval_minutes", "allowed_internal_hosts"} <= set(errors), errors
    assert settings_store.all_settings() == before
