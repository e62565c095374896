"""Administration > Email > Shared senders: mailboxes every user may send from (never read)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from .. import identities
from ..auth.decorators import admin_required
from ..extensions import db
from ..forms import ActionForm
from ..models import Account, User
from . import bp


@bp.route("/senders")
@admin_required
def senders():
    mailboxes = (
        Account.query.join(User).order_by(Account.shared_sender.desc(), Account.email, User.username).all()
    )
    return render_template("admin/senders.html", mailboxes=mailboxes, action_form=ActionForm())


@bp.route("/senders/<int:account_id>/toggle", methods=["POST"])
@admin_required
def toggle_shared_sender(account_id: int):
    account = db.session.get(Account, account_id)
    if account is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    identities.set_shared_sender(account, not account.shared_sender)
    db.session.commit()
    flash(
        _("%(email)s is now shared for sending.", email=account.email)
        if account.shared_sender
        else _("%(email)s is no longer shared.", email=account.email),
        "success",
    )
    return redirect(url_for("admin.senders"))
