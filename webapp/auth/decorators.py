"""Access rules for views of every blueprint."""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required


def admin_required(view):
    """Pages for administrators only: anyone else gets 403."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped
