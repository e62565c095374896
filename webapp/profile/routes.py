"""My profile's views: the sender's fields, their live preview and the signature frame; language and time."""

from __future__ import annotations

from types import SimpleNamespace

from flask import flash, jsonify, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import refresh
from flask_login import current_user, login_required

from .. import html_safety, i18n, identities, security_headers, signatures
from ..errors import DomainError
from ..extensions import db
from ..forms import apply_errors
from . import bp
from .forms import LocaleForm, ProfileForm


def _payload(form: ProfileForm) -> dict:
    return {key: getattr(form, key).data or "" for key in identities.PROFILE_FIELDS}


@bp.route("/", methods=["GET", "POST"])
@login_required
def index():
    form = ProfileForm()
    status = 200
    if not form.is_submitted():
        for key in identities.PROFILE_FIELDS:
            getattr(form, key).data = getattr(current_user, key) or ""
    if form.validate_on_submit():
        try:
            identities.update_profile(current_user, identities.clean_profile(_payload(form)))
        except DomainError as exc:
            db.session.rollback()
            apply_errors(form, exc.fields)
            status = 422
        else:
            flash(_("Profile saved."), "success")
            return redirect(url_for("profile.index"))
    return _page(form, _locale_form(), status)


@bp.route("/language", methods=["POST"])
@login_required
def language():
    """Language and time: saved for the signed-in user; the next page is in the new language."""
    form = LocaleForm()
    if form.validate_on_submit():
        try:
            i18n.update_locale(
                current_user, i18n.clean_locale({"language": form.language.data, "time_zone": form.time_zone.data})
            )
        except DomainError as exc:
            db.session.rollback()
            apply_errors(form, exc.fields)
        else:
            db.session.commit()
            refresh()  # the flash below is already in the chosen language
            flash(_("Language and time saved."), "success")
            return redirect(url_for("profile.index"))
    profile = ProfileForm(formdata=None)
    for key in identities.PROFILE_FIELDS:
        getattr(profile, key).data = getattr(current_user, key) or ""
    return _page(profile, form, 422)


def _locale_form() -> LocaleForm:
    form = LocaleForm(formdata=None)
    form.language.data = current_user.language or ""
    form.time_zone.data = current_user.time_zone or ""
    return form


def _page(form: ProfileForm, locale_form: LocaleForm, status: int):
    account = signatures.main_account(current_user)
    return render_template(
        "profile/index.html",
        form=form,
        locale_form=locale_form,
        preview=signatures.render_preview(_sender(_payload(form)), account),
        account=account,
    ), status


def _sender(fields: dict) -> SimpleNamespace:
    """An unsaved stand-in for the user with the typed fields (previews never write)."""
    return SimpleNamespace(**{key: fields.get(key, "") for key in identities.PROFILE_FIELDS})


@bp.route("/preview", methods=["POST"])
@login_required
def preview():
    """The central signature with the fields as typed (JSON; CSRF token in X-CSRFToken)."""
    data = request.get_json(silent=True)
    try:
        cleaned = identities.clean_profile(data)
    except DomainError as exc:
        return jsonify(exc.as_dict()), exc.status
    return jsonify(signatures.render_preview(_sender(cleaned), signatures.main_account(current_user)))


@bp.route("/signature-frame", methods=["POST"])
@login_required
def signature_frame():
    """The HTML signature preview as a document of its own, for the sandboxed frame of the
    signature pages: a ``srcdoc`` frame would inherit the page's policy, which (rightly) refuses
    the ``style=`` attributes signatures are made of.  Sanitized again here, so whatever is
    posted, only what a signature may hold is shown; no script runs (FRAMED_CSP)."""
    html = html_safety.for_signature(request.form.get("html", ""))
    response = make_response(render_template("signatures/frame.html", html=html))
    return security_headers.framed(response)
