"""A corporate service's own trust setting, and what it means for its mailboxes' connections.

A company server with a certificate from the company's own authority (or a self-signed one)
could only pass a test through the machine-wide ``MAILROOM_CA_FILE``.  A service may now carry
its CA certificate(s) as PEM, checked here on save, or, with a standing warning, "do not
verify the certificate".  Every mailbox connecting through the service (connection test,
sync, folder list, send) gets that trust through :func:`trust_for_account`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from flask_babel import gettext as _

from .models import Account, Service

#: Longest PEM text accepted (a chain of a few certificates is a few KB).
MAX_PEM = 64 * 1024

SERVICE_WARNING = (
    "Certificates are not verified for this service: Mailroom cannot tell its real server from an "
    "impostor on the network path."
)
MAILBOX_WARNING = (
    'The administrator turned certificate verification off for the service "{name}": Mailroom cannot '
    "tell its real server from an impostor on the network path."
)


@dataclass(frozen=True)
class Trust:
    """How a connection checks the server's certificate."""

    verify: bool = True
    #: PEM of extra CA certificates (a service's own), or None for the system CAs only.
    ca_data: str | None = None


def trust_for_account(account: Account) -> Trust:
    """The mailbox's own choice combined with its service's setting (hand-typed servers have none)."""
    service = None if account.manual else account.service
    if service is None:
        return Trust(verify=account.verify_certificate)
    return trust_for_service(service, verify=account.verify_certificate)


def trust_for_service(service: Service, verify: bool = True) -> Trust:
    return Trust(
        verify=verify and service.verify_certificate,
        ca_data=service.ca_certificate if service.verify_certificate else None,
    )


def service_warning(service: Service | None) -> str | None:
    """The standing warning of a service that does not verify certificates, else None."""
    if service is None or service.verify_certificate:
        return None
    return SERVICE_WARNING


def mailbox_warning(account: Account) -> str | None:
    if account.manual or account.service is None or account.service.verify_certificate:
        return None
    return MAILBOX_WARNING.format(name=account.service.name)


def clean_ca_certificate(value: Any) -> str | None:
    """PEM text of one or more CA certificates, normalised; ValueError names what is wrong.

    A certificate counts as a CA when its Basic Constraints say so, or when it is self-signed
    (a server's self-signed certificate is its own authority).  A private key pasted by
    mistake is refused, so it is never stored.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ValueError(_("must be PEM text (-----BEGIN CERTIFICATE----- …)"))
    if len(value) > MAX_PEM:
        raise ValueError(_("must be at most %(MAX_PEM)s KB of PEM text", MAX_PEM=MAX_PEM // 1024))
    if "PRIVATE KEY" in value:
        raise ValueError(_("contains a private key: paste only the certificate, and keep the key secret"))
    try:
        certificates = x509.load_pem_x509_certificates(value.encode("utf-8"))
    except ValueError:
        raise ValueError(
            _("is not a PEM certificate: paste the text from -----BEGIN CERTIFICATE----- "
            "to -----END CERTIFICATE-----")
        ) from None
    for certificate in certificates:
        _check_ca(certificate)
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certificates)


def _check_ca(certificate: x509.Certificate) -> None:
    name = describe(certificate)
    try:
        is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca and certificate.issuer != certificate.subject:
        raise ValueError(
            _("%(name)s is not a CA certificate (it is a server's own certificate): paste the certificate of the authority that issued it", name=name)
        )
    if certificate.not_valid_after_utc < dt.datetime.now(dt.UTC):
        raise ValueError(f"{name} expired on {certificate.not_valid_after_utc:%Y-%m-%d}")


def describe(certificate: x509.Certificate) -> str:
    """``"Acme Root CA" (valid until 2030-01-01)`` for messages and the service page."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    label = names[0].value if names else certificate.subject.rfc4514_string()
    return f'"{label}"'


def summary(pem: str | None) -> list[str]:
    """One line per stored CA certificate, for the administrator's pages."""
    if not pem:
        return []
    return [
        f"{describe(c)} valid until {c.not_valid_after_utc:%Y-%m-%d}"
        for c in x509.load_pem_x509_certificates(pem.encode("ascii"))
    ]
