"""What the mailbox pages' route modules share."""

from __future__ import annotations

from flask import abort
from flask_login import current_user

from .. import accounts
from ..errors import NotFound
from ..models import Account


def _own_account(account_id: int) -> Account:
    try:
        account = accounts.get_account(current_user, account_id)
    except NotFound:
        abort(404)
    if account.user_id != current_user.id:
        abort(404)  # pages show one's own mailboxes only
    return account
