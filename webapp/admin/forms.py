"""The administration pages' forms: services, console settings, OAuth2 apps, the company signature."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField, TextAreaField

from ..forms import SERVER_FIELDS


class ServiceForm(FlaskForm):
    name = StringField(_l("Name"))
    smtp_server = SERVER_FIELDS["smtp_server"]
    smtp_use_tls = SERVER_FIELDS["smtp_use_tls"]
    imap_server = SERVER_FIELDS["imap_server"]
    imap_security = SERVER_FIELDS["imap_security"]
    ca_certificate = TextAreaField(
        _l("CA certificate"),
        description=_l("For a server whose certificate comes from your company's own authority or is "
        "self-signed: paste that authority's certificate (PEM, -----BEGIN CERTIFICATE-----). "
        "Every mailbox of this service trusts it."),
    )
    skip_certificate_verification = BooleanField(
        _l("Do not verify the certificate"),
        description=_l("Not recommended: anyone on the network path could pose as this server and read "
        "the mail of every mailbox of the service."),
    )
    max_connections = StringField(
        _l("Max connections at once"),
        description=_l("At most this many connections to the IMAP server at once, from every worker on every "
        "machine; empty: no limit. Jobs that find none free wait and retry, they do not fail."),
    )


class SettingsForm(FlaskForm):
    allow_manual_entry = BooleanField(_l("Allow entering details of the mailing server manually"))
    default_incoming_account_id = SelectField(
        _l("Default incoming mailbox"),
        choices=[],
        description=_l("The mailbox your business system reads from by default. Mailroom only keeps this "
        "choice for that system to read (GET /api/v1/settings); people's own mail is not affected."),
    )
    default_outgoing_account_id = SelectField(
        _l("Default outgoing mailbox"),
        choices=[],
        description=_l("The mailbox your business system sends through by default. Mailroom only keeps this "
        "choice for that system to read; Mailroom's own sending uses the sender's main mailbox."),
    )
    allowed_internal_hosts = TextAreaField(
        _l("Internal servers that manual details may reach"),
        description=_l("One host name or network per line (e.g. mail.corp.local, 10.1.0.0/16). "
        "Other internal, loopback and private addresses are refused for hand-typed servers."),
    )
    connection_timeout = IntegerField(_l("Connection timeout (seconds)"), default=15)
    sync_interval_minutes = IntegerField(_l("Sync every (minutes)"), default=5)


class OAuthAppForm(FlaskForm):
    client_id = StringField(_l("Client ID"), description=_l("From the application you registered at the provider"))
    client_secret = PasswordField(_l("Client secret"), description=_l("Stored encrypted; never shown again"))
    tenant = StringField(
        _l("Tenant"),
        description=_l("common, organizations, consumers, your tenant id or your domain (contoso.onmicrosoft.com)"),
    )
    scopes = TextAreaField(_l("Scopes"), description=_l("Space-separated; empty uses the provider's defaults"))
    authorization_url = StringField(_l("Authorization URL"))
    token_url = StringField(_l("Token URL"))
    userinfo_url = StringField(
        _l("Userinfo URL (optional)"),
        description=_l("Where the signed-in address is read when the token does not carry it"),
    )
    revocation_url = StringField(_l("Revocation URL (optional)"))
    enabled = BooleanField(_l("Offer “Sign in with OAuth2” for this service"), default=True)


class SignatureForm(FlaskForm):
    company_name = StringField(_l("Company name"), description=_l("Fills {{company}}"))
    central_signature_text = TextAreaField(_l("Text signature"), description=_l("For plain-text messages"))
    central_signature_html = TextAreaField(
        _l("HTML signature"),
        description=_l("Sanitized when saved: no scripts or event attributes; images only from https:// addresses."),
    )
