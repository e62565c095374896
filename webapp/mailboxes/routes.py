"""The mailbox list, connect/edit/reconnect pages, connection tests and their job pages."""

from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from markupsafe import Markup
from wtforms.fields.choices import SelectChoice

from connectors.settings import format_server, format_server_with_security

from .. import (
    account_states,
    accounts,
    diagnosis,
    html_safety,
    oauth_apps,
    security_headers,
    service_catalog,
    service_trust,
    settings_store,
)
from ..errors import DomainError, Invalid, NotFound, QueueUnavailable
from ..extensions import db
from ..forms import ActionForm, apply_errors, endpoint_field, endpoints_from_form, posted
from ..i18n import translate_stored
from ..input_guard import form_page
from ..job_status import status as job_status_of
from ..jobs import connection_test, edit_trial
from ..log_view import render_log
from ..models import Account, Notification, utcnow
from ..validation import endpoint_from_form
from . import bp
from .common import _own_account
from .forms import ConnectForm, ReconnectForm
from .jobs import accepted

OTHER = "other"


def _service_choices(current: Account | None = None) -> list[SelectChoice]:
    # The company's own servers first: a fresh form opens on the one its people connect to, not Gmail.
    services = sorted(service_catalog.list_services(include_hidden=False), key=lambda s: s.is_builtin)
    choices = [
        SelectChoice(str(s.id), s.name, optgroup=_("Providers") if s.is_builtin else _("Company servers"))
        for s in services
    ]
    # Editing a mailbox of a service hidden since keeps showing that service.
    if current is not None and current.service is not None and current.service.hidden:
        choices.insert(
            0, SelectChoice(str(current.service.id), _("%(service)s (hidden)", service=current.service.name))
        )
    if settings_store.get("allow_manual_entry") or (current is not None and current.manual):
        choices.append(SelectChoice(OTHER, _("Other (enter server details)")))
    return choices


@bp.app_template_filter("diagnosis_label")
def diagnosis_label(field: str) -> str:
    """A stored report from before labels were kept: name its field as the connect form does."""
    return diagnosis.field_label(field)


@bp.app_template_filter("step_label")
def step_label(name: str) -> str:
    return diagnosis.step_label(name)


@bp.app_template_filter("link_urls")
def link_urls(text: str) -> Markup:
    return html_safety.link_urls(text)


@bp.app_template_filter("service_cert_warning")
def service_cert_warning(account: Account) -> str | None:
    """The standing warning of a mailbox whose service does not verify certificates."""
    return service_trust.mailbox_warning(account)


@bp.route("/")
@login_required
def index():
    mine = Account.query.filter_by(user_id=current_user.id).order_by(Account.is_main.desc(), Account.id).all()
    return render_template(
        "mailboxes/index.html",
        accounts=mine,
        action_form=ActionForm(),
        running_test=_running_test(),
    )


def _running_test() -> dict | None:
    """The test started by connecting (``?testing=<account id>&job=<job id>``), for the row to follow."""
    account_id, job_id = request.args.get("testing", type=int), request.args.get("job", "")
    if account_id is None or not job_id:
        return None
    try:
        job_status_of(job_id, current_user)  # only the owner's job, and one that exists
    except (NotFound, QueueUnavailable):
        return None  # the list still shows; the row says "Not tested yet"
    return {"account_id": account_id, "status_url": url_for("mailboxes.job_status", job_id=job_id)}


