"""API routes for automation: a mailbox's filters, "Run now" on a folder, and its out-of-office.

The mailbox's owner (or an administrator) reads and changes them; rules are validated by
webapp.filters (422 naming ``conditions[0].value``, ``actions[0].folder_id``, …).
"""

from __future__ import annotations

from flask import g, jsonify
from flask_babel import gettext as _

from .. import accounts, filters, out_of_office
from ..errors import Invalid, NotFound
from ..extensions import db
from ..jobs import automation
from ..models import Folder
from . import bp
from .common import _json, token_required
from .jobs import accepted


@bp.get("/accounts/<int:account_id>/filters")
@token_required
def list_filters(account_id: int):
    account = accounts.get_account(g.api_user, account_id)
    return jsonify([filters.filter_as_dict(r) for r in filters.ordered(account)])


@bp.post("/accounts/<int:account_id>/filters")
@token_required
def create_filter(account_id: int):
    account = accounts.get_account(g.api_user, account_id)
    rule = filters.create_filter(account, filters.clean_filter(account, _json()))
    return jsonify(filters.filter_as_dict(rule)), 201


@bp.get("/accounts/<int:account_id>/filters/<int:filter_id>")
@token_required
def get_filter(account_id: int, filter_id: int):
    account = accounts.get_account(g.api_user, account_id)
    return jsonify(filters.filter_as_dict(filters.get_filter(account, filter_id)))


@bp.patch("/accounts/<int:account_id>/filters/<int:filter_id>")
@token_required
def patch_filter(account_id: int, filter_id: int):
    account = accounts.get_account(g.api_user, account_id)
    rule = filters.get_filter(account, filter_id)
    cleaned = filters.clean_filter(account, _json(), existing=rule)
    return jsonify(filters.filter_as_dict(filters.update_filter(rule, cleaned)))


@bp.delete("/accounts/<int:account_id>/filters/<int:filter_id>")
@token_required
def delete_filter(account_id: int, filter_id: int):
    account = accounts.get_account(g.api_user, account_id)
    filters.delete_filter(filters.get_filter(account, filter_id))
    return "", 204


@bp.post("/accounts/<int:account_id>/filters/<int:filter_id>/move")
@token_required
def move_filter(account_id: int, filter_id: int):
    """``{"position": n}`` (0 = first) or ``{"direction": "up" | "down"}``."""
    account = accounts.get_account(g.api_user, account_id)
    rule = filters.get_filter(account, filter_id)
    body = _json()
    if unknown := set(body) - {"position", "direction"}:
        raise Invalid({key: _("unknown field") for key in unknown})
    position = body.get("position")
    direction = body.get("direction")
    # A position given is checked even beside a direction (which wins), as the OpenAPI schema says.
    if ("position" in body or direction is None) and (
        not isinstance(position, int) or isinstance(position, bool) or position < 0
    ):
        raise Invalid({"position": _("must be a whole number from 0 (or give direction up/down)")})
    if direction is not None:
        if direction not in ("up", "down"):
            raise Invalid({"direction": _("must be up or down")})
        position = max(0, rule.position + (-1 if direction == "up" else 1))
    filters.move_filter(rule, position)
    return jsonify([filters.filter_as_dict(r) for r in filters.ordered(account)])


@bp.post("/accounts/<int:account_id>/folders/<int:folder_id>/run-filters")
@token_required
def run_filters(account_id: int, folder_id: int):
    account = accounts.get_account(g.api_user, account_id)
    folder = db.session.get(Folder, folder_id)
    if folder is None or folder.account_id != account.id:
        raise NotFound(_("No such folder in this mailbox."))
    return accepted(automation.start(account, folder, g.api_user))


@bp.get("/accounts/<int:account_id>/out-of-office")
@token_required
def get_out_of_office(account_id: int):
    account = accounts.get_account(g.api_user, account_id)
    return jsonify(out_of_office.as_dict(out_of_office.settings_for(account)))


@bp.put("/accounts/<int:account_id>/out-of-office")
@token_required
def put_out_of_office(account_id: int):
    account = accounts.get_account(g.api_user, account_id)
    cleaned = out_of_office.clean(out_of_office.settings_for(account), _json())
    return jsonify(out_of_office.as_dict(out_of_office.save(account, cleaned)))
