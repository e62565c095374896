"""A login that fails because of the server is never a wrong password (issue 10, point 6).

Only the server's explicit answer refuses credentials: IMAP's tagged ``NO`` to LOGIN or
AUTHENTICATE, POP3's ``-ERR`` to USER/PASS/AUTH, SMTP's 5xx to AUTH.  A connection cut
during sign-in, Dovecot killed while the password check is in flight, Dovecot's own
"temporary authentication failure" (``NO [UNAVAILABLE]``, ``-ERR [SYS/TEMP]``) and SMTP's
454 are ``server_error``: retried, and the mailbox stays due for its periodic sync instead of
going to "Authentication error", which cron skips.

Every failure comes from a real server: Dovecot with a failing passdb or killed with SIGKILL,
aiosmtpd answering 454, and a TCP proxy in front of them that hangs up on the sign-in command.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from datetime import timedelta

import pytest
from aiosmtpd.smtp import AuthResult
from rq.job import Job

from connectors.addresses import AddressPolicy
from connectors.check import CheckReport, check_incoming, check_outgoing
from connectors.errors import Detail, ErrorClass
from connectors.settings import Credentials, Protocol, Security, ServerSettings
from tests.servers.proxy import CuttingProxy
from tests.support.job_worker import run_burst
from tests.support.send_support import sending_mailbox
from tests.support.sync_support import make_mailbox
from webapp import settings_store
from webapp.extensions import db
from webapp.jobs import connection_test
from webapp.jobs import folders as folder_jobs
from webapp.jobs.sync import start as start_sync
from webapp.jobs.sync import sync_due_accounts
from webapp.models import Account, AccountState, LogEntry, OutgoingMessage, utcnow
from webapp.queue import get_redis
from webapp.secretbox import box

LOCAL = AddressPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
ALICE = Credentials("alice", "secret-alice-pw")
#: The sign-in command of each protocol, as the proxy sees it on the wire.
SIGN_IN = {"imap": rb"^\S+ (LOGIN|AUTHENTICATE) ", "pop3": rb"^(PASS|AUTH) ", "smtp": rb"^AUTH "}
NOT_THE_PASSWORD = "not a password problem"


def settings(protocol: str, port: int, security: str = "none", **kw) -> ServerSettings:
    kw.setdefault("timeout", 5.0)
    return ServerSettings(
        protocol=Protocol(protocol),
        host="127.0.0.1",
        port=port,
        security=Security(security),
        address_policy=LOCAL,
        **kw,
    )


def check(protocol: str, port: int, credentials: Credentials = ALICE, **kw) -> CheckReport:
    if protocol == "smtp":
        return check_outgoing(settings("smtp", port, **kw), credentials)
    return check_incoming(settings(protocol, port, **kw), credentials)


def failed_at_login(report: CheckReport, error_class: ErrorClass) -> dict:
    assert report.error is not None, report.as_dict()
    error = report.as_dict()["error"]
    assert report.error.error_class is error_class and error["step"] == "login", error
    return error


def kill_when_login_in_flight(dovecot) -> threading.Thread:
    """SIGKILL every Dovecot process once its password check has started (the "hang" passdb)."""

    def wait_and_kill() -> None:
        deadline = time.monotonic() + 20
        while not dovecot.auth_in_flight.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        dovecot.kill()

    thread = threading.Thread(target=wait_and_kill, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def app(make_app, certs):
    """Retries without delay (so a retried job runs in the same burst); loopback servers allowed."""
    app = make_app(MAIL_CA_FILE=str(certs.ca_cert), SYNC_RETRY_INTERVALS=[0], SEND_RETRY_INTERVALS=[0])
    with app.app_context():
        settings_store.update({"allowed_internal_hosts": ["127.0.0.1"], "connection_timeout": 5})
        db.session.commit()
        yield app
        db.session.remove()


def still_due(account_id: int) -> None:
    """Not "Authentication error", and cron picks it up again once its interval has passed."""
    db.session.expire_all()
    account = db.session.get(Account, account_id)
    assert account.state != AccountState.AUTH_ERROR.value, (account.state, account.last_error)
    account.last_synced_at = utcnow() - timedelta(days=1)
    db.session.commit()
    assert account_id in sync_due_accounts()["enqueued"]


# --- the connection check, against the real servers -------------------------------------------


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "closed"])
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_connection_cut_at_the_sign_in_command_is_not_auth(clean_dovecot, protocol, reset):
    with CuttingProxy(
        "127.0.0.1", clean_dovecot.ports[protocol], cut_on=SIGN_IN[protocol], reset=reset
    ) as proxy:
        report = check(protocol, proxy.port)
    assert proxy.cuts == 1  # greeting and capabilities passed; the server never saw the password
    error = failed_at_login(report, ErrorClass.SERVER_ERROR)
    assert error["message"] == Detail.LOGIN_CLOSED and NOT_THE_PASSWORD in error["message"]
    assert error["field"] != "password"


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "closed"])
def test_an_smtp_connection_cut_at_auth_is_not_auth(clean_smtp_server, reset):
    # The plain port offers AUTH in clear text, so the proxy can see the command.
    with CuttingProxy(
        "127.0.0.1", clean_smtp_server.plain_port, cut_on=SIGN_IN["smtp"], reset=reset
    ) as proxy:
        report = check("smtp", proxy.port)
    assert proxy.cuts == 1
    error = failed_at_login(report, ErrorClass.SERVER_ERROR)
    assert NOT_THE_PASSWORD in error["message"]


@pytest.mark.parametrize("security", ["none", "tls"])
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_dovecot_killed_while_the_password_is_checked_is_not_auth(dovecot_factory, certs, protocol, security):
    dovecot = dovecot_factory(auth_fault="hang")
    port = dovecot.ports[protocol + ("s" if security == "tls" else "")]
    killer = kill_when_login_in_flight(dovecot)
    report = check(protocol, port, security=security, ca_file=str(certs.ca_cert))
    killer.join(timeout=30)
    assert dovecot.auth_in_flight.exists()  # the kill really came during the sign-in
    error = failed_at_login(report, ErrorClass.SERVER_ERROR)
    assert error["message"] == Detail.LOGIN_CLOSED


def test_dovecot_temporary_authentication_failure_is_server_error(dovecot_factory):
    dovecot = dovecot_factory(ssl=False, auth_fault="tempfail")
    imap = failed_at_login(check("imap", dovecot.imap_port), ErrorClass.SERVER_ERROR)
    assert "[UNAVAILABLE]" in imap["raw"] and "Temporary authentication failure" in imap["raw"]
    pop3 = failed_at_login(check("pop3", dovecot.pop3_port), ErrorClass.SERVER_ERROR)
    assert "[SYS/TEMP]" in pop3["raw"]
    for error in (imap, pop3):
        assert error["message"] == Detail.LOGIN_UNAVAILABLE and error["field"] != "password"


def test_an_smtp_server_hanging_up_in_the_middle_of_auth_over_tls_is_not_auth(smtp_factory, certs):
    def hang_up(server, session, envelope, mechanism, auth_data) -> AuthResult:
        server.transport.abort()  # no answer, no TLS close_notify: the connection is simply gone
        return AuthResult(success=False, handled=True)

    smtp = smtp_factory(authenticator=hang_up)
    report = check("smtp", smtp.smtps_port, security="tls", ca_file=str(certs.ca_cert))
    assert NOT_THE_PASSWORD in failed_at_login(report, ErrorClass.SERVER_ERROR)["message"]


@pytest.mark.parametrize(
    "reply, error_class",
    [
        ("454 4.7.0 Temporary authentication failure", ErrorClass.SERVER_ERROR),
        ("421 4.3.2 Service shutting down", ErrorClass.THROTTLED),
    ],
)
def test_a_temporary_smtp_answer_to_auth_is_not_auth(smtp_factory, reply, error_class):
    def answer(server, session, envelope, mechanism, auth_data) -> AuthResult:
        return AuthResult(success=False, handled=False, message=reply)

    smtp = smtp_factory(authenticator=answer)
    error = failed_at_login(check("smtp", smtp.plain_port), error_class)
    assert error["raw"] == reply


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_a_wrong_password_is_still_auth(dovecot, smtp_server, protocol):
    port = smtp_server.plain_port if protocol == "smtp" else dovecot.ports[protocol]
    error = failed_at_login(check(protocol, port, Credentials("alice", "wrong-pw-31")), ErrorClass.AUTH)
    assert error["field"] == "password" and error["raw"]


# --- the jobs: only an explicit refusal makes the mailbox "Authentication error" ---------------


def test_a_sync_whose_login_is_cut_is_retried_and_stays_due(app, users, clean_dovecot):
    with CuttingProxy("127.0.0.1", clean_dovecot.imap_port, cut_on=SIGN_IN["imap"]) as proxy:
        account = make_mailbox(clean_dovecot, owner=users["alice"]["user"])
        account.imap_port = proxy.port
        db.session.commit()
        job_id = start_sync(account).id
        run_burst()
    assert proxy.cuts == 2  # the first run and its retry
    assert Job.fetch(job_id, connection=get_redis()).get_status().value == "failed"
    db.session.expire_all()
    account = db.session.get(Account, account.id)
    assert account.state == "connected" and NOT_THE_PASSWORD in account.last_sync_error
    messages = [e.message for e in LogEntry.query.filter_by(account_id=account.id).order_by(LogEntry.id)]
    assert messages[0].endswith("It will be retried."), messages
    still_due(account.id)


def test_a_sync_with_dovecot_killed_during_login_keeps_the_mailbox_due(app, users, dovecot_factory):
    dovecot = dovecot_factory(ssl=False, auth_fault="hang")
    account = make_mailbox(dovecot, owner=users["alice"]["user"])
    killer = kill_when_login_in_flight(dovecot)
    start_sync(account)
    run_burst()
    killer.join(timeout=30)
    assert dovecot.auth_in_flight.exists()
    still_due(account.id)


def test_a_pop3_sync_whose_login_is_cut_stays_due(app, users, clean_dovecot):
    with CuttingProxy("127.0.0.1", clean_dovecot.pop3_port, cut_on=SIGN_IN["pop3"]) as proxy:
        account = make_mailbox(clean_dovecot, owner=users["alice"]["user"])
        account.incoming_protocol = "pop3"
        account.pop3_host, account.pop3_port, account.pop3_security = "127.0.0.1", proxy.port, "none"
        db.session.commit()
        start_sync(account)
        run_burst()
    assert proxy.cuts == 2
    db.session.expire_all()
    assert NOT_THE_PASSWORD in db.session.get(Account, account.id).last_sync_error
    still_due(account.id)


def test_connection_test_and_folder_list_on_a_temporary_failure_are_connection_errors(
    app, users, dovecot_factory, clean_smtp_server
):
    dovecot = dovecot_factory(ssl=False, auth_fault="tempfail")
    account = make_mailbox(dovecot, owner=users["alice"]["user"])
    account.smtp_port = clean_smtp_server.plain_port
    db.session.commit()
    summary = connection_test.test_account(account.id)
    assert summary["checks"]["imap"]["error"]["class"] == "server_error", summary
    db.session.expire_all()
    assert db.session.get(Account, account.id).state == AccountState.CONNECTION_ERROR.value

    result = folder_jobs.list_folders(account.id)
    assert result["error"]["class"] == "server_error", result
    db.session.expire_all()
    assert db.session.get(Account, account.id).state == AccountState.CONNECTION_ERROR.value
    still_due(account.id)


def test_a_wrong_password_still_stops_the_periodic_sync(app, users, clean_dovecot):
    account = make_mailbox(clean_dovecot, owner=users["alice"]["user"])
    account.password_encrypted = box().encrypt("wrong-pw-32")
    db.session.commit()
    start_sync(account)
    run_burst()
    db.session.expire_all()
    account = db.session.get(Account, account.id)
    assert account.state == AccountState.AUTH_ERROR.value
    account.last_synced_at = utcnow() - timedelta(days=1)
    db.session.commit()
    assert account.id not in sync_due_accounts()["enqueued"]


def test_a_send_refused_with_454_is_retried_not_an_auth_failure(app, users, clean_dovecot, smtp_factory, api):
    def answer(server, session, envelope, mechanism, auth_data) -> AuthResult:
        return AuthResult(success=False, handled=False, message="454 4.7.0 Temporary authentication failure")

    smtp = smtp_factory(authenticator=answer)
    account = sending_mailbox(clean_dovecot, smtp, users["alice"]["user"])
    response = api["alice"].post(
        "/api/v1/messages/send", json={"to": ["bob@example.org"], "subject": "Hi", "text": "Hello."}
    )
    assert response.status_code == 202, response.json
    run_burst()
    db.session.expire_all()
    row = db.session.get(OutgoingMessage, response.json["id"])
    assert row.attempts == 2 and row.error_class == "server_error", (row.state, row.error)
    assert smtp.messages == []
    assert not LogEntry.query.filter_by(account_id=account.id, source="SMTP Auth").count()
    assert db.session.get(Account, account.id).state != AccountState.AUTH_ERROR.value
