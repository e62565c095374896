"""Administration › Email › Email Service Settings: the list of services and the console settings."""

from __future__ import annotations

import json
from datetime import datetime

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import format_datetime, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from connectors.settings import format_server, format_server_with_security

from .. import service_catalog, service_trust, settings_store
from ..auth.decorators import admin_required
from ..errors import DomainError, Invalid
from ..extensions import db
from ..forms import ActionForm, apply_errors, endpoint_field, endpoints_from_form, posted
from ..input_guard import form_page
from ..jobs import connection_test
from ..log_view import render_log
from ..mailboxes.jobs import accepted
from ..models import Account, Service, Setting
from ..validation import text
from . import bp
from .forms import ServiceForm, SettingsForm


def _service_or_404(service_id: int) -> Service:
    service = db.session.get(Service, service_id)
    if service is None:
        abort(404)
    return service


def _settings_form(formdata=None) -> SettingsForm:
    settings = settings_store.all_settings()
    data = dict(settings)
    data["allowed_internal_hosts"] = "\n".join(settings["allowed_internal_hosts"])
    for key in ("default_incoming_account_id", "default_outgoing_account_id"):
        data[key] = str(settings[key]) if settings[key] else ""
    form = SettingsForm(data=data) if formdata is None else SettingsForm()
    mailboxes = Account.query.order_by(Account.email).all()
    choices = [SelectChoice("", _l("— none —"))] + [
        SelectChoice(str(a.id), f"{a.email} ({a.user.username})") for a in mailboxes
    ]
    form.default_incoming_account_id.choices = choices
    form.default_outgoing_account_id.choices = list(choices)
    return form


@bp.route("/services")
@admin_required
def services(settings_form: SettingsForm | None = None):
    heartbeat = db.session.get(Setting, "cron_heartbeat")
    return render_template(
        "admin/services.html",
        services=service_catalog.list_services(),
        settings_form=settings_form or _settings_form(),
        action_form=ActionForm(),
        cron_heartbeat=_last_run_utc(heartbeat),
    )


def _last_run_utc(heartbeat: Setting | None) -> str | None:
    """The cron heartbeat (stored as ISO 8601) in the reader's language and, as the page says, in
    UTC: it was shown as the raw ``2026-11-29T22:45:50+00:00``."""
    if heartbeat is None:
        return None
    return format_datetime(datetime.fromisoformat(json.loads(heartbeat.value)), "medium", rebase=False)


def _save_service(form: ServiceForm, service: Service | None) -> Service | None:
    """Validate the form through the same rules as the API; every field's error goes under its
    field in one answer (a field the form could not read does not hide the others' errors)."""
    errors: dict[str, str] = {}
    data = endpoints_from_form(form, errors)
    try:
        data["name"] = text(form.name.data, max_length=120)
    except ValueError as exc:
        errors["name"] = str(exc)
    data["ca_certificate"] = form.ca_certificate.data or None
    data["verify_certificate"] = not form.skip_certificate_verification.data
    data["max_connections"] = form.max_connections.data
    try:
        cleaned = service_catalog.clean_service(data, existing=service)
    except DomainError as exc:
        db.session.rollback()
        if not exc.fields:
            form.form_errors.append(exc.message)
        mapping = {"verify_certificate": "skip_certificate_verification"}
        flagged = {endpoint_field(key) or key for key in errors} | set(form.errors)
        for key, message in exc.fields.items():  # not again what the form could not read
            if key.split(".")[0] in data and (mapping.get(key) or endpoint_field(key) or key) not in flagged:
                errors[key] = message
        apply_errors(form, errors, mapping)
        return None
    if errors or form.errors:
        apply_errors(form, errors)
        return None
    try:
        if service is None:
            return service_catalog.create_service(cleaned)
        return service_catalog.update_service(service, cleaned)
    except DomainError as exc:
        db.session.rollback()
        form.form_errors.append(exc.message)
        return None


@bp.route("/services/new", methods=["GET", "POST"])
@admin_required
@form_page
def add_service():
    form = ServiceForm()
    if posted(form):
        service = _save_service(form, None)
        if service is not None:
            flash(_('Corporate server "%(name)s" added.', name=service.name), "success")
            return redirect(url_for("admin.services"))
    return render_template("admin/service_form.html", form=form, service=None)


