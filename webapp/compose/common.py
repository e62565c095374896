"""What the compose blueprint's route modules share: the posted form as send fields, the form page."""

from __future__ import annotations

import base64

from flask import render_template
from flask_babel import gettext as _
from flask_login import current_user

from .. import sending
from ..errors import Invalid


def form_fields(form, files, *, later: bool) -> dict:
    """The posted form as the fields webapp.sending.clean takes."""
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
        # The page's script sends the chosen local time as ISO 8601 with its offset in send_at;
        # without script the datetime-local value is taken as UTC.
        fields["send_at"] = form.get("send_at") or form.get("send_at_local") or ""
        if not fields["send_at"]:
            raise Invalid({"send_at": _("Choose when to send it.")})
    return fields


def render_form(template: str, values: dict, errors: dict, status: int = 200, **extra):
    return (
        render_template(
            template,
            senders=sending.allowed_senders(current_user),
            values=values,
            errors=errors,
            **extra,
        ),
        status,
    )
