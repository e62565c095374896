"""Administration > Email > Signature: the company's centralized signature template."""

from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from .. import settings_store, signatures
from ..auth.decorators import admin_required
from ..errors import DomainError
from ..extensions import db
from ..forms import apply_errors
from . import bp
from .forms import SignatureForm

KEYS = ("company_name", "central_signature_text", "central_signature_html")


@bp.route("/signature", methods=["GET", "POST"])
@admin_required
def signature():
    form = SignatureForm()
    status = 200
    if not form.is_submitted():
        for key in KEYS:
            getattr(form, key).data = settings_store.get(key)
    if form.validate_on_submit():
        try:
            settings_store.update({key: getattr(form, key).data or "" for key in KEYS})
        except DomainError as exc:
            db.session.rollback()
            apply_errors(form, exc.fields)
            flash(_("Signature not saved: see the errors below."), "error")
            status = 422
        else:
            flash(_("Signature saved. Messages sent from now on use it."), "success")
            return redirect(url_for("admin.signature"))
    preview = signatures.render_preview(
        current_user,
        text_template=form.central_signature_text.data or "",
        html_template=form.central_signature_html.data or "",
        company=form.company_name.data or "",
    )
    return render_template(
        "admin/signature.html", form=form, preview=preview, placeholders=signatures.PLACEHOLDERS
    ), status


@bp.route("/signature/preview", methods=["POST"])
@admin_required
def signature_preview():
    """The templates as typed, filled with the administrator's own profile (JSON for the live preview)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not all(isinstance(data.get(k, ""), str) for k in KEYS):
        return jsonify({"error": _("Send the three fields as strings.")}), 400
    return jsonify(
        signatures.render_preview(
            current_user,
            text_template=data.get("central_signature_text", ""),
            html_template=data.get("central_signature_html", ""),
            company=data.get("company_name", ""),
        )
    )
