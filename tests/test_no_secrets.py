"""The no-secret proof of issue 3: "a test searches everything written for the test password".

Mailboxes with "Enable debug" on and a distinctive password are tested over
IMAP, POP3 and SMTP, with the right and with a wrong password, and a corporate
server is tested with unstored credentials, all through the API and the
``mailroom worker`` command in a child process.  Then everything written is
searched: every row of every table, every key and value in Redis (RQ payloads
decompressed and unpickled), the worker's output, the job status answers, the
email log API and the log pages.  Neither password appears in any form a wire
protocol gives it: as is, IMAP-quoted, base64 at any alignment (which covers
AUTH PLAIN/LOGIN payloads) or URL-encoded.  The Fernet ciphertext is fine.
"""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest

from tests.conftest import Api, login
from tests.support.job_worker import WorkerProcess
from tests.support.secret_search import database_text, redis_text, rq_jobs

USER = "carol"
GOOD = 'Zeta"Qx7-Lm9!Pw'  # a double quote, so IMAP must quote and escape it
WRONG = 'Wrong"Kp4-Vn8#Xy'
SERVICE_PW = "Corp-Uv3!Rt6-Hq"


def b64_fragments(secret: str) -> set[str]:
    """The part of base64 that depends only on ``secret``, for each of the three alignments.

    A secret inside a longer blob (``\\0user\\0password`` for AUTH PLAIN) is
    encoded at an offset of 0, 1 or 2 bytes modulo 3; these fragments appear
    in the blob's base64 whatever comes before or after it.
    """
    raw = secret.encode()
    out = set()
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw).decode()
        start = 0 if pad == 0 else 4
        end = ((pad + len(raw)) // 3) * 4
        out.add(encoded[start:end])
    return out


def secret_forms(secret: str) -> set[str]:
    forms = {
        secret,
        secret.replace("\\", "\\\\").replace('"', '\\"'),  # IMAP quoted string
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
        json.dumps(secret)[1:-1],  # as it sits inside JSON text
    }
    forms |= b64_fragments(secret)
    return forms


def assert_clean(where: str, text: str) -> None:
    for secret in (GOOD, WRONG, SERVICE_PW):
        for form in secret_forms(secret):
            assert form not in text, f"a form of a test password ({form!r}) appears in {where}"


def test_b64_fragments_find_the_password_inside_auth_plain():
    for user in ("a", "ab", "abc", USER):
        blob = base64.b64encode(f"\0{user}\0{GOOD}".encode()).decode()
        assert any(f in blob for f in b64_fragments(GOOD)), user
        login_blob = base64.b64encode(GOOD.encode()).decode()
        assert any(f in login_blob for f in b64_fragments(GOOD))
        with pytest.raises(AssertionError):
            assert_clean("a control", f"C: AUTH PLAIN {blob}")
    for control in (f'a1 LOGIN carol "{GOOD.replace(chr(34), chr(92) + chr(34))}"', f"PASS {WRONG}"):
        with pytest.raises(AssertionError):
            assert_clean("a control", control)


@pytest.fixture
def servers(dovecot_factory, smtp_factory, certs):
    users = {f"{USER}{i}": GOOD for i in range(1, 5)}  # one login per mailbox: no duplicates
    dovecot = dovecot_factory(users=users, cert=certs.valid)
    dovecot.add_messages(f"{USER}3", 2)
    smtp = smtp_factory(users=users, cert=certs.valid)
    return dovecot, smtp


def test_nothing_written_holds_a_password(make_app, certs, servers, tmp_path):
    from webapp import settings_store
    from webapp.api_tokens import issue_token
    from webapp.extensions import db
    from webapp.queue import get_redis
    from webapp.users import create_user

    dovecot, smtp = servers
    app = make_app(MAIL_CA_FILE=str(certs.ca_cert))
    with app.app_context():
        settings_store.update({"allowed_internal_hosts": ["127.0.0.1"], "connection_timeout": 5})
        client = app.test_client()
        admin_user = create_user("admin", "admin-console-pw", admin=True)
        alice_user = create_user("alice", "alice-console-pw")
        admin, alice = Api(client, issue_token(admin_user)), Api(client, issue_token(alice_user))
        db.session.commit()

        imap = {"host": "127.0.0.1", "port": dovecot.imaps_port, "security": "tls"}
        pop3 = {"host": "127.0.0.1", "port": dovecot.pop3_port, "security": "starttls"}
        smtp_ep = {"host": "127.0.0.1", "port": smtp.starttls_port, "security": "starttls"}
        smtps_ep = {"host": "127.0.0.1", "port": smtp.smtps_port, "security": "tls"}
        mailboxes = {}
        for i, (name, password, protocol, out) in enumerate(
            (
                ("imap-good", GOOD, "imap", smtp_ep),
                ("imap-wrong", WRONG, "imap", smtps_ep),
                ("pop3-good", GOOD, "pop3", smtps_ep),
                ("pop3-wrong", WRONG, "pop3", smtp_ep),
            ),
            start=1,
        ):
            response = alice.post(
                "/api/v1/accounts",
                json={
                    "manual": {"imap": imap, "smtp": out, "pop3": pop3},
                    "username": f"{USER}{i}",
                    "password": password,
                    "email": f"{name}@example.com",
                    "incoming_protocol": protocol,
                    "debug": True,
                },
            )
            assert response.status_code == 201, response.get_json()
            mailboxes[name] = response.get_json()["id"]

        service_id = admin.post(
            "/api/v1/services",
            json={"name": "Corp", "imap": imap, "smtp": smtps_ep},
        ).get_json()["id"]

        jobs = {
            name: alice.post(f"/api/v1/accounts/{account_id}/test").get_json()
            for name, account_id in mailboxes.items()
        }
        service_job = admin.post(
            f"/api/v1/services/{service_id}/test", json={"username": f"{USER}1", "password": SERVICE_PW}
        ).get_json()
        db.session.remove()

        worker_output = WorkerProcess(app, tmp_path).run()

        # The jobs really ran and failed or passed as set up: the search below is not of nothing.
        bodies = {name: alice.get(job["status_url"]).get_json() for name, job in jobs.items()}
        for name, body in bodies.items():
            assert body["status"] == "finished", (name, body, worker_output)
            assert body["result"]["ok"] is name.endswith("good"), (name, body)
        assert bodies["pop3-good"]["result"]["checks"]["pop3"]["info"]["messages"] == 2
        for name in ("imap-wrong", "pop3-wrong"):
            for check in bodies[name]["result"]["checks"].values():
                assert check["error"]["class"] == "auth" and check["error"]["raw"]
        service_body = admin.get(service_job["status_url"]).get_json()
        assert service_body["status"] == "finished"
        assert service_body["result"]["checks"]["imap"]["error"]["class"] == "auth"
        assert "Job OK" in worker_output or "Successfully completed" in worker_output, worker_output

        # The debug transcripts show the conversation, with *** for the secrets.
        entries = alice.get("/api/v1/logs?limit=500").get_json()["entries"]
        transcripts: dict[str, list[str]] = {}
        for entry in entries:
            lines = (entry["details"] or {}).get("transcript")
            if lines:
                transcripts.setdefault(entry["source"], []).extend(
                    f"{line['direction']} {line['text']}" for line in lines
                )
        # A passed test of a mailbox with no folders yet also lists its folders at once (source
        # "Sync"): its transcript is searched below with everything else.
        assert (
            {"IMAP Auth", "POP3 Auth", "SMTP Auth"}
            <= set(transcripts)
            <= {"IMAP Auth", "POP3 Auth", "SMTP Auth", "Sync"}
        )
        for line in transcripts.get("Sync", []):
            assert " LOGIN " not in line or "***" in line, line
        imap_lines, pop3_lines, smtp_lines = (
            transcripts["IMAP Auth"],
            transcripts["POP3 Auth"],
            transcripts["SMTP Auth"],
        )
        assert any(line.startswith("received * OK") for line in imap_lines)
        assert any(" LOGIN " in line and "***" in line for line in imap_lines if line.startswith("sent"))
        assert any(line == "sent PASS ***" for line in pop3_lines), pop3_lines
        assert any(line.startswith("received +OK") for line in pop3_lines)
        assert any(line.lower().startswith("sent ehlo") for line in smtp_lines), smtp_lines
        assert any(line.lower().startswith("sent auth") and "***" in line for line in smtp_lines), smtp_lines
        assert any(
            "authentication failed" in line.lower() or line.startswith("received 535") for line in smtp_lines
        )

        # Now search everything written.
        assert_clean("the database", database_text())
        redis = get_redis()
        assert_clean("Redis", redis_text(redis))
        stored_jobs = rq_jobs(redis)
        assert len(stored_jobs) >= 5
        for job in stored_jobs:
            assert_clean(
                f"RQ job {job.id}",
                repr((job.args, job.kwargs, job.meta, job.description, job.return_value())),
            )
            assert all(isinstance(a, int) or str(a).startswith("mailroom:") for a in job.args), job.args
        assert_clean("the worker output", worker_output)
        for body in [*bodies.values(), service_body]:
            assert_clean("a job status answer", json.dumps(body))
        assert_clean("the email log API", admin.get("/api/v1/logs?limit=500").get_data(as_text=True))
        assert_clean("the email log API (user)", alice.get("/api/v1/logs?limit=500").get_data(as_text=True))
        pages = app.test_client()
        login(pages, "admin", "admin-console-pw")
        admin_log = pages.get("/admin/email/log").get_data(as_text=True)
        assert "IMAP Auth" in admin_log
        assert_clean("the admin log page", admin_log)
        user_pages = app.test_client()
        login(user_pages, "alice", "alice-console-pw")
        for url in ("/mailboxes/log", "/mailboxes/"):
            html = user_pages.get(url).get_data(as_text=True)
            assert "imap-wrong@example.com" in html
            assert_clean(url, html)
        db.session.remove()
