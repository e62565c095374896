"""The mailbox's Out-of-office page: on/off, the dates (UTC), subject, text and reply interval.

Registered on the ``mailboxes`` blueprint; validated by webapp.out_of_office like the API.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from .. import out_of_office
from ..errors import Invalid
from ..extensions import db
from ..forms import ActionForm
from . import bp
from .common import _own_account


def _local(value) -> str:
    """A stored naive-UTC time as the value of a ``datetime-local`` input."""
    return value.strftime("%Y-%m-%dT%H:%M") if value else ""


@bp.route("/<int:account_id>/out-of-office", methods=["GET", "POST"])
@login_required
def out_of_office_page(account_id: int):
    account = _own_account(account_id)
    current = out_of_office.settings_for(account)
    data = out_of_office.as_dict(current)
    data["starts_at"], data["ends_at"] = _local(current.starts_at), _local(current.ends_at)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        if not ActionForm().validate_on_submit():
            abort(400)
        form = request.form
        data = {
            "enabled": bool(form.get("enabled")),
            "starts_at": form.get("starts_at", "").strip(),
            "ends_at": form.get("ends_at", "").strip(),
            "subject": form.get("subject", ""),
            "body": form.get("body", ""),
            "interval_days": form.get("interval_days", "").strip(),
        }
        try:
            out_of_office.save(account, out_of_office.clean(current, data))
            flash(_("Out-of-office settings saved."), "success")
            return redirect(url_for("mailboxes.out_of_office_page", account_id=account.id))
        except Invalid as exc:
            db.session.rollback()
            errors, status = exc.fields, 422
    return render_template(
        "mailboxes/out_of_office.html", account=account, data=data, errors=errors, form=ActionForm()
    ), status
