"""The presented chain, link by link: who issued whom, what is wrong with each certificate at a
given time, whether the chain reaches a trust anchor, and where a missing issuer may be fetched
(the AIA caIssuers URL), with a total reader for what such a URL answers.

Pure: certificates, anchors and a time in, facts out; no I/O. Every certificate here came from
a server (or from a URL a server chose), so each read is total and each name is sanitised.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import AuthorityInformationAccessOID

from assure_doctor import sanitize
from assure_doctor.kinds import ChainLink
from assure_doctor.probes import certinfo
from assure_doctor.probes.results import CertProblem, ChainCertificate

MAX_LINKS = 10  # certificates of a presented chain looked at; real chains have 2-4
MAX_URL = 2048  # longest AIA URL followed
MAX_URLS = 4  # caIssuers URLs read from one certificate
MAX_FETCHED = 8  # certificates taken from one AIA answer (a PKCS#7 bundle may hold several)
MAX_FETCHED_BYTES = 64 * 1024
_NAME_LIMIT = 300
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", re.ASCII)
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]{2,45}\]", re.ASCII)
_URL_CHARS = re.compile(r"[!-~]+", re.ASCII)  # printable ASCII, no space


class End(StrEnum):
    """How the path from the leaf ends."""

    ANCHORED = "anchored"  # at a trust anchor: the chain is complete
    UNTRUSTED_ROOT = "untrusted_root"  # at a self-signed certificate no anchor matches
    MISSING_ISSUER = "missing_issuer"  # at a certificate whose issuer was neither sent nor known


@dataclass(frozen=True)
class Anchors:
    """Trust anchors indexed by subject, for finding who issued a certificate."""

    by_subject: dict[x509.Name, tuple[x509.Certificate, ...]]
    fingerprints: frozenset[bytes]

    @classmethod
    def of(cls, certificates: Sequence[x509.Certificate]) -> Anchors:
        by_subject: dict[x509.Name, tuple[x509.Certificate, ...]] = {}
        fingerprints = set()
        for cert in certificates:
            try:
                by_subject[cert.subject] = (*by_subject.get(cert.subject, ()), cert)
                fingerprints.add(cert.fingerprint(hashes.SHA256()))
            except Exception:  # an anchor that cannot be read anchors nothing
                continue
        return cls(by_subject, frozenset(fingerprints))

    def holds(self, cert: x509.Certificate) -> bool:
        try:
            return cert.fingerprint(hashes.SHA256()) in self.fingerprints
        except Exception:
            return False

    def issuer_of(self, cert: x509.Certificate) -> x509.Certificate | None:
        try:
            candidates = self.by_subject.get(cert.issuer, ())
        except Exception:
            return None
        return next((c for c in candidates if issued_by(cert, c)), None)


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer` signed `cert`: the names match and the signature verifies."""
    try:
        if cert.issuer != issuer.subject:
            return False
        cert.verify_directly_issued_by(issuer)
    except Exception:  # a bad signature, an unsupported key, an unreadable name: not issued
        return False
    return True


def window_problem(cert: x509.Certificate | ChainCertificate, when: datetime
                   ) -> CertProblem | None:
    """Expired or not yet valid at `when`, or None."""
    try:
        not_before, not_after = _window(cert)
    except Exception:
        return None
    if when < not_before:
        return CertProblem.NOT_YET_VALID
    if when > not_after:
        return CertProblem.EXPIRED
    return None


def _window(cert: x509.Certificate | ChainCertificate) -> tuple[datetime, datetime]:
    if isinstance(cert, ChainCertificate):
        return cert.not_before, cert.not_after
    return cert.not_valid_before_utc, cert.not_valid_after_utc


