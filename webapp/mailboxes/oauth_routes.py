"""Connecting with OAuth2 from the pages: start, the provider's redirect back, and "Sign in again"."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import oauth
from ..errors import DomainError
from ..extensions import db
from ..forms import ActionForm
from ..jobs import connection_test
from ..validation import record_id
from . import bp
from .common import _own_account


def callback_url() -> str:
    """The redirect URL registered at the provider: :func:`oauth_callback`'s, absolute (it honours
    SERVER_NAME and PREFERRED_URL_SCHEME).  Built here, in the web layer, and handed to the
    services (:mod:`webapp.oauth`, :mod:`webapp.oauth_apps`), which need no request."""
    return url_for("mailboxes.oauth_callback", _external=True)


@bp.route("/oauth/start")
@login_required
def oauth_start():
    """Send the browser to the provider's consent page (``?service=<id>``, ``&account=<id>`` to sign in again)."""
    service = request.args.get("service", "")
    account = None
    if request.args.get("account"):
        try:
            account = _own_account(record_id(request.args["account"]))
        except ValueError:
            abort(404)
        if not service:
            service = str(account.service_id or "")
    try:
        url = oauth.start(
            current_user,
            int(service) if service.isascii() and service.isdigit() else None,
            redirect_uri=callback_url(),
            account=account,
        )
    except DomainError as exc:
        db.session.rollback()
        message = "; ".join(exc.fields.values()) or exc.message
        flash(_("OAuth2 sign-in could not start: %(message)s", message=message), "error")
        return redirect(url_for("mailboxes.connect"))
    return redirect(url, code=302)


def _finished(result: oauth.Finished):
    if result.ask_email:
        return redirect(url_for("mailboxes.oauth_email"))
    account = result.account
    connection_test.start(account, current_user)  # the list page shows its outcome on the row
    flash(
        _("Mailbox %(email)s connected with OAuth2; testing the connection now.", email=account.email)
        if result.created
        else _("Mailbox %(email)s signed in again with OAuth2; testing the connection now.", email=account.email),
        "success",
    )
    return redirect(url_for("mailboxes.index"))


@bp.route("/oauth/callback")
@login_required
def oauth_callback():
    """The redirect URL registered at the provider: check the state, swap the code, save the mailbox."""
    try:
        result = oauth.finish(current_user, request.args.to_dict(), callback_url())
    except DomainError as exc:
        db.session.rollback()
        return render_template("mailboxes/oauth_error.html", message=exc.message), exc.status
    return _finished(result)


@bp.route("/oauth/email", methods=["GET", "POST"])
@login_required
def oauth_email():
    """Ask the address when neither the id_token nor the userinfo endpoint named it."""

    form = ActionForm()
    error = None
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            return _finished(
                oauth.finish_with_email(
                    current_user, session.get("oauth_ask_email"), request.form.get("email", "")
                )
            )
        except DomainError as exc:
            db.session.rollback()
            if exc.status == 400 or not exc.fields:
                return render_template("mailboxes/oauth_error.html", message=exc.message), exc.status
            error = exc.fields.get("email") or exc.message
    if not session.get("oauth_ask_email"):
        return render_template(
            "mailboxes/oauth_error.html", message=_("No sign-in is waiting for an address; start it again.")
        ), 400
    return render_template("mailboxes/oauth_email.html", form=form, error=error), 422 if error else 200
