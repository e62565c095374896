"""Administration › OAuth2 applications: client id, secret, tenant, scopes and the redirect URL per service."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from .. import oauth_apps
from ..auth.decorators import admin_required
from ..errors import DomainError, NotFound
from ..extensions import db
from ..forms import apply_errors
from ..mailboxes.oauth_routes import callback_url
from . import bp
from .forms import OAuthAppForm


@bp.route("/oauth-apps")
@admin_required
def oauth_apps_list():
    services = oauth_apps.oauth_services()
    return render_template(
        "admin/oauth_apps.html",
        rows=[(s, oauth_apps.oauth_app_as_dict(s, oauth_apps.app_for(s), callback_url())) for s in services],
        redirect_uri=callback_url(),
    )


@bp.route("/oauth-apps/<int:service_id>", methods=["GET", "POST"])
@admin_required
def oauth_app_edit(service_id: int):
    try:
        service = oauth_apps.get_oauth_service(service_id)
    except NotFound:
        abort(404)
    app = oauth_apps.app_for(service)
    info = oauth_apps.oauth_app_as_dict(service, app, callback_url())
    form = OAuthAppForm()
    if not form.is_submitted():
        form.client_id.data = info["client_id"] or ""
        form.tenant.data = info["tenant"] or ("common" if info["uses_tenant"] else "")
        form.scopes.data = info["scopes"]
        form.enabled.data = info["enabled"] if app else True
        for key in oauth_apps.URL_FIELDS:
            getattr(form, key).data = (getattr(app, key) if app else None) or ""
    if form.validate_on_submit():
        data = {
            "client_id": form.client_id.data,
            "client_secret": form.client_secret.data or None,
            "scopes": form.scopes.data or "",
            "enabled": bool(form.enabled.data),
            "userinfo_url": form.userinfo_url.data or None,
        }
        if info["uses_tenant"]:
            data["tenant"] = form.tenant.data
        if info["custom"]:
            for key in ("authorization_url", "token_url", "revocation_url"):
                data[key] = getattr(form, key).data or None
        try:
            cleaned = oauth_apps.clean_oauth_app(service, data, app)
            oauth_apps.save_oauth_app(service, cleaned)
        except DomainError as exc:
            db.session.rollback()
            apply_errors(form, exc.fields)
            if not exc.fields:
                form.form_errors.append(exc.message)
        else:
            flash(_('OAuth2 application of "%(name)s" saved.', name=service.name), "success")
            return redirect(url_for("admin.oauth_apps_list"))
    status = 422 if form.errors or form.form_errors else 200
    return render_template("admin/oauth_app_form.html", form=form, service=service, info=info), status
