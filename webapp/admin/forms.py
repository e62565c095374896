"""The administration pages' forms: services, console settings, OAuth2 apps, the company signature."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField, TextAreaField

from ..forms import SERVER_FIELDS


class ServiceForm(FlaskForm):
    name = StringField("Name")
    smtp_server = SERVER_FIELDS["smtp_server"]
    smtp_use_tls = SERVER_FIELDS["smtp_use_tls"]
    imap_server = SERVER_FIELDS["imap_server"]
    imap_security = SERVER_FIELDS["imap_security"]
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
    max_connections = StringField(
        "Max connections at once",
        description="At most this many connections to the IMAP server at once, from every worker on every "
        "machine; empty: no limit. Jobs that find none free wait and retry, they do not fail.",
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


class OAuthAppForm(FlaskForm):
    client_id = StringField("Client ID", description="From the application you registered at the provider")
    client_secret = PasswordField("Client secret", description="Stored encrypted; never shown again")
    tenant = StringField(
        "Tenant",
        description="common, organizations, consumers, your tenant id or your domain (contoso.onmicrosoft.com)",
    )
    scopes = TextAreaField("Scopes", description="Space-separated; empty uses the provider's defaults")
    authorization_url = StringField("Authorization URL")
    token_url = StringField("Token URL")
    userinfo_url = StringField(
        "Userinfo URL (optional)",
        description="Where the signed-in address is read when the token does not carry it",
    )
    revocation_url = StringField("Revocation URL (optional)")
    enabled = BooleanField("Offer “Sign in with OAuth2” for this service", default=True)


class SignatureForm(FlaskForm):
    company_name = StringField("Company name", description="Fills {{company}}")
    central_signature_text = TextAreaField("Text signature", description="For plain-text messages")
    central_signature_html = TextAreaField(
        "HTML signature",
        description="Sanitized when saved: no scripts or event attributes; images only from https:// addresses.",
    )
