"""Services, settings, mailboxes, the log, connection tests, job status and the OpenAPI description."""

from __future__ import annotations

from flask import current_app, g, jsonify, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from .. import account_states, accounts, email_log, i18n, job_status, look, service_catalog, settings_store
from ..column_limits import column_length
from ..errors import DomainError, Invalid, NotFound, QueueUnavailable
from ..extensions import db
from ..jobs import connection_test, edit_trial
from ..models import Account
from . import bp
from . import openapi as description
from .common import _json, admin_only, token_required
from .jobs import accepted, job_body


@bp.errorhandler(DomainError)
def domain_error(exc: DomainError):
    db.session.rollback()
    return jsonify(i18n.localize_body(exc.as_dict())), exc.status, getattr(exc, "headers", None) or {}


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    return jsonify({"error": look.describe(exc)}), exc.code  # werkzeug's English replaced by our sentence


# Services ------------------------------------------------------------------------------------


@bp.get("/services")
@token_required
def list_services():
    # Users see what they may connect to; administrators see the whole list with hidden ones.
    services = service_catalog.list_services(include_hidden=g.api_user.is_admin)
    return jsonify([service_catalog.service_as_dict(s) for s in services])


@bp.post("/services")
@admin_only
def create_service():
    cleaned = service_catalog.clean_service(_json())
    service = service_catalog.create_service(cleaned)
    return jsonify(service_catalog.service_as_dict(service)), 201


@bp.get("/services/<int:service_id>")
@token_required
def get_service(service_id: int):
    service = service_catalog.get_service(service_id)
    if service.hidden and not g.api_user.is_admin:
        raise NotFound(_("No such mail service."))
    return jsonify(service_catalog.service_as_dict(service))


@bp.patch("/services/<int:service_id>")
@admin_only
def patch_service(service_id: int):
    service = service_catalog.get_service(service_id)
    cleaned = service_catalog.clean_service(_json(), existing=service)
    return jsonify(service_catalog.service_as_dict(service_catalog.update_service(service, cleaned)))


@bp.delete("/services/<int:service_id>")
@admin_only
def delete_service(service_id: int):
    service = service_catalog.get_service(service_id)
    affected = service_catalog.delete_service(service)
    return jsonify({"deleted": service_id, "affected_accounts": [a.id for a in affected]})


@bp.get("/services/<int:service_id>/affected-accounts")
@admin_only
def affected_accounts(service_id: int):
    service = service_catalog.get_service(service_id)
    return jsonify(
        [
            {"id": a.id, "user": a.user.username, "email": a.email, "description": a.description}
            for a in service_catalog.affected_accounts(service)
        ]
    )


# Settings ------------------------------------------------------------------------------------


@bp.get("/settings")
@admin_only
def get_settings():
    return jsonify(settings_store.all_settings())


@bp.patch("/settings")
@admin_only
def patch_settings():
    return jsonify(settings_store.update(_json()))


# Accounts ------------------------------------------------------------------------------------


@bp.get("/accounts")
@token_required
def list_accounts():
    every = request.args.get("all", "")
    if every not in ("", "1", "true", "0", "false"):  # as the OpenAPI description says
        raise Invalid({"all": _("must be true or false")})
    q = Account.query.filter_by(user_id=g.api_user.id)
    if g.api_user.is_admin and every in ("1", "true"):
        q = Account.query
    return jsonify([accounts.account_as_dict(a) for a in q.order_by(Account.id)])


@bp.post("/accounts")
@token_required
def create_account():
    """Connect a mailbox; its connection test starts at once (``test`` in the answer)."""
    cleaned = accounts.clean_account(g.api_user, _json(), actor=g.api_user)
    account = accounts.create_account(g.api_user, cleaned)
    # Connecting tests the connection at once; the mailbox stays "new" until the job answers.
    return jsonify({**accounts.account_as_dict(account), "test": _test_started(account)}), 201


def _test_started(account: Account) -> dict | None:
    try:
        return job_body(connection_test.start(account, g.api_user))
    except QueueUnavailable:
        return None  # the mailbox is saved: POST /accounts/<id>/test once the queue is back


