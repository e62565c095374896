"""The email log page, shared by administrators (everything) and users (their mailboxes)."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import render_template, request

from . import email_log
from .errors import Invalid
from .models import Account, LogLevel, LogSource, User


def render_log(viewer: User):
    args = {k: v for k, v in request.args.items() if v}
    errors: dict[str, str] = {}
    try:
        entries, next_cursor = email_log.search(viewer, args)
    except Invalid as exc:
        entries, next_cursor, errors = [], None, exc.fields
    mailboxes = Account.query if viewer.is_admin else Account.query.filter_by(user_id=viewer.id)
    return render_template(
        "log.html",
        entries=entries,
        next_cursor=next_cursor,
        next_query=urlencode({**args, "cursor": next_cursor or ""}),
        args=args,
        errors=errors,
        sources=[s.value for s in LogSource],
        levels=[lv.value for lv in LogLevel],
        mailboxes=mailboxes.order_by(Account.email).all(),
        users=User.query.order_by(User.username).all() if viewer.is_admin else [],
        show_users=viewer.is_admin,
    )
