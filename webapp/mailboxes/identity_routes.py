"""The mailbox edit page's aliases section: list, add, remove (the same rules as the aliases API)."""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import login_required

from .. import identities
from ..errors import DomainError
from ..extensions import db
from ..forms import ActionForm
from ..models import Account
from . import bp
from .common import _own_account
from .forms import AliasForm


@bp.app_template_global()
def mailbox_aliases(account: Account) -> list:
    return identities.aliases_of(account)


@bp.app_template_global()
def alias_form() -> AliasForm:
    return AliasForm()


@bp.route("/<int:account_id>/aliases", methods=["POST"])
@login_required
def add_alias(account_id: int):
    account = _own_account(account_id)
    form = AliasForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        cleaned = identities.clean_alias(
            account, {"address": form.address.data or "", "display_name": form.display_name.data or ""}
        )
        alias = identities.add_alias(account, cleaned)
    except DomainError as exc:
        db.session.rollback()
        for field, message in exc.fields.items():
            label = {"address": "Alias address", "display_name": "Name shown"}.get(field, field)
            flash(_("Alias not added. %(label)s: %(message)s", label=label, message=message), "error")
        if not exc.fields:
            flash(_("Alias not added: %(message)s", message=exc.message), "error")
    else:
        flash(_("%(email)s may now send as %(address)s.", email=account.email, address=alias.address), "success")
    return redirect(url_for("mailboxes.edit", account_id=account.id) + "#aliases")


@bp.route("/<int:account_id>/aliases/<int:alias_id>/delete", methods=["POST"])
@login_required
def delete_alias(account_id: int, alias_id: int):
    account = _own_account(account_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        alias = identities.get_alias(account, alias_id)
    except DomainError:
        abort(404)
    address = alias.address
    identities.delete_alias(account, alias)
    flash(_("Alias %(address)s removed.", address=address), "success")
    return redirect(url_for("mailboxes.edit", account_id=account.id) + "#aliases")