@bp.get("/accounts/<int:account_id>")
@token_required
def get_account(account_id: int):
    return jsonify(accounts.account_as_dict(accounts.get_account(g.api_user, account_id)))


@bp.patch("/accounts/<int:account_id>")
@token_required
def patch_account(account_id: int):
    account = accounts.get_account(g.api_user, account_id)
    cleaned = accounts.clean_account(account.user, _json(), existing=account, actor=g.api_user)
    before, working = account_states.connection_of(account), account_states.working_settings(account)
    # A working mailbox's edit is committed once, below or after keep_working: never its untested settings.
    accounts.update_account(account, cleaned, commit=working is None)
    if account.active and account_states.connection_of(account) != before:
        if working is not None:
            return _tried_first(account, working)
        body = accounts.account_as_dict(account)
        body["test"] = _test_started(account)  # new login, password or servers: tested at once
        return jsonify(body)
    db.session.commit()
    return jsonify(accounts.account_as_dict(account))


def _tried_first(account: Account, working: dict):
    """A working mailbox keeps its connection settings; the new ones are saved only if their test
    passes (webapp/jobs/edit_trial.py), as on the edit page.  The edit's other fields are saved."""
    proposed = account_states.keep_working(account, working)
    db.session.commit()
    job = edit_trial.start(account, g.api_user, proposed)  # QueueUnavailable: 503, nothing stashed
    return accepted(job, {**accounts.account_as_dict(account), "test": job_body(job)})


@bp.delete("/accounts/<int:account_id>")
@token_required
def delete_account(account_id: int):
    accounts.delete_account(accounts.get_account(g.api_user, account_id))
    return "", 204


# Email log -----------------------------------------------------------------------------------


@bp.get("/logs")
@token_required
def logs():
    """Administrators filter the whole log; users see the entries of their own mailboxes."""
    rows, next_cursor = email_log.search(g.api_user, request.args.to_dict())
    return jsonify({"entries": [email_log.entry_as_dict(e) for e in rows], "next_cursor": next_cursor})


# Jobs ----------------------------------------------------------------------------------------


@bp.post("/accounts/<int:account_id>/test")
@token_required
def test_account(account_id: int):
    account = accounts.get_account(g.api_user, account_id)
    return accepted(connection_test.start(account, g.api_user))


#: A corporate server's test credentials, at most as long as a mailbox stores them.
_CREDENTIAL_LENGTHS = {
    "username": column_length(Account.username),
    "password": 1024,
    "smtp_username": column_length(Account.smtp_username),
    "smtp_password": 1024,
}


@bp.post("/services/<int:service_id>/test")
@admin_only
def test_service(service_id: int):
    """Test a corporate server with credentials that are used once and never stored."""
    service = service_catalog.get_service(service_id)
    data = _json()
    fields = {}
    for key in set(data) - set(_CREDENTIAL_LENGTHS):
        fields[key] = _("unknown field")
    for key in ("username", "password"):
        if not isinstance(data.get(key), str) or not data.get(key):
            fields[key] = _("This field is required.")
    for key in ("smtp_username", "smtp_password"):
        if data.get(key) is not None and not isinstance(data.get(key), str):
            fields[key] = _("must be a string")
    for key, max_length in _CREDENTIAL_LENGTHS.items():
        if key not in fields and isinstance(data.get(key), str) and len(data[key]) > max_length:
            fields[key] = _("must be at most %(max_length)s characters", max_length=max_length)
    if fields:
        raise Invalid(fields)
    job = connection_test.start_service(
        service,
        g.api_user,
        data["username"],
        data["password"],
        data.get("smtp_username"),
        data.get("smtp_password"),
    )
    return accepted(job)


@bp.get("/jobs/<job_id>", endpoint="job_status")
@token_required
def job_status_view(job_id: str):
    return jsonify(job_status.status(job_id, g.api_user))


@bp.get("/openapi.json")
def openapi():
    """This description (no token needed: it holds no data)."""
    cached = current_app.extensions.get("mailroom.openapi")
    if cached is None:
        cached = current_app.extensions["mailroom.openapi"] = description.build(current_app)
    return jsonify(cached)
