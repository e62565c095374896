"""Administration > Operations: workers, lanes, failed jobs (Requeue), sync lag, mailboxes, push."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from .. import operations
from ..auth.decorators import admin_required
from ..errors import DomainError
from ..forms import ActionForm
from ..queue import reachable
from . import bp
from .operations_chart import duration, lag_chart


@bp.route("/operations")
@admin_required
def operations_page():
    with reachable():
        figures = operations.figures()
        history = operations.lag_history()
    return render_template(
        "admin/operations.html",
        figures=figures,
        chart=lag_chart(history),
        samples=len(history),
        duration=duration,
        action_form=ActionForm(),
    )


@bp.route("/operations/failed/<job_id>/requeue", methods=["POST"])
@admin_required
def requeue_job(job_id: str):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        with reachable():
            job = operations.requeue(job_id[:100])
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(_("Requeued job %(id)s (%(func_name)s) on %(origin)s.", id=job.id, func_name=job.meta.get('kind') or job.func_name, origin=job.origin), "success")
    return redirect(url_for("admin.operations_page"))