def _form_payload(form: ConnectForm, errors: dict[str, str], creating: bool) -> dict:
    data: dict = {
        "username": form.username.data,
        "email": form.email.data,
        "description": form.description.data,
    }
    if creating or form.password.data:
        data["password"] = form.password.data
    if form.is_main.data:
        data["is_main"] = True
    data.update(
        active=bool(form.active.data),
        debug=bool(form.debug.data),
        push=bool(form.push.data),
        verify_certificate=not form.disable_certificate_validation.data,
        incoming_protocol=form.incoming_protocol.data,
        pop3_leave_on_server=bool(form.pop3_leave_on_server.data),
        smtp_requires_auth=bool(form.smtp_requires_auth.data),
        smtp_username=form.smtp_username.data or None,
        smtp_from=form.smtp_from.data or None,
        signature_mode=form.signature_mode.data,
        signature_text=form.signature_text.data or None,
        signature_html=form.signature_html.data or None,
    )
    if form.smtp_password.data:
        data["smtp_password"] = form.smtp_password.data
    if form.service.data == OTHER:
        data["manual"] = endpoints_from_form(form, errors)
        if form.pop3_server.data and form.pop3_server.data.strip():
            pop3 = endpoint_from_form(
                "pop3", form.pop3_server.data, form.pop3_security.data, "pop3_server", "pop3_security", errors
            )
            if pop3:
                data["manual"]["pop3"] = pop3
    elif form.service.data and form.service.data.isdigit():
        data["service_id"] = int(form.service.data)
    else:
        errors["service"] = _("Choose a mail service.")
    return data


def _presets_for_page() -> dict:
    """Hints per service id for the connect form (app passwords, ports)."""

    out = {}
    for service in service_catalog.list_services(include_hidden=False):
        preset = service_catalog.preset_for(service)
        out[str(service.id)] = {
            "hints": [translate_stored(hint) for hint in preset.hints] if preset else [],
            "oauth2": oauth_apps.usable_app(service) is not None,
            "password": preset is None or "password" in preset.auth_methods,
            "imap": service.endpoint("imap"),
            "smtp": service.endpoint("smtp"),
        }
    return out


@bp.route("/connect", methods=["GET", "POST"])
@login_required
@form_page
def connect():
    form = ConnectForm()
    form.service.choices = _service_choices()
    if form.validate_on_submit() and form.auth_method.data == "oauth2" and form.service.data != OTHER:
        return redirect(url_for("mailboxes.oauth_start", service=form.service.data))
    if posted(form):
        account = _save(form, None)
        if account is not None:
            # Connecting tests the connection at once: the list shows the job's steps live on the row.
            return _saved_and_tested(account)
    # The form's answer redirects to the chosen OAuth2 provider: its policy's form-action names them.
    security_headers.allow_form_targets(oauth_apps.authorization_origins())
    return render_template(
        "mailboxes/connect.html", form=form, account=None, service_info=_presets_for_page()
    )


# The edit form's fields that hold an account column as it is stored (same name, same value).
_FIELDS_AS_STORED = (
    "username",
    "email",
    "description",
    "is_main",
    "active",
    "debug",
    "push",
    "incoming_protocol",
    "pop3_leave_on_server",
    "smtp_requires_auth",
    "smtp_username",
    "smtp_from",
    "signature_mode",
    "signature_text",
    "signature_html",
)


@bp.route("/<int:account_id>/edit", methods=["GET", "POST"])
@login_required
@form_page
def edit(account_id: int):
    account = _own_account(account_id)
    if account.service_removed and not _typing_servers(account):
        return _reconnect(account)
    form = ConnectForm()
    form.service.choices = _service_choices(account)
    if not form.is_submitted() and account.service_removed:  # "Other": the servers typed by hand
        form.service.data = OTHER
        for name in _FIELDS_AS_STORED:
            getattr(form, name).data = getattr(account, name)
    elif not form.is_submitted():
        form.service.data = (
            OTHER if account.manual else (str(account.service_id) if account.service_id else "")
        )
        for name in _FIELDS_AS_STORED:
            getattr(form, name).data = getattr(account, name)
        form.disable_certificate_validation.data = not account.verify_certificate
        if account.manual and account.pop3_host:
            form.pop3_server.data = format_server(account.pop3_host, account.pop3_port)
            form.pop3_security.data = account.pop3_security
        if account.manual:
            form.imap_server.data = format_server(account.imap_host, account.imap_port)
            form.imap_security.data = account.imap_security
            form.smtp_server.data = format_server_with_security(
                "smtp", account.smtp_host, account.smtp_port, account.smtp_security or "none"
            )
            form.smtp_use_tls.data = account.smtp_security != "none"
    if posted(form):
        before, working = _connection_of(account), _working_settings(account)
        # A working mailbox's edit is committed once, below or after keep_working: never its untested settings.
        if _save(form, account, commit=working is None) is not None:
            if account.active and _connection_of(account) != before:
                return _saved_and_tested(account) if working is None else _tried_first(account, working)
            db.session.commit()
            flash(_("Mailbox %(email)s saved.", email=account.email), "success")
            return redirect(url_for("mailboxes.index"))
    return render_template(
        "mailboxes/connect.html", form=form, account=account, service_info=_presets_for_page()
    )