def entry(cert: x509.Certificate, problem: CertProblem | None = None
          ) -> ChainCertificate | None:
    """One link as evidence (names sanitised); None when the certificate cannot be read."""
    try:
        return ChainCertificate(
            subject=sanitize.text(cert.subject.rfc4514_string(), _NAME_LIMIT),
            issuer=sanitize.text(cert.issuer.rfc4514_string(), _NAME_LIMIT),
            not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
            sha256=cert.fingerprint(hashes.SHA256()).hex(), problem=problem)
    except Exception:
        return None


def readable(chain: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """The first MAX_LINKS certificates that can be read."""
    return [cert for cert in chain[:MAX_LINKS] if entry(cert) is not None]


@dataclass(frozen=True)
class Links:
    """A presented chain judged link by link against a set of anchors at one time."""

    chain: tuple[ChainCertificate, ...]  # as presented, leaf first, each with its problem
    path: tuple[int, ...]  # the indexes, leaf first, of the certificates linked by issuing
    anchor: ChainCertificate | None  # the anchor the path ends at, when it was not sent
    end: End

    @property
    def top(self) -> int:
        """The index of the last linked certificate (whose issuer is missing, if any)."""
        return self.path[-1]

    def failing(self, problem: CertProblem) -> tuple[ChainCertificate, ChainLink] | None:
        """The certificate nearest the root with this date problem, as a verifier that checks
        from the anchor down reports it; with where it sits in the chain."""
        linked = [(self.chain[i], _link(self.chain[i], i)) for i in self.path]
        if self.anchor is not None:
            linked.append((self.anchor, ChainLink.ROOT))
        return next(((c, link) for c, link in reversed(linked) if c.problem is problem), None)


def _link(cert: ChainCertificate, index: int) -> ChainLink:
    if index == 0:
        return ChainLink.LEAF
    return ChainLink.ROOT if cert.subject == cert.issuer else ChainLink.INTERMEDIATE


def links(chain: Sequence[x509.Certificate], anchors: Anchors, host: str, when: datetime
          ) -> Links | None:
    """Each certificate's problem at `when`, following who issued whom from the leaf.

    A certificate gets at most one problem, as a verifier meets them: where the path ends
    (`untrusted`, `self_signed`; `missing_issuer` is the caller's to claim once it has found
    the issuer), then the leaf's name, then the validity window. None without a readable leaf.
    """
    certs = readable(chain)
    if not certs:
        return None
    path, anchor, end = _path(certs, anchors)
    problems: list[CertProblem | None] = [window_problem(cert, when) for cert in certs]
    leaf_info = certinfo.describe(certs[0])
    if leaf_info is not None and not certinfo.matches_host(leaf_info, host):
        problems[0] = CertProblem.HOSTNAME_MISMATCH
    if end is not End.ANCHORED:
        alone = len(path) == 1 and end is End.UNTRUSTED_ROOT
        problems[path[-1]] = CertProblem.SELF_SIGNED if alone else CertProblem.UNTRUSTED
    entries = [entry(cert, problem) for cert, problem in zip(certs, problems, strict=True)]
    anchor_entry = None if anchor is None else entry(anchor, window_problem(anchor, when))
    if None in entries:
        return None  # readable a moment ago: cannot happen, but the indexes must hold
    return Links(tuple(e for e in entries if e is not None), tuple(path), anchor_entry, end)


def _path(certs: list[x509.Certificate], anchors: Anchors
          ) -> tuple[list[int], x509.Certificate | None, End]:
    """Follow issuers from the leaf through the sent certificates to an anchor."""
    path = [0]
    while True:
        current = certs[path[-1]]
        if anchors.holds(current):
            return path, None, End.ANCHORED  # the server sent the anchor itself
        sent = next((i for i, cert in enumerate(certs)
                     if i not in path and issued_by(current, cert)), None)
        if sent is not None:
            path.append(sent)
            continue
        anchor = anchors.issuer_of(current)
        if anchor is not None:
            return path, anchor, End.ANCHORED
        if issued_by(current, current):
            return path, None, End.UNTRUSTED_ROOT
        return path, None, End.MISSING_ISSUER


def chain_of(chain: Sequence[x509.Certificate]) -> tuple[ChainCertificate, ...]:
    """The presented chain as evidence, with no problems: it verified."""
    return tuple(e for e in (entry(cert) for cert in readable(chain)) if e is not None)


def claim_missing(found: Links) -> Links:
    """The same links, the top one's issuer now known to exist: `missing_issuer`."""
    chain = list(found.chain)
    chain[found.top] = _with_problem(chain[found.top], CertProblem.MISSING_ISSUER)
    return Links(tuple(chain), found.path, found.anchor, End.MISSING_ISSUER)


def _with_problem(cert: ChainCertificate, problem: CertProblem) -> ChainCertificate:
    return ChainCertificate(cert.subject, cert.issuer, cert.not_before, cert.not_after,
                            cert.sha256, problem)


def ca_issuers(cert: x509.Certificate) -> tuple[str, ...]:
    """The caIssuers URLs of a certificate's Authority Information Access that are safe to
    fetch (`safe_url`), in the certificate's order."""
    try:
        extension = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
        urls = [str(d.access_location.value) for d in extension.value
                if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
                and isinstance(d.access_location, x509.UniformResourceIdentifier)]
    except Exception:  # no extension, or one that cannot be read
        return ()
    return tuple(url for url in (safe_url(u) for u in urls[:MAX_URLS]) if url is not None)


def safe_url(url: str) -> str | None:
    """`url` when it is a bounded http(s) URL with a plain host and no credentials; else None.

    The server chose it: only printable ASCII, a host name of letters, digits, dots and dashes
    (or an IP address), a port in range, and nothing that would carry credentials.
    """
    if not isinstance(url, str) or not 0 < len(url) <= MAX_URL or not _URL_CHARS.fullmatch(url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port out of range or not a number
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc:
        return None
    host = parts.netloc.rpartition(":")[0] if _has_port(parts.netloc) else parts.netloc
    if not (_HOST.fullmatch(host) or _IPV6.fullmatch(host)) or ".." in host:
        return None
    return url


def _has_port(netloc: str) -> bool:
    return not netloc.endswith("]") and ":" in netloc


def fetched_certificates(data: bytes) -> tuple[x509.Certificate, ...]:
    """The certificates an AIA URL answered: one DER certificate (RFC 5280's form), PEM, or a
    PKCS#7 certs-only bundle (DER or PEM). Total: any bytes give a tuple, maybe empty."""
    if not isinstance(data, bytes) or not data or len(data) > MAX_FETCHED_BYTES:
        return ()
    found: list[x509.Certificate] = []
    for load in (_der, _pem, _pkcs7_der, _pkcs7_pem):
        try:
            found = list(load(data))
        except Exception:  # malformed input surfaces as many exception types: all mean no
            continue
        if found:
            break
    return tuple(cert for cert in found[:MAX_FETCHED] if entry(cert) is not None)


def _der(data: bytes) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(data)]


def _pem(data: bytes) -> list[x509.Certificate]:
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return []
    return x509.load_pem_x509_certificates(data)


def _pkcs7_der(data: bytes) -> list[x509.Certificate]:
    from cryptography.hazmat.primitives.serialization import pkcs7  # AIA answers only

    return pkcs7.load_der_pkcs7_certificates(data)


def _pkcs7_pem(data: bytes) -> list[x509.Certificate]:
    if b"-----BEGIN PKCS7-----" not in data:
        return []
    from cryptography.hazmat.primitives.serialization import pkcs7

    return pkcs7.load_pem_pkcs7_certificates(data)


def issuer_among(cert: x509.Certificate, candidates: Sequence[x509.Certificate]
                 ) -> x509.Certificate | None:
    """The first of `candidates` that issued `cert`."""
    return next((c for c in candidates if issued_by(cert, c)), None)