@bp.route("/services/<int:service_id>/edit", methods=["GET", "POST"])
@admin_required
@form_page
def edit_service(service_id: int):
    service = _service_or_404(service_id)
    if service.is_builtin:
        flash(_("Built-in services are maintained by their plugin; you can hide them."), "info")
        return redirect(url_for("admin.services"))
    form = ServiceForm()
    if not form.is_submitted():
        form.name.data = service.name
        form.imap_server.data = format_server(service.imap_host, service.imap_port)
        form.imap_security.data = service.imap_security
        form.smtp_server.data = format_server_with_security(
            "smtp", service.smtp_host, service.smtp_port, service.smtp_security or "none"
        )
        form.smtp_use_tls.data = service.smtp_security != "none"
        form.ca_certificate.data = service.ca_certificate or ""
        form.skip_certificate_verification.data = not service.verify_certificate
        form.max_connections.data = str(service.max_connections or "")
    if posted(form):
        if _save_service(form, service) is not None:
            flash(
                _('"%(name)s" saved. Connected mailboxes use the new settings from their next connection.', name=service.name),
                "success",
            )
            return redirect(url_for("admin.services"))
    return render_template(
        "admin/service_form.html",
        form=form,
        service=service,
        ca_summary=service_trust.summary(service.ca_certificate),
        service_warning=service_trust.service_warning(service),
    )


@bp.route("/services/<int:service_id>/delete", methods=["GET", "POST"])
@admin_required
def delete_service(service_id: int):
    service = _service_or_404(service_id)
    form = ActionForm()
    if service.is_builtin:
        flash(_("Built-in services cannot be deleted; hide them instead."), "error")
        return redirect(url_for("admin.services"))
    if form.validate_on_submit():
        name = service.name
        accounts = service_catalog.delete_service(service)
        flash(
            ngettext(
                '"%(name)s" deleted; %(num)d mailbox lost its service and its owner was notified.',
                '"%(name)s" deleted; %(num)d mailboxes lost their service and their owners were notified.',
                len(accounts),
                name=name,
            ),
            "success",
        )
        return redirect(url_for("admin.services"))
    return render_template(
        "admin/service_delete.html",
        service=service,
        accounts=service_catalog.affected_accounts(service),
        form=form,
    )


@bp.route("/services/<int:service_id>/visibility", methods=["POST"])
@admin_required
def toggle_hidden(service_id: int):
    service = _service_or_404(service_id)
    if ActionForm().validate_on_submit():
        service_catalog.update_service(service, {"hidden": not service.hidden})
        flash(
            _('"%(name)s" is now hidden from the connect form.', name=service.name)
            if service.hidden
            else _('"%(name)s" is now shown in the connect form.', name=service.name),
            "success",
        )
    else:
        abort(400)
    return redirect(url_for("admin.services"))


def _refuse_settings(changes: dict) -> None:
    """Invalid naming what the store's rules refuse among the fields the form could read, so a
    field the form itself refused (a timeout that is not a number) does not hide the others."""
    errors = {}
    for key, value in changes.items():
        try:
            settings_store.SCHEMA[key][1](value)
        except ValueError as exc:
            errors[key] = str(exc)
    raise Invalid(errors)


@bp.route("/settings", methods=["POST"])
@admin_required
def save_settings():
    form = _settings_form(formdata=True)  # CSRFProtect has checked the token before this view runs
    valid = form.validate()
    changes = {
        "allow_manual_entry": bool(form.allow_manual_entry.data),
        "allowed_internal_hosts": [
            line.strip() for line in (form.allowed_internal_hosts.data or "").splitlines() if line.strip()
        ],
        "connection_timeout": form.connection_timeout.data,
        "sync_interval_minutes": form.sync_interval_minutes.data,
    }
    for key in ("default_incoming_account_id", "default_outgoing_account_id"):
        value = getattr(form, key).data
        changes[key] = int(value) if value and value.isdigit() else None
    try:
        if not valid:
            _refuse_settings({k: v for k, v in changes.items() if k not in form.errors})
        settings_store.update(changes)
    except DomainError as exc:
        db.session.rollback()
        apply_errors(form, exc.fields)
        flash(_("Settings not saved: see the errors below."), "error")
        return services(settings_form=form), 422
    flash(_("Settings saved."), "success")
    return redirect(url_for("admin.services"))


@bp.route("/services/<int:service_id>/test", methods=["POST"])
@admin_required
def test_service(service_id: int):
    """Test a server with credentials typed for this test only (never stored); JSON for the page script."""

    service = _service_or_404(service_id)
    data = request.get_json(silent=True) or {}
    fields = {
        k: _("This field is required.")
        for k in ("username", "password")
        if not isinstance(data.get(k), str) or not data[k]
    }
    if fields:
        return jsonify({"error": _("Enter a login and password to test with."), "fields": fields}), 422
    return accepted(connection_test.start_service(service, current_user, data["username"], data["password"]))


@bp.route("/log")
@admin_required
def log():
    return render_log(current_user)


# Page modules of later areas register on the same blueprint.
