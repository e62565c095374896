"""Connection tests end to end: API → RQ job on a real worker → real Dovecot / aiosmtpd → job result,
mailbox state and email log.

Every failure class of issue 3 comes from a server set up to fail that way; the
job runs on a real RQ worker (``tests.support.job_worker``), never called directly.
"""

from __future__ import annotations

import pytest

from tests.conftest import Api, login
from tests.servers.net import free_ports
from tests.support.job_worker import run_burst

PASSWORD = "secret-alice-pw"  # the session Dovecot's and SMTP server's password for alice


@pytest.fixture
def japp(make_app, certs):
    """The app trusting the test CA (MAIL_CA_FILE), 127.0.0.1/.2 allowed for manual servers."""
    from webapp import settings_store
    from webapp.extensions import db

    app = make_app(MAIL_CA_FILE=str(certs.ca_cert))
    with app.app_context():
        settings_store.update({"allowed_internal_hosts": ["127.0.0.1", "127.0.0.2"], "connection_timeout": 5})
        yield app
        db.session.remove()


@pytest.fixture
def people(japp):
    from webapp.api_tokens import issue_token
    from webapp.extensions import db
    from webapp.users import create_user

    client = japp.test_client()
    out = {}
    for name, admin in (("admin", True), ("alice", False), ("bob", False)):
        user = create_user(name, f"{name}-console-pw", admin=admin)
        out[name] = Api(client, issue_token(user))
        out[name].user_id = user.id
    db.session.commit()
    return out


def manual(imap=None, smtp=None, pop3=None) -> dict:
    out = {}
    for key, value in (("imap", imap), ("smtp", smtp), ("pop3", pop3)):
        if value is not None:
            out[key] = {"host": value[0], "port": value[1], "security": value[2]}
    return out