#: What a connection depends on (account_states, shared with the API's PATCH): an edit that changes
#: any of these is tested at once.
_CONNECTION_COLUMNS = account_states.CONNECTION_COLUMNS
_connection_of = account_states.connection_of


_working_settings = account_states.working_settings


def _tried_first(account: Account, working: dict):
    """Put the working settings back, save the rest of the edit, and test the new ones before saving them."""
    proposed = account_states.keep_working(account, working)
    db.session.commit()
    try:
        job = edit_trial.start(account, current_user, proposed)
    except QueueUnavailable as exc:
        flash(
            _(
                "The new connection settings of %(email)s were not saved: they could not be tested (%(message)s).",
                email=account.email,
                message=exc.message,
            ),
            "error",
        )
        return redirect(url_for("mailboxes.index"))
    flash(
        _("Testing the new settings of %(email)s; they are saved once the test passes.", email=account.email),
        "success",
    )
    return redirect(url_for("mailboxes.index", testing=account.id, job=job.id))


def _saved_and_tested(account: Account):
    """Start the saved mailbox's connection test; the list then follows it on the mailbox's row."""
    try:
        job = connection_test.start(account, current_user)
    except QueueUnavailable as exc:  # saved; its row's button tests it later
        flash(
            _(
                "Mailbox %(email)s saved, not tested yet: %(message)s",
                email=account.email,
                message=exc.message,
            ),
            "error",
        )
        return redirect(url_for("mailboxes.index"))
    flash(_("Mailbox %(email)s saved; testing its connection now.", email=account.email), "success")
    return redirect(url_for("mailboxes.index", testing=account.id, job=job.id))


def _typing_servers(account: Account) -> bool:
    """A mailbox that lost its service, reconnected by typing its servers ("Other", ``?other=1``)
    where the administrator allows manual entry."""
    return request.args.get("other") == "1" and bool(settings_store.get("allow_manual_entry"))


def _reconnect(account: Account):
    """A mailbox that lost its service offers only: connect it again through another one, or remove it.

    The full edit form would preselect the first service (Gmail) and Save would move the
    mailbox there without anyone choosing it; here nothing is chosen until the person does.
    """
    form = ReconnectForm()
    form.service.choices = [SelectChoice("", _l("— Choose a mail service —"))] + [
        c for c in _service_choices() if c.value != OTHER
    ]
    if form.validate_on_submit():
        data: dict = {"service_id": int(form.service.data) if form.service.data.isdigit() else None}
        if form.password.data:
            data["password"] = form.password.data
        try:
            if data["service_id"] is None:
                raise Invalid({"service_id": _("Choose the mail service to connect it through.")})
            accounts.update_account(account, accounts.clean_account(current_user, data, existing=account))
        except DomainError as exc:
            db.session.rollback()
            apply_errors(form, exc.fields, {"service_id": "service"})
            if not exc.fields:
                form.form_errors.append(exc.message)
        else:
            Notification.query.filter_by(
                user_id=current_user.id, account_id=account.id, kind="service_removed", read_at=None
            ).update({"read_at": utcnow()})
            db.session.commit()
            flash(
                _(
                    "Mailbox %(email)s now connects through %(name)s.",
                    email=account.email,
                    name=account.service.name,
                ),
                "success",
            )
            return redirect(url_for("mailboxes.index"))
    return render_template(
        "mailboxes/reconnect.html",
        form=form,
        account=account,
        action_form=ActionForm(),
        allow_manual=settings_store.get("allow_manual_entry"),
    )


#: Domain error keys (webapp.accounts) -> the connect form's fields.
_FIELD_OF = {"service_id": "service", "manual": "service", "verify_certificate": "disable_certificate_validation"}


