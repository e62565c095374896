"""My profile › API tokens: one's own tokens (name, created, last used, expiry), create one
(shown once, on the answer page only: never in a cookie or a redirect), revoke one."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import api_tokens
from ..errors import DomainError, NotFound
from ..forms import ActionForm, apply_errors
from . import bp
from .password_forms import TokenForm


def _page(form: TokenForm, new_token: str | None = None, status: int = 200):
    rows = [(row, api_tokens.as_dict(row)) for row in api_tokens.tokens_of(current_user)]
    response = render_template(
        "profile/tokens.html", form=form, rows=rows[::-1], new_token=new_token, action_form=ActionForm()
    )
    headers = {"Cache-Control": "no-store"} if new_token else {}
    return response, status, headers


@bp.route("/tokens", methods=["GET", "POST"])
@login_required
def tokens():
    form = TokenForm()
    if not form.validate_on_submit():
        return _page(form, status=422 if form.is_submitted() else 200)
    try:
        name, days = api_tokens.clean_options({"name": form.name.data or "", "days": int(form.days.data)})
    except DomainError as exc:
        apply_errors(form, exc.fields)
        return _page(form, status=exc.status)
    token, _row = api_tokens.issue(current_user, name or _("unnamed"), days)
    return _page(TokenForm(formdata=None), new_token=token)


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        row = api_tokens.revoke(token_id, owner=current_user)
    except NotFound:
        abort(404)
    flash(
        _("Token “%(name)s” revoked; it stopped working at once.", name=row.name or _("unnamed")), "success"
    )
    return redirect(url_for("profile.tokens"))
