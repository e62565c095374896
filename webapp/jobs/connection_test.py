"""Connection tests: what the RQ job does for a mailbox or a corporate server.

The web only enqueues (ids in the job arguments, nothing secret); the job
reads and decrypts the credentials, runs connectors.check for incoming and
outgoing mail, and writes the outcome to the mailbox (state, last error, last
report) and to the email log.  Test credentials for a corporate server are
never stored in the database: they wait encrypted in Redis for a few minutes
under a random key that is the only thing the job receives.
"""

from __future__ import annotations

import json
import logging
import secrets as pysecrets

from redis.exceptions import RedisError
from rq.job import Job

from connectors.check import check_incoming, check_outgoing
from connectors.errors import AUTH_CLASSES, MailError
from connectors.i18n import N_
from connectors.settings import Credentials
from connectors.transcript import Transcript

from .. import email_log, settings_store
from ..diagnosis import Audience, explain_summary
from ..errors import DomainError, MailboxUnavailable
from ..extensions import db
from ..models import Account, Folder, LogLevel, LogSource, Service, User
from ..queue import enqueue_for, get_redis
from ..secretbox import box
from ..service_trust import Trust, trust_for_account, trust_for_service
from . import folders as folder_jobs
from .outcome import Check, Line, record_failure, record_success
from .session import UNAVAILABLE, address_policy, credentials, settings_for

log = logging.getLogger(__name__)

CREDENTIAL_TTL = 300


def job_timeout() -> int:
    """Incoming and outgoing, each connect + TLS + login bounded by the connection timeout, plus slack."""
    return 4 * settings_store.get("connection_timeout") + 30


_AUTH_SOURCES = {"imap": LogSource.IMAP_AUTH, "pop3": LogSource.POP3_AUTH, "smtp": LogSource.SMTP_AUTH}
#: Only these make the mailbox "Authentication error" (which cron skips); anything else, a server
#: that hung up during sign-in included, is "Connection error", still synced by cron.
_AUTH_CLASSES = {c.value for c in AUTH_CLASSES}

#: The email log's lines and the job's answers (stored in English, translated when shown).
WORDS = {
    "not_run": N_("Connection test not run: {error}"),
    # The steps' names and times are in the line's details (JSON): named in the line, they stayed
    # English on Italian and Polish log pages (a stored value is kept as it is).
    "passed": N_("{protocol} connection test passed in {ms} ms."),
    "passed_with_steps": N_("{protocol} connection test passed ({steps})."),  # lines stored before
    "failed": N_("{protocol} connection test failed: {error}"),
    "failed_bare": N_("{protocol} connection test failed."),
    "check_failed": N_("{protocol} check failed."),
    "service_passed": N_('Connection test of "{service}" passed.'),
    "service_failed": N_('Connection test of "{service}" failed.'),
    "service_gone": N_("The service no longer exists."),
    "expired": N_("The test credentials expired; start the test again."),
}


def start(account: Account, owner: User) -> Job:
    """Enqueue the connection test of ``account`` for ``owner`` (the status is theirs to read)."""
    return enqueue_for(
        test_account,
        account.id,
        owner_id=owner.id,
        kind="connection_test",
        account_id=account.id,
        timeout=job_timeout(),
    )


def start_service(
    service: Service,
    owner: User,
    username: str,
    password: str,
    smtp_username: str | None = None,
    smtp_password: str | None = None,
) -> Job:
    """Enqueue the test of a corporate server; the credentials wait encrypted in Redis, not in the job."""
    key = stash_credentials(get_redis(), username, password, smtp_username, smtp_password)
    return enqueue_for(
        test_service, service.id, key, owner.id, owner_id=owner.id, kind="service_test", timeout=job_timeout()
    )


def _run_checks(
    incoming: tuple[str, dict] | None,
    smtp: dict | None,
    creds_in,
    creds_out,
    *,
    trust: Trust,
    policy,
    service_key,
    requires_auth,
    debug,
) -> dict:
    reports = {}
    if incoming is not None:
        protocol, endpoint = incoming
        transcript = Transcript() if debug else None
        report = check_incoming(
            settings_for(endpoint, protocol, verify=trust.verify, policy=policy, ca_data=trust.ca_data),
            creds_in,
            service_key=service_key,
            transcript=transcript,
        )
        reports[protocol] = (report, transcript)
    if smtp is not None:
        transcript = Transcript() if debug else None
        report = check_outgoing(
            settings_for(smtp, "smtp", verify=trust.verify, policy=policy, ca_data=trust.ca_data),
            creds_out,
            requires_auth=requires_auth,
            service_key=service_key,
            transcript=transcript,
        )
        reports["smtp"] = (report, transcript)
    return reports


def _summary(reports: dict) -> dict:
    return {
        "ok": all(report.ok for report, _ in reports.values()),
        "checks": {protocol: report.as_dict() for protocol, (report, _) in reports.items()},
    }


def test_account(account_id: int) -> dict:
    """Test a mailbox's incoming and outgoing servers and record the outcome."""
    account = db.session.get(Account, account_id)
    if account is None:
        return {"ok": False, "error": UNAVAILABLE["gone"]}
    if account.service_removed:
        return {"ok": False, "error": account.last_error, "state": account.state}
    if not account.active:
        return {"ok": False, "error": UNAVAILABLE["disabled"], "state": account.state}
    try:
        # The same logins as every other job: OAuth2 mailboxes get a fresh access token here.
        creds_in, creds_out = credentials(account, account.incoming_protocol), credentials(account, "smtp")
    except MailboxUnavailable as exc:
        db.session.rollback()
        return {"ok": False, "error": str(exc), "state": account.state}
    except MailError as exc:
        db.session.rollback()
        line = Line(
            _AUTH_SOURCES.get(account.incoming_protocol, LogSource.IMAP_AUTH),
            LogLevel.ERROR,
            WORDS["not_run"].format(error=exc.message),
            {"error": exc.as_dict()},
        )
        record_failure(account, Check.TEST, exc.message, lines=[line])
        return {"ok": False, "error": exc.message, "class": exc.error_class.value, "state": account.state}
    summary, reports = check_account(account, creds_in, creds_out)
    record_outcome(account, reports, summary)
    if summary.get("ok"):
        _list_folders_if_none(account)
    return summary