def _save(form: ConnectForm, account: Account | None, commit: bool = True) -> Account | None:
    """Validate through the same rules as the API; every wrong field is named in one answer (a
    service not offered or a server the form could not read does not hide the others' errors)."""
    errors: dict[str, str] = {}
    data = _form_payload(form, errors, creating=account is None)
    if account is not None and _manual_unchanged(account, data):
        # Unchanged details stay allowed even after the administrator forbids manual entry.
        data.pop("manual")
    try:
        cleaned = accounts.clean_account(current_user, data, existing=account)
    except DomainError as exc:
        db.session.rollback()
        _merge_errors(form, errors, exc)
        return None
    if errors or form.errors:
        apply_errors(form, errors)
        return None
    try:
        if account is None:
            return accounts.create_account(current_user, cleaned)
        return accounts.update_account(account, cleaned, commit=commit)
    except DomainError as exc:
        db.session.rollback()
        apply_errors(form, exc.fields, _FIELD_OF)
        if not exc.fields:
            form.form_errors.append(exc.message)
        return None


def _manual_unchanged(account: Account, data: dict) -> bool:
    manual = data.get("manual")
    return bool(
        account.manual
        and manual is not None
        and manual == {p: account.endpoint(p) for p in ("imap", "smtp", "pop3") if p in manual or p != "pop3"}
    )


def _merge_errors(form: ConnectForm, errors: dict[str, str], exc: DomainError) -> None:
    """The domain's field errors beside the form's own, a field named once (the form's reading wins)."""
    if not exc.fields and not errors and not form.errors:
        form.form_errors.append(exc.message)
    flagged = {_FIELD_OF.get(key) or endpoint_field(key) or key for key in errors} | set(form.errors)
    for key, message in exc.fields.items():
        if (_FIELD_OF.get(key) or endpoint_field(key) or key) not in flagged:
            errors[key] = message
    apply_errors(form, errors, _FIELD_OF)


@bp.route("/<int:account_id>/main", methods=["POST"])
@login_required
def make_main(account_id: int):
    account = _own_account(account_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    accounts.update_account(account, {"is_main": True})
    flash(_("%(email)s is now your main mailbox.", email=account.email), "success")
    return redirect(url_for("mailboxes.index"))


@bp.route("/<int:account_id>/delete", methods=["POST"])
@login_required
def delete(account_id: int):
    account = _own_account(account_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    email = account.email
    accounts.delete_account(account)
    flash(_("Mailbox %(email)s removed.", email=email), "success")
    return redirect(url_for("mailboxes.index"))


@bp.route("/notifications/<int:note_id>/dismiss", methods=["POST"])
@login_required
def dismiss(note_id: int):
    note = db.session.get(Notification, note_id)
    if note is None or note.user_id != current_user.id or not ActionForm().validate_on_submit():
        abort(404)
    note.read_at = utcnow()
    db.session.commit()
    return redirect(request.referrer or url_for("mailboxes.index"))


@bp.route("/log")
@login_required
def log():
    return render_log(current_user)


@bp.route("/<int:account_id>/test", methods=["POST"])
@login_required
def test(account_id: int):
    """Start a connection test (CSRF token in the X-CSRFToken header); the page then polls the job."""
    return accepted(connection_test.start(_own_account(account_id), current_user))


@bp.route("/jobs/<job_id>")
@login_required
def job_status(job_id: str):
    try:
        return jsonify(job_status_of(job_id, current_user))
    except NotFound as exc:
        return jsonify(exc.as_dict()), 404


@bp.route("/<int:account_id>/row")
@login_required
def row(account_id: int):
    """The mailbox's rows of the list, for the page to refresh after a connection test."""
    return render_template("mailboxes/_row.html", a=_own_account(account_id), action_form=ActionForm())


@bp.route("/jobs/<job_id>/report")
@login_required
def job_report(job_id: str):
    """A finished connection test rendered as HTML, for pages that show it without reloading."""
    try:
        body = job_status_of(job_id, current_user)
    except NotFound:
        abort(404)
    if body["status"] != "finished" or not isinstance(body.get("result"), dict):
        abort(409)
    return render_template("mailboxes/_check.html", summary=body["result"])
