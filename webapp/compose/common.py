"""What the compose blueprint's route modules share: the posted form as send fields, the form page."""

from __future__ import annotations

import base64
import zoneinfo
from datetime import UTC, datetime, timedelta

from flask import current_app, render_template
from flask_babel import gettext as _
from flask_login import current_user

from .. import sending
from ..errors import Invalid
from ..i18n import select_timezone
from ..input_guard import form_problems

#: Form inputs whose errors the page shows under another name (compose.html's err()).
_FIELD_OF = {"body": "text", "send_at_local": "send_at"}


def form_fields(form, files, *, later: bool) -> dict:
    """The posted form as the fields webapp.sending.clean takes.

    A value the input guard refused (a NUL: the views are webapp.input_guard.form_page) is an
    error under its field on the form, not a refusal page."""
    if problems := form_problems():
        raise Invalid({_FIELD_OF.get(key, key): _(problem) for key, problem in problems.items()})
    fields: dict = {
        "from": form.get("from") or None,
        "to": form.get("to", ""),
        "cc": form.get("cc", ""),
        "bcc": form.get("bcc", ""),
        "subject": form.get("subject", ""),
    }
    body = form.get("body", "")
    if form.get("as_html"):
        fields["html"] = body
    else:
        fields["text"] = body
    attachments = []
    for upload in files.getlist("attachments"):
        if upload and upload.filename:
            attachments.append(
                {
                    "filename": upload.filename,
                    "content_type": upload.mimetype or "application/octet-stream",
                    "content_base64": base64.b64encode(upload.read()).decode("ascii"),
                }
            )
    if attachments:
        fields["attachments"] = attachments
    if later:
        fields["send_at"] = send_at_from_form(form)
    return fields


def zone_name() -> str:
    """The zone every page shows times in: the user's profile zone, else the server's."""
    return select_timezone() or current_app.config["BABEL_DEFAULT_TIMEZONE"]


def send_at_from_form(form) -> str:
    """The form's "send later" time as ISO 8601 with its offset (what webapp.sending takes).

    The datetime-local field is a wall-clock time in :func:`zone_name`, the zone the pages show
    times in (not the browser's).  A time the zone skips (a DST gap) is refused; a time it shows
    twice (a DST overlap) is its first occurrence.  An ISO time with an offset in ``send_at``
    (scripts, older pages) is passed on as it is."""
    given = (form.get("send_at") or "").strip()
    if given:
        return given
    typed = (form.get("send_at_local") or "").strip()
    if not typed:
        raise Invalid({"send_at": _("Choose when to send it.")})
    try:
        naive = datetime.fromisoformat(typed)
    except ValueError:
        raise Invalid({"send_at": _("Type a date and time, e.g. 2030-01-31 09:00.")}) from None
    if naive.tzinfo is not None:
        return naive.isoformat()
    zone = zoneinfo.ZoneInfo(zone_name())
    _check_window(naive, datetime.now(zone).replace(tzinfo=None))
    when = naive.replace(tzinfo=zone, fold=0)
    if when.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        raise Invalid(
            {
                "send_at": _(
                    "%(time)s does not exist in %(zone)s (the clocks skip it); choose another time.",
                    time=naive.strftime("%Y-%m-%d %H:%M"),
                    zone=zone.key,
                )
            }
        )
    return when.isoformat()


def _check_window(naive: datetime, now: datetime) -> None:
    """Refuse a wall-clock time far outside the scheduling window (webapp.sending's rule) before
    any zone arithmetic: year 9999 west of UTC or year 1 east of it is beyond what datetime
    holds in UTC (OverflowError, a 500).  A day's slack each side leaves the exact edges to
    webapp.sending, which decides in UTC."""
    if naive < now - timedelta(days=1):
        raise Invalid({"send_at": _("must be in the future")})
    if naive > now + timedelta(days=sending.MAX_SCHEDULE_DAYS + 1):
        raise Invalid(
            {"send_at": _("must be within %(MAX_SCHEDULE_DAYS)s days", MAX_SCHEDULE_DAYS=sending.MAX_SCHEDULE_DAYS)}
        )


def send_at_field_value(values: dict) -> str:
    """What the datetime-local field shows: the typed text again, or a stored time in the zone."""
    if values.get("send_at_local"):
        return values["send_at_local"]
    stored = values.get("send_at")
    if not stored:
        return ""
    try:
        when = datetime.fromisoformat(stored)
    except (TypeError, ValueError):
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return when.astimezone(zoneinfo.ZoneInfo(zone_name())).strftime("%Y-%m-%dT%H:%M")
    except OverflowError:  # a posted time beyond year 9999 (or before year 1) in this zone: not shown
        return ""


def render_form(template: str, values: dict, errors: dict, status: int = 200, **extra):
    return (
        render_template(
            template,
            senders=sending.allowed_senders(current_user),
            values=values,
            errors=errors,
            send_at_zone=zone_name(),
            send_at_value=send_at_field_value(values),
            **extra,
        ),
        status,
    )
