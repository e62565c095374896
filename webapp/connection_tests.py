"""Connection tests: what the RQ job does for a mailbox or a corporate server.

The web only enqueues (ids in the job arguments, nothing secret); the job
reads and decrypts the credentials, runs connectors.check for incoming and
outgoing mail, and writes the outcome to the mailbox (state, last error, last
report) and to the email log.  Test credentials for a corporate server are
never stored in the database: they wait encrypted in Redis for a few minutes
under a random key that is the only thing the job receives.
"""

from __future__ import annotations

import ipaddress
import json
import secrets as pysecrets

from flask import current_app

from connectors.errors import AUTH_CLASSES
from connectors.settings import Protocol, Security, ServerSettings

from . import email_log, settings_store
from .diagnosis import Audience, explain_summary
from .extensions import db
from .models import Account, AccountState, LogLevel, LogSource, Service, User, utcnow
from .secretbox import box
from .service_trust import Trust, trust_for_account, trust_for_service

CREDENTIAL_TTL = 300


def job_timeout() -> int:
    """Incoming and outgoing, each connect + TLS + login bounded by the connection timeout, plus slack."""
    return 4 * settings_store.get("connection_timeout") + 30


_AUTH_SOURCES = {"imap": LogSource.IMAP_AUTH, "pop3": LogSource.POP3_AUTH, "smtp": LogSource.SMTP_AUTH}
#: Only these make the mailbox "Authentication error" (which cron skips); anything else, a server
#: that hung up during sign-in included, is "Connection error", still synced by cron.
_AUTH_CLASSES = {c.value for c in AUTH_CLASSES}


def address_policy():
    """The guard for hand-typed servers: internal addresses only where the administrator allowed them."""
    from connectors.net import AddressPolicy

    networks, hosts = [], []
    for item in settings_store.get("allowed_internal_hosts"):
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError:
            hosts.append(item)
    return AddressPolicy(allow_private=False, allowed_networks=tuple(networks), allowed_hosts=tuple(hosts))


def _settings(
    endpoint: dict, protocol: str, *, verify: bool = True, policy=None, ca_data: str | None = None
) -> ServerSettings:
    """``verify`` and ``ca_data`` come from :mod:`webapp.service_trust` (the service's own trust)."""
    kwargs = {}
    if policy is not None:
        kwargs["address_policy"] = policy
    return ServerSettings(
        protocol=Protocol(protocol),
        host=endpoint["host"],
        port=endpoint["port"],
        security=Security(endpoint["security"]),
        verify_certificate=verify,
        timeout=float(settings_store.get("connection_timeout")),
        ca_file=current_app.config.get("MAIL_CA_FILE"),
        ca_data=ca_data,
        **kwargs,
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
    from connectors.check import check_incoming, check_outgoing
    from connectors.transcript import Transcript

    reports = {}
    if incoming is not None:
        protocol, endpoint = incoming
        transcript = Transcript() if debug else None
        report = check_incoming(
            _settings(endpoint, protocol, verify=trust.verify, policy=policy, ca_data=trust.ca_data),
            creds_in,
            service_key=service_key,
            transcript=transcript,
        )
        reports[protocol] = (report, transcript)
    if smtp is not None:
        transcript = Transcript() if debug else None
        report = check_outgoing(
            _settings(smtp, "smtp", verify=trust.verify, policy=policy, ca_data=trust.ca_data),
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
        return {"ok": False, "error": "The mailbox no longer exists."}
    if account.service_removed:
        return {"ok": False, "error": account.last_error, "state": account.state}
    if not account.active:
        return {"ok": False, "error": "The mailbox is disabled.", "state": account.state}
    from connectors.errors import MailError

    from .mail_session import MailboxUnavailable, credentials

    try:
        # The same logins as every other job: OAuth2 mailboxes get a fresh access token here.
        creds_in, creds_out = credentials(account, account.incoming_protocol), credentials(account, "smtp")
    except MailboxUnavailable as exc:
        db.session.rollback()
        return {"ok": False, "error": str(exc), "state": account.state}
    except MailError as exc:
        db.session.rollback()
        account.state, account.last_error = AccountState.CONNECTION_ERROR.value, exc.message
        account.last_error_at = account.last_checked_at = utcnow()
        db.session.commit()
        return {"ok": False, "error": exc.message, "class": exc.error_class.value, "state": account.state}
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
    _apply_outcome(account, reports, summary)
    return summary


def _apply_outcome(account: Account, reports: dict, summary: dict) -> None:
    now = utcnow()
    account.last_checked_at = now
    account.last_check = json.dumps(summary)
    failures = [(p, r) for p, (r, _) in reports.items() if not r.ok]
    if not failures:
        account.state = AccountState.CONNECTED.value
        account.last_error = None
    else:
        protocol, report = failures[0]
        error = report.error
        auth = error is not None and error.error_class.value in _AUTH_CLASSES
        account.state = (AccountState.AUTH_ERROR if auth else AccountState.CONNECTION_ERROR).value
        # The explained sentence: a mailbox on a service never reads an instruction meant for its admin.
        shown = summary["checks"][protocol].get("error") or {}
        account.last_error = (
            f"{protocol.upper()}: {shown.get('message') or error.message}"
            if error
            else f"{protocol.upper()} check failed."
        )
        account.last_error_at = now
    for protocol, (report, transcript) in reports.items():
        steps = ", ".join(f"{s.name} {s.duration_ms:.0f} ms" for s in report.steps)
        if report.ok:
            level, message = LogLevel.INFO, f"{protocol.upper()} connection test passed ({steps})."
        else:
            level = LogLevel.ERROR
            message = (
                f"{protocol.upper()} connection test failed: {report.error.message}"
                if report.error
                else "failed"
            )
        details = {"check": report.as_dict()}
        if transcript is not None:
            details["transcript"] = transcript.as_list()
        email_log.record(
            _AUTH_SOURCES[protocol], level, message, account=account, details=details, created_by="system"
        )
    db.session.commit()


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
    from connectors.settings import Credentials

    from .queue import get_redis

    redis = get_redis()
    token = redis.getdel(credentials_key)
    service = db.session.get(Service, service_id)
    if service is None:
        return {"ok": False, "error": "The service no longer exists."}
    if token is None:
        return {"ok": False, "error": "The test credentials expired; start the test again."}
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
        f'Connection test of "{service.name}" {"passed" if summary["ok"] else "failed"}.',
        user=requester,
        details=summary,
        created_by="system",
    )
    db.session.commit()
    return summary
