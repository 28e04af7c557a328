"""Pure helpers over certificate state: what a certificate says, and what that means.

No I/O here: the tls probe hands in DER bytes and verification codes.
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from assure_doctor import sanitize
from assure_doctor.kinds import CertKind

_NAME_LIMIT = 300
_MAX_NAMES = 100  # a certificate may list thousands; the rest say nothing new

# OpenSSL X509_V_ERR_* codes, grouped by what they mean to a person.
_VERIFY_KINDS = {
    10: CertKind.EXPIRED,
    9: CertKind.NOT_YET_VALID,
    62: CertKind.HOSTNAME_MISMATCH,
    64: CertKind.HOSTNAME_MISMATCH,  # IP address mismatch
    18: CertKind.SELF_SIGNED,
    2: CertKind.UNKNOWN_ISSUER,
    19: CertKind.UNKNOWN_ISSUER,  # self-signed root in the chain that we do not trust
    20: CertKind.UNKNOWN_ISSUER,
    21: CertKind.UNKNOWN_ISSUER,
    23: CertKind.REVOKED,
}


@dataclass(frozen=True)
class CertInfo:
    """The facts of one certificate that a diagnosis can use."""

    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    names: tuple[str, ...]
    serial: str
    sha256: str

    def to_evidence(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "names": list(self.names),
            "serial": self.serial,
            "sha256": self.sha256,
        }


def describe(certificate: bytes | x509.Certificate) -> CertInfo | None:
    """A DER certificate (or one already parsed: not parsed twice) as CertInfo; None when it
    cannot be read at all.

    Total: any bytes give None or a CertInfo. The server chose every name in it, so subject,
    issuer and names are sanitised here, at the source.
    """
    try:
        cert = (certificate if isinstance(certificate, x509.Certificate)
                else x509.load_der_x509_certificate(certificate))
        subject = cert.subject.rfc4514_string()
        issuer = cert.issuer.rfc4514_string()
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
        serial = format(cert.serial_number, "x")
        sha256 = cert.fingerprint(hashes.SHA256()).hex()
    except Exception:
        # Malformed DER surfaces as ValueError, KeyError (an unknown string tag),
        # InvalidVersion and more from the parser's depths: all of them mean "unreadable".
        return None
    return CertInfo(
        subject=sanitize.text(subject, _NAME_LIMIT),
        issuer=sanitize.text(issuer, _NAME_LIMIT),
        not_before=not_before,
        not_after=not_after,
        names=_names(cert),
        serial=serial[:_NAME_LIMIT],
        sha256=sha256,
    )


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    """DNS and IP names of the SAN, else the subject's CN; sanitised, at most _MAX_NAMES."""
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += [str(name) for name in san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except Exception:  # no SAN, or one that cannot be read: fall back on the CN
        names = []
    if not names:
        with contextlib.suppress(Exception):  # an unreadable subject: no names
            names += [str(attr.value) for attr in cert.subject.get_attributes_for_oid(
                x509.NameOID.COMMON_NAME)]
    return tuple(sanitize.text(name, _NAME_LIMIT) for name in names[:_MAX_NAMES])


def verify_kind(verify_code: int | None) -> CertKind:
    """What an OpenSSL verification code means to a person (OTHER when it is not known)."""
    return _VERIFY_KINDS.get(verify_code or 0, CertKind.OTHER)


def valid_at(info: CertInfo, when: datetime) -> bool:
    return info.not_before <= when <= info.not_after


def matches_host(info: CertInfo, host: str) -> bool:
    """RFC 6125 matching, wildcard in the left-most label only."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for name in info.names:
        if address is not None:
            try:
                if ipaddress.ip_address(name) == address:
                    return True
            except ValueError:
                continue
        elif _name_matches(name.lower(), host.lower()):
            return True
    return False


def _name_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return host.endswith(suffix) and "." not in host[: -len(suffix)]
    return pattern == host


def same_domain(info: CertInfo, host: str) -> bool:
    """Whether the certificate is at least for the host's parent domain (e.g. sheassure.net)."""
    parent = ".".join(host.lower().split(".")[-2:])
    return any(name.lower().lstrip("*.").endswith(parent) for name in info.names)


def days_left(info: CertInfo, now: datetime | None = None) -> float:
    now = now or datetime.now(UTC)
    return (info.not_after - now).total_seconds() / 86400