def make_mailbox(api: Api, imap, smtp, password: str = PASSWORD, login: str = "alice", **extra) -> int:
    body = {
        "manual": manual(imap, smtp, extra.pop("pop3", None)),
        "username": login,
        "password": password,
        "email": f"{login}@example.com",
        **extra,
    }
    response = api.post("/api/v1/accounts", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def run_test(app, api: Api, account_id: int) -> dict:
    """POST the test, run the queue with a real worker, answer the job status body."""
    started = api.post(f"/api/v1/accounts/{account_id}/test")
    assert started.status_code == 202, started.get_json()
    body = started.get_json()
    assert set(body) == {"job_id", "status_url"}
    assert body["status_url"] == f"/api/v1/jobs/{body['job_id']}"
    assert started.headers["Location"].endswith(body["status_url"])
    queued = api.get(body["status_url"]).get_json()
    assert queued["status"] == "queued" and queued["result"] is None
    run_burst(app)
    status = api.get(body["status_url"])
    assert status.status_code == 200
    out = status.get_json()
    out["job_id"] = body["job_id"]
    return out


def account(api: Api, account_id: int) -> dict:
    return api.get(f"/api/v1/accounts/{account_id}").get_json()


def log_entries(api: Api, **filters) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    return api.get("/api/v1/logs" + (f"?{query}" if query else "")).get_json()["entries"]


def imaps(dovecot):
    return ("127.0.0.1", dovecot.imaps_port, "tls")


def smtps(smtp):
    return ("127.0.0.1", smtp.smtps_port, "tls")


# --- success --------------------------------------------------------------------------------


def test_a_good_mailbox_is_connected_with_steps_state_and_log(japp, people, dovecot, smtp_server):
    alice = people["alice"]
    account_id = make_mailbox(alice, imaps(dovecot), ("127.0.0.1", smtp_server.starttls_port, "starttls"))
    assert account(alice, account_id)["state"] == "new"

    job = run_test(japp, alice, account_id)

    assert job["status"] == "finished" and job["kind"] == "connection_test"
    result = job["result"]
    assert result["ok"] is True and set(result["checks"]) == {"imap", "smtp"}
    imap, smtp = result["checks"]["imap"], result["checks"]["smtp"]
    assert [s["name"] for s in imap["steps"]] == ["connect", "tls", "capabilities", "login", "list"]
    assert [s["name"] for s in smtp["steps"]] == ["connect", "ehlo", "tls", "login"]
    for check in (imap, smtp):
        assert check["ok"] and check["error"] is None
        assert all(s["ok"] and s["duration_ms"] >= 0 for s in check["steps"])
        assert check["steps"][0]["duration_ms"] > 0
    assert imap["info"]["certificate_verified"] is True  # through MAIL_CA_FILE, not by switching checks off
    assert smtp_server.messages == []  # a test sends no mail

    state = account(alice, account_id)
    assert state["state"] == "connected" and state["last_error"] is None

    entries = log_entries(alice)
    by_source = {e["source"]: e for e in entries}
    assert {"IMAP Auth", "SMTP Auth"} <= set(by_source)
    for source in ("IMAP Auth", "SMTP Auth"):
        entry = by_source[source]
        assert entry["level"] == "info" and "connection test passed" in entry["message"]
        assert entry["account_id"] == account_id and entry["created_by"] == "system"
        assert " ms" in entry["message"]  # the step durations


def test_pop3_incoming_is_checked_with_stat(japp, people, clean_dovecot, smtp_server):
    clean_dovecot.add_messages("alice", 2)
    alice = people["alice"]
    account_id = make_mailbox(
        alice,
        imaps(clean_dovecot),
        smtps(smtp_server),
        pop3=("127.0.0.1", clean_dovecot.pop3s_port, "tls"),
        incoming_protocol="pop3",
    )
    result = run_test(japp, alice, account_id)["result"]
    assert result["ok"] and set(result["checks"]) == {"pop3", "smtp"}
    assert [s["name"] for s in result["checks"]["pop3"]["steps"]][-1] == "stat"
    assert result["checks"]["pop3"]["info"]["messages"] == 2
    assert "POP3 Auth" in {e["source"] for e in log_entries(alice)}


# --- failure classes ------------------------------------------------------------------------


def _failure(job: dict, protocol: str, error_class: str, field: str, sentence: str) -> dict:
    assert job["status"] == "finished", job
    result = job["result"]
    assert result["ok"] is False
    check = result["checks"][protocol]
    assert check["ok"] is False, check
    error = check["error"]
    assert error["class"] == error_class, error
    assert sentence in error["message"] or sentence in error["sentence"], error
    assert error["hints"] and all(isinstance(h, str) and h for h in error["hints"])
    assert error["field"] == field, error
    assert check["steps"][-1]["ok"] is False and check["steps"][-1]["duration_ms"] >= 0
    return error


def test_wrong_password_is_an_auth_error(japp, people, dovecot, smtp_server):
    alice = people["alice"]
    account_id = make_mailbox(alice, imaps(dovecot), smtps(smtp_server), password="not-alices-password-7")
    job = run_test(japp, alice, account_id)
    error = _failure(job, "imap", "auth", "password", "incorrect credentials")
    assert error["raw"]  # the server's own words
    _failure(job, "smtp", "auth", "password", "incorrect credentials")
    state = account(alice, account_id)
    assert state["state"] == "auth_error"
    assert state["last_error"].startswith("IMAP: ") and "incorrect credentials" in state["last_error"]
    errors = [e for e in log_entries(alice) if e["level"] == "error"]
    assert {e["source"] for e in errors} == {"IMAP Auth", "SMTP Auth"}
    assert all("connection test failed" in e["message"] for e in errors)


def test_closed_port_is_refused(japp, people, smtp_server):
    (port,) = free_ports(1)
    alice = people["alice"]
    account_id = make_mailbox(alice, ("127.0.0.1", port, "tls"), smtps(smtp_server))
    job = run_test(japp, alice, account_id)
    _failure(job, "imap", "refused", "imap.port", "refused")
    assert job["result"]["checks"]["smtp"]["ok"] is True
    state = account(alice, account_id)
    assert state["state"] == "connection_error" and "refused" in state["last_error"]


def test_tls_on_the_plain_port_is_a_tls_mode_error_not_a_timeout(japp, people, dovecot, smtp_server):
    alice = people["alice"]
    account_id = make_mailbox(alice, ("127.0.0.1", dovecot.imap_port, "tls"), smtps(smtp_server))
    job = run_test(japp, alice, account_id)
    _failure(job, "imap", "tls", "imap.security", "connection protection does not match")
    assert account(alice, account_id)["state"] == "connection_error"


def test_plain_smtp_on_the_tls_port_is_a_tls_mode_error(japp, people, dovecot, smtp_server):
    alice = people["alice"]
    account_id = make_mailbox(alice, imaps(dovecot), ("127.0.0.1", smtp_server.smtps_port, "starttls"))
    job = run_test(japp, alice, account_id)
    _failure(job, "smtp", "tls", "smtp.security", "does not match")
    state = account(alice, account_id)
    assert state["state"] == "connection_error" and state["last_error"].startswith("SMTP: ")


@pytest.mark.parametrize(("kind", "words"), [("self_signed", "self-signed"), ("expired", "expired")])
def test_untrusted_certificate_says_which(japp, people, certs, dovecot_factory, smtp_server, kind, words):
    server = dovecot_factory(cert=getattr(certs, kind))
    alice = people["alice"]
    account_id = make_mailbox(alice, imaps(server), smtps(smtp_server))
    job = run_test(japp, alice, account_id)
    error = _failure(job, "imap", "certificate", "imap.host", "certificate")
    assert words in (error["message"] + " " + (error["detail"] or "")).lower(), error
    assert account(alice, account_id)["state"] == "connection_error"


def test_self_signed_smtp_certificate(japp, people, certs, smtp_factory, dovecot):
    server = smtp_factory(cert=certs.self_signed)
    alice = people["alice"]
    account_id = make_mailbox(alice, imaps(dovecot), smtps(server))
    job = run_test(japp, alice, account_id)
    _failure(job, "smtp", "certificate", "smtp.host", "certificate")


def test_starttls_missing_is_a_failure_never_a_fallback(japp, people, dovecot_factory, smtp_server):
    server = dovecot_factory(ssl=False)
    alice = people["alice"]
    account_id = make_mailbox(alice, ("127.0.0.1", server.imap_port, "starttls"), smtps(smtp_server))
    job = run_test(japp, alice, account_id)
    _failure(job, "imap", "starttls_missing", "imap.security", "does not offer STARTTLS")
    steps = [s["name"] for s in job["result"]["checks"]["imap"]["steps"]]
    assert "login" not in steps  # no password went over the unprotected connection


def test_smtp_starttls_missing(japp, people, dovecot, smtp_server):
    alice = people["alice"]
    account_id = make_mailbox(alice, imaps(dovecot), ("127.0.0.1", smtp_server.plain_port, "starttls"))
    job = run_test(japp, alice, account_id)
    _failure(job, "smtp", "starttls_missing", "smtp.security", "does not offer STARTTLS")


def test_logindisabled_is_an_auth_method_error(japp, people, dovecot_factory, smtp_server):
    server = dovecot_factory(plaintext_auth=False)  # listens on 127.0.0.2, advertises LOGINDISABLED
    alice = people["alice"]
    account_id = make_mailbox(alice, (server.host, server.imap_port, "none"), smtps(smtp_server))
    job = run_test(japp, alice, account_id)
    _failure(job, "imap", "auth_method", "imap.security", "sign-in method")
    assert account(alice, account_id)["state"] == "auth_error"


def test_an_internal_host_not_allowed_is_refused_before_connecting(japp, people, dovecot, smtp_server):
    from webapp import settings_store

    alice = people["alice"]
    account_id = make_mailbox(alice, imaps(dovecot), smtps(smtp_server))
    settings_store.update({"allowed_internal_hosts": []})
    job = run_test(japp, alice, account_id)
    _failure(job, "imap", "forbidden_address", "imap.host", "not allowed")


# --- who may see what ------------------------------------------------------------------------


def test_another_users_job_is_404_and_the_owner_sees_it(japp, people, dovecot, smtp_server):
    alice, bob = people["alice"], people["bob"]
    account_id = make_mailbox(alice, imaps(dovecot), smtps(smtp_server))
    started = alice.post(f"/api/v1/accounts/{account_id}/test").get_json()
    assert bob.get(started["status_url"]).status_code == 404
    assert bob.post(f"/api/v1/accounts/{account_id}/test").status_code == 404
    assert alice.get("/api/v1/jobs/no-such-job").status_code == 404
    assert alice.get(started["status_url"]).status_code == 200
    run_burst(japp)
    assert bob.get(started["status_url"]).status_code == 404
    assert alice.get(started["status_url"]).get_json()["status"] == "finished"


def test_a_disabled_mailbox_is_not_tested(japp, people, dovecot, smtp_server):
    alice = people["alice"]
    account_id = make_mailbox(alice, imaps(dovecot), smtps(smtp_server), active=False)
    job = run_test(japp, alice, account_id)
    assert job["status"] == "finished"
    assert job["result"] == {"ok": False, "error": "The mailbox is disabled.", "state": "disabled"}
    assert account(alice, account_id)["state"] == "disabled"
    assert "checks" not in job["result"]
    assert not [e for e in log_entries(alice) if e["source"] in ("IMAP Auth", "SMTP Auth")]


def test_a_mailbox_whose_service_was_removed_says_so(japp, people, dovecot, smtp_server):
    admin, alice = people["admin"], people["alice"]
    service = admin.post(
        "/api/v1/services",
        json={
            "name": "Corp mail",
            "imap": {"host": "127.0.0.1", "port": dovecot.imaps_port, "security": "tls"},
            "smtp": {"host": "127.0.0.1", "port": smtp_server.smtps_port, "security": "tls"},
        },
    )
    assert service.status_code == 201, service.get_json()
    service_id = service.get_json()["id"]
    created = alice.post(
        "/api/v1/accounts",
        json={"service_id": service_id, "username": "alice@example.com", "password": PASSWORD},
    )
    assert created.status_code == 201, created.get_json()
    account_id = created.get_json()["id"]
    assert admin.delete(f"/api/v1/services/{service_id}").status_code == 200
    job = run_test(japp, alice, account_id)
    assert job["result"]["ok"] is False and "checks" not in job["result"]
    assert job["result"]["state"] == "service_removed" and job["result"]["error"]
    assert account(alice, account_id)["state"] == "service_removed"


def test_a_mailbox_deleted_before_the_job_runs(japp, people, dovecot, smtp_server):
    alice = people["alice"]
    account_id = make_mailbox(alice, imaps(dovecot), smtps(smtp_server))
    started = alice.post(f"/api/v1/accounts/{account_id}/test").get_json()
    assert alice.delete(f"/api/v1/accounts/{account_id}").status_code == 204
    run_burst(japp)
    body = alice.get(started["status_url"]).get_json()
    assert body["status"] == "finished"
    assert body["result"] == {"ok": False, "error": "The mailbox no longer exists."}


# --- the corporate server test with credentials that are not stored ---------------------------


def test_service_test_keeps_credentials_out_of_db_and_job_args(japp, people, dovecot, smtp_server):
    import json

    from rq.job import Job

    from tests.support.secret_search import database_text
    from webapp.extensions import db
    from webapp.queue import get_redis

    admin = people["admin"]
    service_id = admin.post(
        "/api/v1/services",
        json={
            "name": "Corp test",
            "imap": {"host": "127.0.0.1", "port": dovecot.imaps_port, "security": "tls"},
            "smtp": {"host": "127.0.0.1", "port": smtp_server.smtps_port, "security": "tls"},
        },
    ).get_json()["id"]
    secret = PASSWORD  # the real password, so the test passes: it must still be nowhere
    started = admin.post(
        f"/api/v1/services/{service_id}/test", json={"username": "alice", "password": secret}
    )
    assert started.status_code == 202, started.get_json()
    job_id = started.get_json()["job_id"]

    redis = get_redis()
    job = Job.fetch(job_id, connection=redis)
    args_text = json.dumps([job.args, job.kwargs, job.meta], default=str)
    assert secret not in args_text and "alice" not in args_text
    (credentials_key,) = [a for a in job.args if isinstance(a, str)]
    assert credentials_key.startswith("mailroom:test-credentials:")
    stashed = redis.get(credentials_key)
    assert stashed is not None and secret.encode() not in stashed and b"alice" not in stashed
    assert 0 < redis.ttl(credentials_key) <= 300
    db.session.remove()
    assert secret not in database_text()

    run_burst(japp)

    body = admin.get(started.get_json()["status_url"]).get_json()
    assert body["status"] == "finished" and body["kind"] == "service_test"
    assert body["result"]["ok"] is True, body
    assert set(body["result"]["checks"]) == {"imap", "smtp"}
    assert redis.get(credentials_key) is None  # read once, gone
    assert not [k for k in redis.keys("mailroom:test-credentials:*")]
    assert secret not in database_text()
    assert any(
        "Corp test" in e["message"] and "passed" in e["message"] for e in log_entries(admin, source="Admin")
    )

    # The same stash cannot be replayed: a second job with the spent key says so.
    from webapp.jobs import connection_test
    from webapp.queue import enqueue_for

    with japp.test_request_context():
        again = enqueue_for(
            connection_test.test_service,
            service_id,
            credentials_key,
            owner_id=admin.user_id,
            kind="service_test",
        )
    db.session.remove()
    run_burst(japp)
    replay = admin.get(f"/api/v1/jobs/{again.id}").get_json()
    assert replay["result"] == {"ok": False, "error": "The test credentials expired; start the test again."}


def test_service_test_with_a_wrong_password_fails_as_auth(japp, people, dovecot, smtp_server):
    admin = people["admin"]
    service_id = admin.post(
        "/api/v1/services",
        json={
            "name": "Corp wrong",
            "imap": {"host": "127.0.0.1", "port": dovecot.imaps_port, "security": "tls"},
            "smtp": {"host": "127.0.0.1", "port": smtp_server.smtps_port, "security": "tls"},
        },
    ).get_json()["id"]
    started = admin.post(
        f"/api/v1/services/{service_id}/test", json={"username": "alice", "password": "wrong-wrong-1"}
    ).get_json()
    run_burst(japp)
    body = admin.get(started["status_url"]).get_json()
    _failure(body, "imap", "auth", "password", "incorrect credentials")
    assert people["alice"].get(started["status_url"]).status_code == 404


def test_service_test_fields_are_validated(japp, people):
    admin = people["admin"]
    service_id = admin.post(
        "/api/v1/services",
        json={
            "name": "Corp fields",
            "imap": {"host": "imap.corp.example", "port": 993, "security": "tls"},
            "smtp": {"host": "smtp.corp.example", "port": 465, "security": "tls"},
        },
    ).get_json()["id"]
    bad = admin.post(f"/api/v1/services/{service_id}/test", json={"username": "x"})
    assert bad.status_code == 422 and set(bad.get_json()["fields"]) == {"password"}
    assert people["alice"].post(f"/api/v1/services/{service_id}/test", json={}).status_code == 403


# --- the latest outcome of each kind of check, as the owner reads it (issue 12 point 10) ------------
# One writer (webapp.jobs.outcome) for every check; the owner reads the API and the mailbox's row.


@pytest.fixture
def page(japp, people):
    """alice signed in to the pages (the people fixture made her)."""
    client = japp.test_client()
    assert login(client, "alice", "alice-console-pw").status_code == 302
    return client


def sync_outcome(account_id: int) -> tuple:
    """(last_synced_at, last_sync_error) as stored (the list page shows them; the API does not)."""
    from webapp.extensions import db
    from webapp.models import Account

    db.session.expire_all()
    row = db.session.get(Account, account_id)
    return row.last_synced_at, row.last_sync_error


def row_html(page, account_id: int) -> str:
    response = page.get(f"/mailboxes/{account_id}/row")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_passing_test_clears_the_error_a_failed_test_left(japp, people, page, dovecot, smtp_server):
    alice = people["alice"]
    account_id = make_mailbox(alice, imaps(dovecot), smtps(smtp_server), password="wrong-password-9")
    failed = run_test(japp, alice, account_id)
    assert failed["result"]["ok"] is False
    before = account(alice, account_id)
    assert before["state"] == "auth_error" and before["last_error"].startswith("IMAP: ")
    assert before["last_error_at"] and before["last_checked_at"]
    old_error = before["last_error"]
    assert old_error in row_html(page, account_id)

    assert alice.patch(f"/api/v1/accounts/{account_id}", json={"password": PASSWORD}).status_code == 200
    passed = run_test(japp, alice, account_id)
    assert passed["result"]["ok"] is True

    after = account(alice, account_id)
    assert after["state"] == "connected"
    assert after["last_error"] is None and after["last_error_at"] is None
    assert after["last_checked_at"] >= before["last_checked_at"]
    html = row_html(page, account_id)
    assert 'data-state="connected"' in html and old_error not in html
    assert "check-ok" in html and "check-failed" not in html
    # The old error is not lost: the failed test's own line is in the email log.
    messages = [e["message"] for e in log_entries(alice, account_id=account_id, level="error")]
    assert any("IMAP connection test failed" in m for m in messages), messages


def test_a_failed_sync_stays_the_sync_outcome_until_the_next_sync(japp, people, page, dovecot, smtp_server):
    alice = people["alice"]
    account_id = make_mailbox(alice, imaps(dovecot), smtps(smtp_server), password="wrong-password-9")
    assert alice.post(f"/api/v1/accounts/{account_id}/sync").status_code == 202
    run_burst(japp)
    synced_at, sync_error = sync_outcome(account_id)
    assert account(alice, account_id)["state"] == "auth_error" and sync_error.startswith("IMAP: ")

    assert alice.patch(f"/api/v1/accounts/{account_id}", json={"password": PASSWORD}).status_code == 200
    run_test(japp, alice, account_id)
    tested = account(alice, account_id)
    # The test's outcome replaced the test-and-login state; the sync's stays the sync's, named so.
    assert tested["state"] == "connected" and tested["last_error"] is None
    assert sync_outcome(account_id) == (synced_at, sync_error)
    assert "Sync: IMAP: " in row_html(page, account_id)

    assert alice.post(f"/api/v1/accounts/{account_id}/sync").status_code == 202
    run_burst(japp)
    synced_again_at, sync_error = sync_outcome(account_id)
    assert sync_error is None and synced_again_at >= synced_at
    assert "sync-error" not in row_html(page, account_id)


def test_a_removed_service_row_shows_no_green_ticks(japp, people, page, dovecot, smtp_server):
    admin, alice = people["admin"], people["alice"]
    service_id = admin.post(
        "/api/v1/services",
        json={
            "name": "Corp outcome",
            "imap": {"host": "127.0.0.1", "port": dovecot.imaps_port, "security": "tls"},
            "smtp": {"host": "127.0.0.1", "port": smtp_server.smtps_port, "security": "tls"},
        },
    ).get_json()["id"]
    account_id = alice.post(
        "/api/v1/accounts",
        json={
            "service_id": service_id,
            "username": "alice",
            "email": "alice@example.com",
            "password": PASSWORD,
        },
    ).get_json()["id"]
    tested = run_test(japp, alice, account_id)
    assert tested["result"]["ok"] is True, tested
    assert "check-ok" in row_html(page, account_id)

    assert admin.delete(f"/api/v1/services/{service_id}").status_code == 200
    removed = account(alice, account_id)
    assert removed["state"] == "service_removed" and removed["last_check"] is None
    html = row_html(page, account_id)
    assert 'data-state="service_removed"' in html and "Corp outcome" in html
    assert "✔" not in html and "check-ok" not in html


def test_a_passed_test_lists_the_folders_without_a_click(japp, people, dovecot, smtp_server):
    """The Folders page was empty after a good test until "Refresh folder list" was clicked."""
    alice = people["alice"]
    account_id = make_mailbox(alice, imaps(dovecot), ("127.0.0.1", smtp_server.starttls_port, "starttls"))
    assert run_test(japp, alice, account_id)["result"]["ok"] is True
    run_burst(japp)  # the folder list the passed test started
    folders = alice.get(f"/api/v1/accounts/{account_id}/folders").get_json()
    names = [f["name"] for f in (folders["folders"] if isinstance(folders, dict) else folders)]
    assert "INBOX" in names
