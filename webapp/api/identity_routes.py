"""API routes for the sender's profile (``/me``) and a mailbox's aliases."""

from __future__ import annotations

from flask import g, jsonify

from .. import accounts, identities
from . import bp
from .common import _json, token_required


@bp.get("/me")
@token_required
def get_me():
    return jsonify(identities.profile_as_dict(g.api_user))


@bp.patch("/me")
@token_required
def patch_me():
    cleaned = identities.clean_profile(_json())
    return jsonify(identities.profile_as_dict(identities.update_profile(g.api_user, cleaned)))


@bp.get("/accounts/<int:account_id>/aliases")
@token_required
def list_aliases(account_id: int):
    account = accounts.get_account(g.api_user, account_id)
    return jsonify([identities.alias_as_dict(a) for a in identities.aliases_of(account)])


@bp.post("/accounts/<int:account_id>/aliases")
@token_required
def add_alias(account_id: int):
    account = accounts.get_account(g.api_user, account_id)
    alias = identities.add_alias(account, identities.clean_alias(account, _json()))
    return jsonify(identities.alias_as_dict(alias)), 201


@bp.delete("/accounts/<int:account_id>/aliases/<int:alias_id>")
@token_required
def delete_alias(account_id: int, alias_id: int):
    account = accounts.get_account(g.api_user, account_id)
    identities.delete_alias(account, identities.get_alias(account, alias_id))
    return "", 204
