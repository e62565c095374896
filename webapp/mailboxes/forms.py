"""The mailbox pages' forms: connect or edit a mailbox, reconnect one whose service went, aliases."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from ..forms import SERVER_FIELDS


class ConnectForm(FlaskForm):
    service = SelectField(_l("Mail service"), choices=[])
    auth_method = SelectField(
        _l("Authentication method"),
        choices=[
            SelectChoice("password", _l("Password")),
            SelectChoice("oauth2", _l("OAuth2 (sign in with the provider)")),
        ],
        default="password",
    )
    username = StringField(_l("Login"))
    password = SERVER_FIELDS["password"]
    email = StringField(_l("Email address"), description=_l("Optional: filled from the login when empty"))
    description = StringField(_l("Description"), description=_l("Optional: filled from the login when empty"))
    is_main = BooleanField(_l("Main mailbox"))
    imap_server = SERVER_FIELDS["imap_server"]
    imap_security = SERVER_FIELDS["imap_security"]
    smtp_server = SERVER_FIELDS["smtp_server"]
    smtp_use_tls = SERVER_FIELDS["smtp_use_tls"]
    pop3_server = SERVER_FIELDS["pop3_server"]
    pop3_security = SERVER_FIELDS["pop3_security"]
    # Options people know from the products Mailroom replaces.
    incoming_protocol = SelectField(
        _l("Read incoming mail with"),
        choices=[SelectChoice("imap", "IMAP"), SelectChoice("pop3", "POP3")],
        default="imap",
    )
    pop3_leave_on_server = BooleanField(
        _l("Leave messages on the server"),
        default=True,
        description=_l("POP3: keep downloaded messages on the server; off deletes them after they are stored."),
    )
    active = BooleanField(lazy_pgettext("mailbox", "Active"), default=True)  # it "Attiva": a casella
    debug = BooleanField(
        _l("Enable debug"), description=_l("Record the protocol conversation in the email log (passwords masked).")
    )
    push = BooleanField(
        _l("Push (IMAP IDLE)"),
        description=_l("New mail shows up within seconds: the INBOX is kept open with IMAP IDLE (IMAP only)."),
    )
    disable_certificate_validation = BooleanField(
        _l("Disable certificate validation"),
        description=_l("Only for servers with an internal certificate: anyone on the network path could read the mail."),
    )
    smtp_requires_auth = SERVER_FIELDS["smtp_requires_auth"]
    smtp_username = StringField(_l("SMTP login"), description=_l("Only when it differs from the login above"))
    smtp_password = PasswordField(_l("SMTP password"), description=_l("Only when it differs from the password above"))
    smtp_from = StringField(
        _l("From address for SMTP"), description=_l("Only when it differs from the email address")
    )
    # Signatures (webapp.signatures): none, the mailbox's own, or the company's template.
    signature_mode = SelectField(
        _l("Signature"),
        choices=[
            SelectChoice("none", _l("No signature")),
            SelectChoice("custom", _l("Own signature")),
            SelectChoice("central", _l("Company signature (filled from My profile)")),
        ],
        default="none",
    )
    signature_text = TextAreaField(_l("Own signature (text)"))
    signature_html = TextAreaField(
        _l("Own signature (HTML)"),
        description=_l("Optional. Sanitized when saved: no scripts or event attributes; images only from https://."),
    )


class ReconnectForm(FlaskForm):
    """A mailbox whose service was removed: choose another service (nothing preselected)."""

    service = SelectField(_l("Connect it again through"), choices=[])
    password = PasswordField(
        _l("Password"), description=_l("Needed when the new service has another password; empty keeps the saved one.")
    )


class AliasForm(FlaskForm):
    address = StringField(_l("Alias address"), description=_l("Another address this mailbox may send as"))
    display_name = StringField(_l("Name shown"), description=_l("Optional"))
