"""What the pages' WTForms share; each blueprint's own forms are in its forms.py.

The server fields a service and a mailbox share (SERVER_FIELDS), the empty ActionForm of
buttons that POST, and the bridge from domain errors to form fields.  The forms only collect text and carry the CSRF token; the rules live in
service_catalog and accounts, which the API uses too, and their field errors
are put back under the matching form field by :func:`apply_errors`.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from .i18n import translate_stored
from .input_guard import form_problems
from .validation import endpoint_from_form

SECURITY_CHOICES = [
    SelectChoice("tls", "TLS"),
    SelectChoice("starttls", "STARTTLS"),
    SelectChoice("none", _l("No")),
]


#: The fields a service (admin) and a hand-typed mailbox (its owner) share, by form attribute.
#: webapp.diagnosis names a failing field by these labels, so a page and a diagnosis use one word.
SERVER_FIELDS = {
    "imap_server": StringField(_l("IMAP server"), description=_l("host:port, e.g. imap.myserver.com:993")),
    "imap_security": SelectField(_l("Connection protection"), choices=SECURITY_CHOICES, default="tls"),
    "smtp_server": StringField(_l("SMTP server"), description=_l("host:port, e.g. smtp.myserver.com:465")),
    "smtp_use_tls": BooleanField(_l("Use TLS"), default=True),
    "pop3_server": StringField(_l("POP3 server (optional)"), description=_l("host:port, e.g. pop.myserver.com:995")),
    "pop3_security": SelectField(_l("POP3 connection protection"), choices=SECURITY_CHOICES, default="tls"),
    "password": PasswordField(_l("Password")),
    "smtp_requires_auth": BooleanField(_l("SMTP requires authentication"), default=True),
}


class ActionForm(FlaskForm):
    """An empty form for buttons that POST (hide, delete, make main): it carries the CSRF token."""


def apply_errors(form: FlaskForm, fields: dict[str, str], mapping: dict[str, str] | None = None) -> None:
    """Put domain field errors (``imap.port``) under form fields (``imap_server``).

    Only a field is a field: a key naming one of the form's other attributes (``errors``,
    ``validate``, posted by anyone) or nothing goes to the form's general errors."""
    for key, message in fields.items():
        target = (mapping or {}).get(key) or endpoint_field(key) or key
        field = form[target] if target in form else None  # the form's fields only, never getattr
        message = translate_stored(message)  # a rule's English sentence, in the reader's language
        if field is None:
            form.form_errors.append(f"{key}: {message}")
        else:
            field.errors = list(field.errors) + [message]


def posted(form: FlaskForm) -> bool:
    """A POST with a valid CSRF token, even when a field failed the form's own checks (a choice
    not offered): the domain's rules still run, so the page names every wrong field at once.
    A value the input guard refused (a NUL character, see webapp.input_guard.form_page) is an
    error under its field, and the form is not taken."""
    taken = form.validate_on_submit() or (form.is_submitted() and "csrf_token" not in form.errors)
    if form_problems():
        apply_errors(form, form_problems())
        return False
    return taken


def endpoints_from_form(form, errors: dict[str, str]) -> dict:
    """Parse the host:port fields of a ServiceForm or ConnectForm into API-shaped endpoints."""
    out = {}
    imap = endpoint_from_form(
        "imap", form.imap_server.data, form.imap_security.data, "imap_server", "imap_security", errors
    )
    smtp = endpoint_from_form(
        "smtp",
        form.smtp_server.data,
        "auto" if form.smtp_use_tls.data else "none",
        "smtp_server",
        "smtp_use_tls",
        errors,
    )
    if imap:
        out["imap"] = imap
    if smtp:
        out["smtp"] = smtp
    return out


ENDPOINT_FIELDS = {
    "imap": "imap_server",
    "smtp": "smtp_server",
    "pop3": "pop3_server",
    "manual.imap": "imap_server",
    "manual.smtp": "smtp_server",
    "manual.pop3": "pop3_server",
}


def endpoint_field(key: str) -> str | None:
    """``imap.port`` → ``imap_server``; ``manual.smtp.host`` → ``smtp_server``."""
    if key.endswith(".security"):
        return {"imap": "imap_security", "pop3": "pop3_security"}.get(key.split(".")[-2], "smtp_use_tls")
    for prefix, field in ENDPOINT_FIELDS.items():
        if key == prefix or key.startswith(prefix + "."):
            return field
    return None