def _list_folders_if_none(account: Account) -> None:
    """A mailbox that has just passed its first test gets its folder list at once, so its Folders
    page is not empty until someone clicks "Refresh folder list" (the list job is the one place
    that stores folders). A queue that cannot take it leaves the test's outcome as it is."""
    if account.incoming_protocol != "imap" or Folder.query.filter_by(account_id=account.id).first():
        return
    try:
        folder_jobs.start(account, account.user)
    except (DomainError, RedisError):
        log.warning("folder list after the connection test of mailbox %s not enqueued", account.id)


def check_account(account: Account, creds_in, creds_out) -> tuple[dict, dict]:
    """Run the mailbox's incoming and outgoing checks as its row stands in the session (saved or
    not: :mod:`webapp.jobs.edit_trial` tries settings before saving them); ``(summary, reports)``."""
    reports = _run_checks(
        (account.incoming_protocol, account.server(account.incoming_protocol))
        if account.server(account.incoming_protocol)
        else None,
        account.server("smtp"),
        creds_in,
        creds_out,
        trust=trust_for_account(account),
        policy=address_policy() if account.manual else None,
        service_key=account.service.key if account.service else None,
        requires_auth=account.smtp_requires_auth,
        debug=account.debug,
    )
    summary = _summary(reports)
    audience = Audience.OWNER if account.manual or account.service is None else Audience.SERVICE_USER
    explain_summary(summary, audience, account.service.name if account.service else None)
    return summary, reports


def record_outcome(account: Account, reports: dict, summary: dict) -> None:
    lines = log_lines(reports)
    failures = [(p, r) for p, (r, _) in reports.items() if not r.ok]
    if not failures:
        record_success(account, Check.TEST, lines=lines, report=summary)
        return
    protocol, report = failures[0]
    error = report.error
    auth = error is not None and error.error_class.value in _AUTH_CLASSES
    # The explained sentence: a mailbox on a service never reads an instruction meant for its admin.
    shown = summary["checks"][protocol].get("error") or {}
    message = (
        f"{protocol.upper()}: {shown.get('message') or error.message}"
        if error
        else WORDS["check_failed"].format(protocol=protocol.upper())
    )
    record_failure(account, Check.TEST, message, auth=auth, lines=lines, report=summary)


def log_lines(reports: dict) -> list[Line]:
    """The email log's line of each check (with its transcript when the mailbox debugs)."""
    return [_log_line(protocol, report, transcript) for protocol, (report, transcript) in reports.items()]


def _log_line(protocol: str, report, transcript) -> Line:
    if report.ok:
        level = LogLevel.INFO
        message = WORDS["passed"].format(protocol=protocol.upper(), ms=f"{report.duration_ms:.0f}")
    else:
        level = LogLevel.ERROR
        message = (
            WORDS["failed"].format(protocol=protocol.upper(), error=report.error.message)
            if report.error
            else WORDS["failed_bare"].format(protocol=protocol.upper())
        )
    details = {"check": report.as_dict()}
    if transcript is not None:
        details["transcript"] = transcript.as_list()
    return Line(_AUTH_SOURCES[protocol], level, message, details)


def stash_credentials(
    redis, username: str, password: str, smtp_username: str | None = None, smtp_password: str | None = None
) -> str:
    """Keep test credentials encrypted in Redis for a few minutes; return the key for the job."""
    key = "mailroom:test-credentials:" + pysecrets.token_urlsafe(16)
    blob = json.dumps(
        {
            "username": username,
            "password": password,
            "smtp_username": smtp_username,
            "smtp_password": smtp_password,
        }
    )
    redis.set(key, box().encrypt(blob), ex=CREDENTIAL_TTL)
    return key


def test_service(service_id: int, credentials_key: str, requested_by: int | None = None) -> dict:
    """Test a corporate server with credentials that are not stored (read once from Redis)."""
    redis = get_redis()
    token = redis.getdel(credentials_key)
    service = db.session.get(Service, service_id)
    if service is None:
        return {"ok": False, "error": WORDS["service_gone"]}
    if token is None:
        return {"ok": False, "error": WORDS["expired"]}
    creds = json.loads(box().decrypt(token.decode()))
    reports = _run_checks(
        ("imap", service.endpoint("imap")),
        service.endpoint("smtp"),
        Credentials(username=creds["username"], password=creds["password"]),
        Credentials(
            username=creds.get("smtp_username") or creds["username"],
            password=creds.get("smtp_password") or creds["password"],
        ),
        trust=trust_for_service(service),
        policy=None,
        service_key=service.key,
        requires_auth=True,
        debug=False,
    )
    summary = explain_summary(_summary(reports), Audience.ADMIN, service.name)
    level = LogLevel.INFO if summary["ok"] else LogLevel.WARNING
    requester = db.session.get(User, requested_by) if requested_by else None
    email_log.record(
        LogSource.ADMIN,
        level,
        WORDS["service_passed" if summary["ok"] else "service_failed"].format(service=service.name),
        user=requester,
        details=summary,
        created_by="system",
    )
    db.session.commit()
    return summary
