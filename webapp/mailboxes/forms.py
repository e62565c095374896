"""The mailbox pages' forms: connect or edit a mailbox, reconnect one whose service went, aliases."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from ..forms import SERVER_FIELDS


class ConnectForm(FlaskForm):
    service = SelectField("Mail service", choices=[])
    auth_method = SelectField(
        "Authentication method",
        choices=[
            SelectChoice("password", "Password"),
            SelectChoice("oauth2", "OAuth2 (sign in with the provider)"),
        ],
        default="password",
    )
    username = StringField("Login")
    password = SERVER_FIELDS["password"]
    email = StringField("Email address", description="Optional: filled from the login when empty")
    description = StringField("Description", description="Optional: filled from the login when empty")
    is_main = BooleanField("Main mailbox")
    imap_server = SERVER_FIELDS["imap_server"]
    imap_security = SERVER_FIELDS["imap_security"]
    smtp_server = SERVER_FIELDS["smtp_server"]
    smtp_use_tls = SERVER_FIELDS["smtp_use_tls"]
    pop3_server = SERVER_FIELDS["pop3_server"]
    pop3_security = SERVER_FIELDS["pop3_security"]
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
    push = BooleanField(
        "Push (IMAP IDLE)",
        description="New mail shows up within seconds: the INBOX is kept open with IMAP IDLE (IMAP only).",
    )
    disable_certificate_validation = BooleanField(
        "Disable certificate validation",
        description="Only for servers with an internal certificate: anyone on the network path could read the mail.",
    )
    smtp_requires_auth = SERVER_FIELDS["smtp_requires_auth"]
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


class AliasForm(FlaskForm):
    address = StringField("Alias address", description="Another address this mailbox may send as")
    display_name = StringField("Name shown", description="Optional")
