"""Test certificates made with ``cryptography``: a private CA and leaf certificates.

Connection tests need every TLS failure a real server can produce: a valid
certificate (trusted through the test CA), an expired one, one for another host
and a self-signed one.  EC P-256 keys keep generation in the milliseconds.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Addresses the ``valid`` certificate is issued for (127.0.0.2: see ``Dovecot(plaintext_auth=False)``).
VALID_DNS = ("localhost",)
VALID_IPS = ("127.0.0.1", "127.0.0.2")
WRONG_HOST = "other.example"


class CertPair(NamedTuple):
    """Paths of a PEM certificate and its unencrypted PEM key."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class CertSet:
    """The CA and one certificate per kind of TLS situation."""

    ca_cert: Path
    ca_key: Path
    valid: CertPair
    expired: CertPair
    wrong_host: CertPair
    self_signed: CertPair

    def client_context(self) -> ssl.SSLContext:
        """A client context that verifies hosts and trusts only the test CA."""
        return ssl.create_default_context(cafile=str(self.ca_cert))


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Mailroom tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _write(dirpath: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> CertPair:
    pair = CertPair(dirpath / f"{stem}.crt", dirpath / f"{stem}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pair.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    pair.key.chmod(0o600)
    return pair


def _make_ca(now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Mailroom Test CA"))
        .issuer_name(_name("Mailroom Test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=3650))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_leaf(
    cn: str,
    dns: tuple[str, ...],
    ips: tuple[str, ...],
    not_before: dt.datetime,
    not_after: dt.datetime,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A server certificate signed by ``issuer``, or by itself when ``issuer`` is None."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (_name(cn), key)
    san = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256()), key


def make_cert_set(dirpath: str | Path) -> CertSet:
    """Write the CA and the ``valid``, ``expired``, ``wrong_host`` and ``self_signed`` pairs into ``dirpath``."""
    dirpath = Path(dirpath)
    dirpath.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    year = dt.timedelta(days=365)
    ca = _make_ca(now)
    ca_pair = _write(dirpath, "ca", *ca)
    return CertSet(
        ca_cert=ca_pair.cert,
        ca_key=ca_pair.key,
        valid=_write(
            dirpath, "valid", *_make_leaf("localhost", VALID_DNS, VALID_IPS, now - year, now + year, ca)
        ),
        expired=_write(
            dirpath,
            "expired",
            *_make_leaf("localhost", VALID_DNS, VALID_IPS, now - 2 * year, now - dt.timedelta(days=1), ca),
        ),
        wrong_host=_write(
            dirpath, "wrong_host", *_make_leaf(WRONG_HOST, (WRONG_HOST,), (), now - year, now + year, ca)
        ),
        self_signed=_write(
            dirpath,
            "self_signed",
            *_make_leaf("localhost", VALID_DNS, VALID_IPS, now - year, now + year, None),
        ),
    )
