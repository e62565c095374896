"""The mailbox's Filters page: the ordered rules, add/edit with condition and action rows, Run now.

Registered on the ``mailboxes`` blueprint.  The form posts parallel lists (``cond_field``,
``cond_header``, ``cond_op``, ``cond_value``; ``act_type``, ``act_folder``), turned into the
API's JSON shape and validated by webapp.filters, so field errors (``conditions[0].value``)
are the same as the API's and show under their row.
"""

from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from .. import filters
from .. import folders as folder_rules
from ..errors import DomainError, Invalid
from ..extensions import db
from ..forms import ActionForm
from ..jobs import automation
from ..models import Account, Filter, Folder
from . import bp
from .common import _own_account
from .jobs import accepted


def _folders(account: Account) -> list[Folder]:
    return [f for f in folder_rules.ordered(account, include_vanished=False) if folder_rules.selectable(f)]


#: The form's choices in the reader's language (the stored values stay the codes of webapp.filters).
FIELD_LABELS = {"from": _l("From"), "to": _l("To"), "subject": _l("Subject"), "header": _l("Header")}
OP_LABELS = {"contains": _l("contains"), "equals": _l("equals")}
ACTION_LABELS = {"move": _l("Move to folder"), "mark_read": _l("Mark as read"), "flag": _l("Flag")}


def _describe(account: Account, rule: Filter) -> tuple[str, str]:
    """The list's "when" and "then" in the reader's language (the template says all of / any of)."""
    names = {f.id: f.display_name for f in Folder.query.filter_by(account_id=account.id)}
    conds = []
    for c in filters.conditions_of(rule):
        what = c["header"] if c["field"] == "header" else FIELD_LABELS.get(c["field"], c["field"])
        op = c.get("op", "contains")
        conds.append(_('%(field)s %(op)s "%(value)s"', field=what, op=OP_LABELS.get(op, op), value=c["value"]))
    acts = []
    gone = _("(deleted folder)")
    for a in filters.actions_of(rule):
        if a["type"] == "move":
            acts.append(_("move to %(folder)s", folder=names.get(a["folder_id"], gone)))
        else:
            acts.append({"mark_read": _("mark as read"), "flag": _("flag")}[a["type"]])
    return "; ".join(conds), ", ".join(acts)


@bp.route("/<int:account_id>/filters")
@login_required
def filters_page(account_id: int):
    account = _own_account(account_id)
    rules = filters.ordered(account)
    return render_template(
        "mailboxes/filters.html",
        account=account,
        rules=rules,
        describe=lambda r: _describe(account, r),
        folders=_folders(account),
        form=ActionForm(),
    )


def _posted() -> dict:
    form = request.form
    conditions = []
    fields, headers = form.getlist("cond_field"), form.getlist("cond_header")
    ops, values = form.getlist("cond_op"), form.getlist("cond_value")
    for i, field in enumerate(fields):
        cond = {"field": field, "op": ops[i] if i < len(ops) else "contains"}
        cond["value"] = values[i] if i < len(values) else ""
        if field == "header":
            cond["header"] = headers[i] if i < len(headers) else ""
        conditions.append(cond)
    actions = []
    types, targets = form.getlist("act_type"), form.getlist("act_folder")
    for i, kind in enumerate(types):
        action: dict = {"type": kind}
        if kind == "move":
            action["folder_id"] = targets[i] if i < len(targets) else ""
        actions.append(action)
    return {
        "name": form.get("name", ""),
        "match": form.get("match", "all"),
        "enabled": bool(form.get("enabled")),
        "conditions": conditions,
        "actions": actions,
    }


def _as_form(rule: Filter | None) -> dict:
    if rule is None:
        return {
            "name": "",
            "match": "all",
            "enabled": True,
            "conditions": [{"field": "from", "op": "contains", "value": ""}],
            "actions": [{"type": "move"}],
        }
    return filters.filter_as_dict(rule)


def _edit(account: Account, rule: Filter | None):
    data = _as_form(rule)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        if not ActionForm().validate_on_submit():
            abort(400)
        data = _posted()
        try:
            if rule is None:
                filters.create_filter(account, filters.clean_filter(account, data))
                flash(_("Filter added."), "success")
            else:
                filters.update_filter(rule, filters.clean_filter(account, data, existing=rule))
                flash(_("Filter saved."), "success")
            return redirect(url_for("mailboxes.filters_page", account_id=account.id))
        except Invalid as exc:
            db.session.rollback()
            errors, status = exc.fields, 422
    return render_template(
        "mailboxes/filter_form.html",
        account=account,
        rule=rule,
        data=data,
        errors=errors,
        folders=_folders(account),
        form=ActionForm(),
        fields=[(f, FIELD_LABELS[f]) for f in filters.FIELDS],
        ops=[(o, OP_LABELS[o]) for o in filters.OPS],
        action_types=list(ACTION_LABELS.items()),
    ), status


@bp.route("/<int:account_id>/filters/new", methods=["GET", "POST"])
@login_required
def filter_new(account_id: int):
    return _edit(_own_account(account_id), None)


def _own_rule(account: Account, filter_id: int) -> Filter:
    try:
        return filters.get_filter(account, filter_id)
    except DomainError:
        abort(404)


@bp.route("/<int:account_id>/filters/<int:filter_id>/edit", methods=["GET", "POST"])
@login_required
def filter_edit(account_id: int, filter_id: int):
    account = _own_account(account_id)
    return _edit(account, _own_rule(account, filter_id))


@bp.route("/<int:account_id>/filters/<int:filter_id>/<action>", methods=["POST"])
@login_required
def filter_action(account_id: int, filter_id: int, action: str):
    """Buttons of the list: up, down, enable, disable, delete."""
    account = _own_account(account_id)
    rule = _own_rule(account, filter_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    if action in ("up", "down"):
        filters.move_filter(rule, max(0, rule.position + (-1 if action == "up" else 1)))
    elif action in ("enable", "disable"):
        filters.update_filter(rule, {"enabled": action == "enable"})
    elif action == "delete":
        filters.delete_filter(rule)
        flash(_("Filter deleted."), "success")
    else:
        abort(404)
    return redirect(url_for("mailboxes.filters_page", account_id=account.id))


@bp.route("/<int:account_id>/folders/<int:folder_id>/run-filters", methods=["POST"])
@login_required
def run_filters_now(account_id: int, folder_id: int):
    """Enqueue "Run now" (CSRF token in the X-CSRFToken header); the page polls the job."""
    account = _own_account(account_id)
    folder = db.session.get(Folder, folder_id)
    if folder is None or folder.account_id != account.id:
        abort(404)
    try:
        job = automation.start(account, folder, current_user)
    except DomainError as exc:
        return jsonify(exc.as_dict()), exc.status
    return accepted(job)
