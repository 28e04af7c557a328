"""What each stage found, typed: the stages hand these to each other and the faces read them by
attribute. `evidence()` derives the contract's JSON form for the reports; nothing reads it back.

Every field has a default, so a stage that found nothing still reports the contract's keys:
`DnsFound().evidence()` is the dns stage's evidence before it runs.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from assure_doctor.kinds import CertKind, ConnectKind, Family, HandshakeKind

if TYPE_CHECKING:  # certinfo needs cryptography, which a report's reader need not load
    from assure_doctor.probes.certinfo import CertInfo

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Handover:
    """A live connection one stage leaves for a later one: taken at most once. The engine
    closes whatever nobody took when the check ends."""

    def __init__(self, stream: Stream) -> None:
        self._stream: Stream | None = stream

    def take(self) -> Stream | None:
        stream, self._stream = self._stream, None
        return stream

    def close(self) -> None:
        stream = self.take()
        if stream is not None:
            stream[1].transport.abort()


@dataclass(frozen=True)
class Attempt:
    """One connection attempt to one address."""

    address: str
    port: int
    ms: float
    kind: ConnectKind | None = None  # None: connected
    error: str | None = None
    stream: Stream | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.kind is None

    def to_dict(self) -> dict[str, object]:
        return {"address": self.address, "port": self.port, "ms": round(self.ms, 1),
                "outcome": "connected" if self.ok else self.kind, "error": self.error}


def _set(evidence: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """`evidence` plus the optional fields that are known (not None)."""
    evidence.update({key: value for key, value in optional.items() if value is not None})
    return evidence


@dataclass(frozen=True)
class HostLookup:
    """Through a proxy: the API host's own lookup, recorded but not required."""

    host: str
    status: str
    summary: str
    addresses: tuple[str, ...] = ()

    def evidence(self) -> dict[str, Any]:
        return {"host": self.host, "status": self.status, "summary": self.summary,
                "addresses": list(self.addresses)}


class OsSource(StrEnum):
    """Where the operating system's answer for the API name came from (contract, turn 3)."""

    HOSTS = "hosts"
    DNS = "dns"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CnameLink:
    """One link of the CNAME chain: `name` points at `target` (None: the end, or where it
    broke); `status` is "ok" or, on the failing link, what the resolver answered."""

    name: str
    target: str | None
    status: str

    def evidence(self) -> dict[str, Any]:
        return {"name": self.name, "target": self.target, "status": self.status}


@dataclass(frozen=True)
class HostsPin:
    """An address the hosts file gives the API name, and the line that says so (1-based)."""

    address: str
    line: int


@dataclass(frozen=True)
class DnsFound:
    addresses: tuple[str, ...] = ()  # what the later stages use
    resolver: str | None = None
    answers: tuple[tuple[str, str], ...] | None = None  # (record type, rcode or failure kind)
    rcode: str | None = None
    error: str | None = None
    note: str | None = None
    proxy_host: str | None = None  # through a proxy, the name looked up was the proxy's
    api_host: HostLookup | None = None
    # What the OS resolver (getaddrinfo) answered, and where from (turn 3). None with
    # --resolver: then the OS was not consulted (`os_consulted` False).
    os_addresses: tuple[str, ...] | None = None
    os_source: OsSource | None = None
    hosts_file: str | None = None
    hosts_line: int | None = None  # the line of the first address the OS gave
    chain: tuple[CnameLink, ...] = ()
    os_consulted: bool | None = None
    os_error: str | None = None  # how getaddrinfo failed
    hosts_pins: tuple[HostsPin, ...] = ()  # every address the hosts file gave, with its line
    # What DNS itself answered (dnspython), beside the OS's answer: None when not asked.
    dns_addresses: tuple[str, ...] | None = None
    dns_agrees: bool | None = None

    def pin(self, address: str) -> HostsPin | None:
        """The hosts file's line for `address`, when the hosts file gave it."""
        if self.os_source is not OsSource.HOSTS:
            return None
        return next((p for p in self.hosts_pins if p.address == address), None)

    def evidence(self) -> dict[str, Any]:
        return _set({"addresses": list(self.addresses), "resolver": self.resolver},
                    answers=None if self.answers is None else dict(self.answers),
                    rcode=self.rcode, error=self.error, note=self.note,
                    proxy_host=self.proxy_host,
                    api_host=None if self.api_host is None else self.api_host.evidence(),
                    os_consulted=self.os_consulted,
                    os_addresses=None if self.os_addresses is None else list(
                        self.os_addresses),
                    os_source=self.os_source, os_error=self.os_error,
                    hosts_file=self.hosts_file, hosts_line=self.hosts_line,
                    hosts_lines=[{"address": p.address, "line": p.line}
                                 for p in self.hosts_pins] if len(
                        {p.line for p in self.hosts_pins}) > 1 else None,
                    dns_addresses=None if self.dns_addresses is None else list(
                        self.dns_addresses),
                    dns_agrees=self.dns_agrees,
                    chain=[link.evidence() for link in self.chain] or None)


