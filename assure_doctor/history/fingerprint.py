"""A path fingerprint: what the integration's path to the API looked like, from the stages'
typed results. Pure: no I/O, no clock of its own.

A fingerprint of a failing check is partial: what a stage did not reach is None, and a None is
never compared (a check that fails at dns says nothing new about the certificate).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from assure_doctor.probes.results import (
    ClockFound,
    DnsFound,
    OsSource,
    PingFound,
    ProxyFound,
    TcpFound,
    TlsFound,
)


@dataclass(frozen=True)
class CertSummary:
    """One certificate of the chain, as much as a change needs."""

    sha256: str
    subject: str
    issuer: str
    not_after: str  # ISO 8601


@dataclass(frozen=True)
class Fingerprint:
    """Every field None when the check did not learn it."""

    addresses: tuple[str, ...] | None = None  # what the stages connected to, sorted
    address_source: str | None = None  # "the hosts file (/etc/hosts line 3)", "DNS", ...
    cname_chain: tuple[str, ...] | None = None  # the names from the typed one to the last
    proxy: str | None = None  # "direct", or the proxy URL (credentials masked)
    proxy_source: str | None = None
    tls_version: str | None = None
    cipher: str | None = None
    chain: tuple[CertSummary, ...] | None = None  # leaf first
    trust: tuple[str, ...] | None = None  # the anchor sets that verify it ("certifi", ...)
    ping_status: int | None = None
    clock_offset: float | None = None  # seconds, server minus local

    @property
    def issuer(self) -> str | None:
        return self.chain[0].issuer if self.chain else None


T = TypeVar("T")


def _one(found: list[object], kind: type[T]) -> T | None:
    return next((item for item in found if isinstance(item, kind)), None)


def of(results: Iterable[object]) -> Fingerprint:
    """The fingerprint of a check, from what its stages found (their typed results)."""
    found = list(results)
    dns, tcp = _one(found, DnsFound), _one(found, TcpFound)
    proxy, tls = _one(found, ProxyFound), _one(found, TlsFound)
    clock, ping = _one(found, ClockFound), _one(found, PingFound)
    return Fingerprint(
        addresses=_addresses(dns, tcp),
        address_source=None if dns is None or not (dns.addresses or dns.os_addresses)
        else _source(dns),
        cname_chain=None if dns is None or not dns.chain else tuple(
            link.name for link in dns.chain) + tuple(
            link.target for link in dns.chain[-1:] if link.target),
        # A proxy stage that ran (or was skipped as direct) names its source.
        proxy=None if proxy is None or proxy.source is None else proxy.proxy or "direct",
        proxy_source=None if proxy is None else proxy.source,
        tls_version=tls.tls_version if tls else None,
        cipher=tls.cipher if tls else None,
        chain=_chain(tls),
        trust=None if tls is None or tls.trust is None else tuple(
            store for store, verified in tls.trust.evidence().items() if verified),
        ping_status=ping.status_code if ping else None,
        clock_offset=clock.skew_seconds if clock else None,
    )


def _addresses(dns: DnsFound | None, tcp: TcpFound | None) -> tuple[str, ...] | None:
    """The API's addresses as the stages used them; through a proxy, the proxy's."""
    if dns is not None and dns.addresses:
        return tuple(sorted(dns.addresses))
    if tcp is not None and tcp.address:
        return (tcp.address,)
    return None


def _source(dns: DnsFound) -> str:
    if dns.os_source is OsSource.HOSTS:
        where = f" ({dns.hosts_file} line {dns.hosts_line})" if dns.hosts_file else ""
        return f"the hosts file{where}"
    if dns.os_source is OsSource.DNS:
        return "DNS"
    return f"DNS via {dns.resolver}" if dns.resolver else "the system resolver"


def _chain(tls: TlsFound | None) -> tuple[CertSummary, ...] | None:
    if tls is None:
        return None
    if tls.chain:
        return tuple(CertSummary(c.sha256, c.subject, c.issuer, c.not_after.isoformat())
                     for c in tls.chain)
    cert = tls.certificate
    if cert is None:
        return None
    return (CertSummary(cert.sha256, cert.subject, cert.issuer, cert.not_after.isoformat()),)
