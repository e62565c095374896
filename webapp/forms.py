"""WTForms classes for the pages.

The forms only collect text and carry the CSRF token; the rules live in
service_catalog and accounts, which the API uses too, and their field errors
are put back under the matching form field by :func:`apply_errors`.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from .validation import endpoint_from_form

SECURITY_CHOICES = [
    SelectChoice("tls", "TLS"),
    SelectChoice("starttls", "STARTTLS"),
    SelectChoice("none", "No"),
]


class ServiceForm(FlaskForm):
    name = StringField("Name")
    smtp_server = StringField("SMTP server", description="host:port, e.g. smtp.myserver.com:465")
    smtp_use_tls = BooleanField("Use TLS", default=True)
    imap_server = StringField("IMAP server", description="host:port, e.g. imap.myserver.com:993")
    imap_security = SelectField("Connection protection", choices=SECURITY_CHOICES, default="tls")
    ca_certificate = TextAreaField(
        "CA certificate",
        description="For a server whose certificate comes from your company's own authority or is "
        "self-signed: paste that authority's certificate (PEM, -----BEGIN CERTIFICATE-----). "
        "Every mailbox of this service trusts it.",
    )
    skip_certificate_verification = BooleanField(
        "Do not verify the certificate",
        description="Not recommended: anyone on the network path could pose as this server and read "
        "the mail of every mailbox of the service.",
    )


class ConnectForm(FlaskForm):
    service = SelectField("Mail service", choices=[])
    auth_method = SelectField(
        "Authentication method",
        choices=[SelectChoice("password", "Password"), SelectChoice("oauth2", "OAuth2 (sign in with the provider)")],
        default="password",
    )
    username = StringField("Login")
    password = PasswordField("Password")
    email = StringField("Email address", description="Optional: filled from the login when empty")
    description = StringField("Description", description="Optional: filled from the login when empty")
    is_main = BooleanField("Main mailbox")
    imap_server = StringField("IMAP server", description="host:port, e.g. imap.myserver.com:993")
    imap_security = SelectField("Connection protection", choices=SECURITY_CHOICES, default="tls")
    smtp_server = StringField("SMTP server", description="host:port, e.g. smtp.myserver.com:465")
    smtp_use_tls = BooleanField("Use TLS", default=True)
    pop3_server = StringField("POP3 server (optional)", description="host:port, e.g. pop.myserver.com:995")
    pop3_security = SelectField("POP3 connection protection", choices=SECURITY_CHOICES, default="tls")
    # Options people know from the products Mailroom replaces.
    incoming_protocol = SelectField(
        "Read incoming mail with",
        choices=[SelectChoice("imap", "IMAP"), SelectChoice("pop3", "POP3")],
        default="imap",
    )
    pop3_leave_on_server = BooleanField(
        "Leave messages on the server",
        default=True,
        description="POP3: keep downloaded messages on the server; off deletes them after they are stored.",
    )
    active = BooleanField("Active", default=True)
    debug = BooleanField(
        "Enable debug", description="Record the protocol conversation in the email log (passwords masked)."
    )
    disable_certificate_validation = BooleanField(
        "Disable certificate validation",
        description="Only for servers with an internal certificate: anyone on the network path could read the mail.",
    )
    smtp_requires_auth = BooleanField("SMTP requires authentication", default=True)
    smtp_username = StringField("SMTP login", description="Only when it differs from the login above")
    smtp_password = PasswordField("SMTP password", description="Only when it differs from the password above")
    smtp_from = StringField(
        "From address for SMTP", description="Only when it differs from the email address"
    )
    # Signatures (webapp.signatures): none, the mailbox's own, or the company's template.
    signature_mode = SelectField(
        "Signature",
        choices=[
            SelectChoice("none", "No signature"),
            SelectChoice("custom", "Own signature"),
            SelectChoice("central", "Company signature (filled from My profile)"),
        ],
        default="none",
    )
    signature_text = TextAreaField("Own signature (text)")
    signature_html = TextAreaField(
        "Own signature (HTML)",
        description="Optional. Sanitized when saved: no scripts or event attributes; images only from https://.",
    )


class ReconnectForm(FlaskForm):
    """A mailbox whose service was removed: choose another service (nothing preselected)."""

    service = SelectField("Connect it again through", choices=[])
    password = PasswordField(
        "Password", description="Needed when the new service has another password; empty keeps the saved one."
    )


class SettingsForm(FlaskForm):
    allow_manual_entry = BooleanField("Allow entering details of the mailing server manually")
    default_incoming_account_id = SelectField("Default incoming mailbox", choices=[])
    default_outgoing_account_id = SelectField("Default outgoing mailbox", choices=[])
    allowed_internal_hosts = TextAreaField(
        "Internal servers that manual details may reach",
        description="One host name or network per line (e.g. mail.corp.local, 10.1.0.0/16). "
        "Other internal, loopback and private addresses are refused for hand-typed servers.",
    )
    connection_timeout = IntegerField("Connection timeout (seconds)", default=15)
    sync_interval_minutes = IntegerField("Sync every (minutes)", default=5)


class ActionForm(FlaskForm):
    """An empty form for buttons that POST (hide, delete, make main): it carries the CSRF token."""


def apply_errors(form: FlaskForm, fields: dict[str, str], mapping: dict[str, str] | None = None) -> None:
    """Put domain field errors (``imap.port``) under form fields (``imap_server``)."""
    for key, message in fields.items():
        target = (mapping or {}).get(key) or endpoint_field(key) or key
        field = getattr(form, target, None)
        if field is None:
            form.form_errors.append(f"{key}: {message}")
        else:
            field.errors = list(field.errors) + [message]


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
