"""Throwaway certificates minted at start: a sandbox root CA and its intermediates, leaves,
and a rogue 'proxy' CA."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, PEM encoded."""

    cert_pem: bytes
    key_pem: bytes
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "assure-doctor sandbox"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _issued(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Issued:
    return Issued(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
        cert, key,
    )


def make_ca(common_name: str, issuer: Issued | None = None,
            not_before: datetime | None = None, not_after: datetime | None = None,
            ca_issuers: str | None = None) -> Issued:
    """A CA valid for ten years either side of now (or from `not_before` to `not_after`):
    self-signed, or an intermediate signed by `issuer` (published at `ca_issuers`)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.cert.subject if issuer else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=3650))
        .not_valid_after(not_after or now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
    )
    return _signed(builder, key, issuer, ca_issuers)


def _signed(builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey,
            issuer: Issued | None, ca_issuers: str | None) -> Issued:
    """The certificate signed by `issuer` (naming its key) or by its own key, published where
    its issuer is when `ca_issuers` is given."""
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False)
    if ca_issuers is not None:
        builder = builder.add_extension(_aia(ca_issuers), critical=False)
    return _issued(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


def _aia(url: str) -> x509.AuthorityInformationAccess:
    return x509.AuthorityInformationAccess([x509.AccessDescription(
        AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url))])


def make_leaf(
    names: list[str],
    issuer: Issued | None,
    not_before: datetime,
    not_after: datetime,
    ca_issuers: str | None = None,
) -> Issued:
    """A server certificate for `names` (DNS names or IP addresses); self-signed without issuer.
    `ca_issuers`: the URL where its issuer can be fetched (Authority Information Access)."""
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    subject = _name(names[0])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    return _signed(builder, key, issuer, ca_issuers)
