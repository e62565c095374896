"""The email log page, shared by administrators (everything) and users (their mailboxes)."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import render_template, request
from flask_babel import lazy_pgettext

from . import email_log
from .errors import Invalid
from .models import Account, LogLevel, LogSource, User

#: The stored source and level (English codes, also the API's and the filters' values) in words
#: of the reader's language.
SOURCE_LABELS = {
    LogSource.IMAP_AUTH.value: lazy_pgettext("log source", "IMAP Auth"),
    LogSource.SMTP_AUTH.value: lazy_pgettext("log source", "SMTP Auth"),
    LogSource.POP3_AUTH.value: lazy_pgettext("log source", "POP3 Auth"),
    LogSource.INCOMING.value: lazy_pgettext("log source", "Incoming mail"),
    LogSource.SYNC.value: lazy_pgettext("log source", "Sync"),
    LogSource.EMAIL_LOGGER.value: lazy_pgettext("log source", "Email Logger"),
    LogSource.ADMIN.value: lazy_pgettext("log source", "Admin"),
}
LEVEL_LABELS = {
    LogLevel.DEBUG.value: lazy_pgettext("log level", "debug"),
    LogLevel.INFO.value: lazy_pgettext("log level", "info"),
    LogLevel.WARNING.value: lazy_pgettext("log level", "warning"),
    LogLevel.ERROR.value: lazy_pgettext("log level", "error"),
}


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
        source_labels=SOURCE_LABELS,
        level_labels=LEVEL_LABELS,
    )
