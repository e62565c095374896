"""API routes for folders (registered on the /api/v1 blueprint).

The mailbox's owner (or an administrator) lists the folders, chooses which to
sync and which folder has each role, and asks for a fresh LIST from the server
(a job: the web never talks to a mail server).
"""

from __future__ import annotations

from flask import g, jsonify
from flask_babel import gettext as _

from .. import accounts, folders
from ..errors import NotFound
from ..extensions import db
from ..jobs import folders as folder_jobs
from ..models import Folder
from . import bp
from .common import _json, token_required
from .jobs import accepted


def _folder(account_id: int, folder_id: int) -> Folder:
    account = accounts.get_account(g.api_user, account_id)
    folder = db.session.get(Folder, folder_id)
    if folder is None or folder.account_id != account.id:
        raise NotFound(_("No such folder in this mailbox."))
    return folder


@bp.get("/accounts/<int:account_id>/folders")
@token_required
def list_folders(account_id: int):
    account = accounts.get_account(g.api_user, account_id)
    return jsonify([folders.folder_as_dict(f) for f in folders.ordered(account)])


@bp.patch("/accounts/<int:account_id>/folders/<int:folder_id>")
@token_required
def patch_folder(account_id: int, folder_id: int):
    folder = _folder(account_id, folder_id)
    changes = folders.clean_changes(folder, _json())
    return jsonify(folders.folder_as_dict(folders.apply_changes(folder, changes)))


@bp.delete("/accounts/<int:account_id>/folders/<int:folder_id>")
@token_required
def delete_folder(account_id: int, folder_id: int):
    """Remove a folder that is gone from the server, with its messages (409 while it is still there)."""
    folders.remove_folder(_folder(account_id, folder_id))
    return "", 204


@bp.post("/accounts/<int:account_id>/folders/refresh")
@token_required
def refresh_folders(account_id: int):
    return accepted(folder_jobs.start(accounts.get_account(g.api_user, account_id), g.api_user))