@dataclass(frozen=True)
class TcpFound:
    address: str | None = None
    port: int | None = None
    attempts: tuple[Attempt, ...] = ()
    not_tried: int | None = None  # addresses beyond the per-family limit
    other_port_answered: bool | None = None
    failed_family: Family | None = None
    connection: Handover | None = field(default=None, compare=False, repr=False)

    def evidence(self) -> dict[str, Any]:
        return _set({"address": self.address, "port": self.port,
                     "attempts": [a.to_dict() for a in self.attempts]},
                    not_tried=self.not_tried or None,
                    other_port_answered=self.other_port_answered,
                    failed_family=None if self.failed_family is None else str(
                        self.failed_family))


@dataclass(frozen=True)
class SkippedRoute:
    """A route of the PAC's answer passed over before the one taken, and why."""

    route: str  # the entry as the PAC wrote it, e.g. "PROXY a:3128" (sanitised)
    reason: str

    def evidence(self) -> dict[str, Any]:
        return {"route": self.route, "reason": self.reason}


@dataclass(frozen=True)
class PacChoice:
    """A proxy auto-configuration script chose the route (contract, turn 3: `pac`), or could
    not (`error`: then `rule` is None and the proxy stage fails)."""

    source: str  # pac.location.PacSource: --pac, the Windows AutoConfigURL, WPAD, macOS
    url: str | None  # credentials masked
    rule: str | None  # what FindProxyForURL returned, e.g. "PROXY a:3128; DIRECT"
    chosen: str | None = None  # the route taken, e.g. "PROXY a:3128" or "DIRECT"
    skipped: tuple[SkippedRoute, ...] = ()  # passed over before it, in the PAC's order
    error: str | None = None  # why the PAC gave no route
    fetch_ms: float | None = None
    eval_ms: float | None = None

    def evidence(self) -> dict[str, Any]:
        return _set({"source": self.source, "url": self.url, "rule": self.rule},
                    chosen=self.chosen,
                    skipped=[s.evidence() for s in self.skipped] or None, error=self.error,
                    fetch_ms=None if self.fetch_ms is None else round(self.fetch_ms, 1),
                    eval_ms=None if self.eval_ms is None else round(self.eval_ms, 1))


@dataclass(frozen=True)
class ProxyFound:
    proxy: str | None = None  # the proxy URL, credentials masked
    source: str | None = None
    connect_status: int | None = None
    proxy_authenticate: tuple[str, ...] = ()
    reason: str | None = None
    ms: float | None = None
    error_page_title: str | None = None
    error: str | None = None
    pac: PacChoice | None = None
    tunnel: Handover | None = field(default=None, compare=False, repr=False)

    def evidence(self) -> dict[str, Any]:
        return _set({"proxy": self.proxy, "source": self.source,
                     "connect_status": self.connect_status,
                     "proxy_authenticate": list(self.proxy_authenticate)},
                    reason=self.reason, ms=None if self.ms is None else round(self.ms, 1),
                    error_page_title=self.error_page_title, error=self.error,
                    pac=None if self.pac is None else self.pac.evidence())


@dataclass(frozen=True)
class TrustVerdicts:
    """Which anchor sets verify the API alone (None: no --ca-bundle was given)."""

    certifi: bool
    system: bool
    ca_bundle: bool | None

    def evidence(self) -> dict[str, bool | None]:
        return {"certifi": self.certifi, "system": self.system, "ca_bundle": self.ca_bundle}


class CertProblem(StrEnum):
    """What is wrong with one certificate of a presented chain (contract, turn 3)."""

    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    UNTRUSTED = "untrusted"  # no anchor this machine trusts issued it
    HOSTNAME_MISMATCH = "hostname_mismatch"
    SELF_SIGNED = "self_signed"
    MISSING_ISSUER = "missing_issuer"  # its issuer was not sent (an incomplete chain)


@dataclass(frozen=True)
class ChainCertificate:
    """One certificate of the chain as presented, leaf first."""

    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    sha256: str
    problem: CertProblem | None = None

    def evidence(self) -> dict[str, Any]:
        return {"subject": self.subject, "issuer": self.issuer,
                "not_before": self.not_before.isoformat(),
                "not_after": self.not_after.isoformat(), "sha256": self.sha256,
                "problem": self.problem}


@dataclass(frozen=True)
class TlsFound:
    verified: bool | None = None
    certificate: CertInfo | None = None
    trust: TrustVerdicts | None = None
    address: str | None = None
    tls_version: str | None = None
    cipher: str | None = None
    days_left: float | None = None
    inspection_product: str | None = None
    verify_error: str | None = None
    verify_code: int | None = None
    verify_kind: CertKind | None = None
    valid_now: bool | None = None
    matches_host: bool | None = None
    error: str | None = None
    handshake: HandshakeKind | None = None
    small_mss_retry: str | None = None
    chain: tuple[ChainCertificate, ...] = ()  # as presented, leaf first (turn 3)
    # The trust anchor the chain ends in when the server did not send it (the usual case).
    anchor: ChainCertificate | None = None
    # The certificate whose validity window failed verification: the clock is judged on it.
    failing: ChainCertificate | None = field(default=None, compare=False, repr=False)
    missing_intermediate: str | None = None  # the subject of an intermediate not sent
    aia_url: str | None = None  # where it was fetched from to tell
    aia_error: str | None = None  # why fetching it did not tell
    # The context the connection verified with: certifi (+ --ca-bundle), or the machine's
    # store when only it trusts the API. The key travels only over a connection verified so.
    verified_with: ssl.SSLContext | None = field(default=None, compare=False, repr=False)
    connection: Handover | None = field(default=None, compare=False, repr=False)

    def evidence(self) -> dict[str, Any]:
        cert = self.certificate
        evidence: dict[str, Any] = {
            "not_before": None, "not_after": None, "issuer": None, "subject": None,
            "trust": None if self.trust is None else self.trust.evidence()}
        if cert is not None:
            evidence.update(cert.to_evidence())
        return _set(evidence, verified=self.verified, tls_version=self.tls_version,
                    cipher=self.cipher, address=self.address,
                    days_left=None if self.days_left is None else round(self.days_left, 2),
                    inspection_product=self.inspection_product,
                    verify_error=self.verify_error, verify_code=self.verify_code,
                    verify_kind=self.verify_kind, valid_now=self.valid_now,
                    matches_host=self.matches_host, error=self.error,
                    handshake=self.handshake, small_mss_retry=self.small_mss_retry,
                    chain=[c.evidence() for c in self.chain] or None,
                    anchor=None if self.anchor is None else self.anchor.evidence(),
                    missing_intermediate=self.missing_intermediate, aia_url=self.aia_url,
                    aia_error=self.aia_error)


@dataclass(frozen=True)
class ClockSample:
    """One reading of the server's clock from a `Date` header, bounded by the round trip."""

    skew_seconds: float  # server time minus local time
    uncertainty_seconds: float
    server_date: datetime
    local_time: datetime
    rtt_ms: float

    def evidence(self) -> dict[str, Any]:
        return {"skew_seconds": round(self.skew_seconds, 3),
                "uncertainty_seconds": round(self.uncertainty_seconds, 3),
                "server_date": self.server_date.isoformat(),
                "local_time": self.local_time.isoformat(timespec="milliseconds"),
                "rtt_ms": round(self.rtt_ms, 1)}


@dataclass(frozen=True)
class ClockFound:
    sample: ClockSample | None = None
    source: str | None = None
    error: str | None = None
    # Verified and idle again after the keyless GET: the ping's request goes here.
    connection: Handover | None = field(default=None, compare=False, repr=False)

    @property
    def skew_seconds(self) -> float | None:
        return None if self.sample is None else self.sample.skew_seconds

    def evidence(self) -> dict[str, Any]:
        evidence: dict[str, Any] = {"skew_seconds": None, "source": self.source}
        if self.sample is not None:
            evidence.update(self.sample.evidence())
        return _set(evidence, error=self.error)


@dataclass(frozen=True)
class PingAttempt:
    """One keyed request: its status, or the error that stopped it."""

    status_code: int | None
    error: str | None
    ms: float
    retry_after: float | None

    def evidence(self) -> dict[str, Any]:
        return {"status_code": self.status_code, "error": self.error, "ms": round(self.ms, 1),
                "retry_after": self.retry_after}


@dataclass(frozen=True)
class PingFound:
    status_code: int | None = None
    attempts: int = 0
    response_body: str | None = None
    history: tuple[PingAttempt, ...] = ()
    address: str | None = None
    reused: int | None = None  # connections reused from the earlier stages
    opened: int | None = None  # and newly opened
    clock: ClockSample | None = None  # the ping's own Date: a second clock sample
    location: str | None = None
    retry_after: float | None = None
    error: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # of the last response: allow-listed, sanitised

    def evidence(self) -> dict[str, Any]:
        return _set({"status_code": self.status_code, "attempts": self.attempts,
                     "response_body": self.response_body},
                    history=[a.evidence() for a in self.history] or None,
                    address=self.address,
                    connections=None if self.reused is None else {
                        "reused": self.reused, "opened": self.opened},
                    clock=None if self.clock is None else self.clock.evidence(),
                    location=self.location, retry_after=self.retry_after, error=self.error,
                    headers=[list(pair) for pair in self.headers] or None)
