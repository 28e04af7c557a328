"""The one list of stages, in the order they run. Everything that lists stages derives from it:
`STAGE_NAMES` (also `model.STAGES`), `TITLES` (the TUI), `EVIDENCE_DEFAULTS` (the contract's
evidence), `NETWORK_STAGES` (the monitor's keyless cadence).

Adding a stage is its module plus one `Probe(...)` line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assure_doctor.kinds import (
    Condition,
    ConnectKind,
    DnsKind,
    HandshakeKind,
    HttpKind,
    ProxyKind,
)
from assure_doctor.probes import Need, Probe, clock, crossfacts, dns, ping, proxy, tcp, tls

PROBES: tuple[Probe, ...] = (
    Probe("dns", "DNS", dns.run, needs=(), operations=2,
          evidence={"addresses": [], "resolver": None},
          overrun=(Condition.DNS_LOOKUP_FAILED, DnsKind.TIMEOUT)),
    Probe("tcp", "TCP", tcp.run, operations=2, evidence={"address": None, "port": None},
          overrun=(Condition.CONNECT_TIMEOUT, ConnectKind.TIMEOUT)),
    Probe("proxy", "Proxy", proxy.run, operations=3, optional=True,
          evidence={"proxy": None, "source": None, "connect_status": None,
                    "proxy_authenticate": []},
          overrun=(Condition.PROXY_UPSTREAM_FAILED, ProxyKind.TIMEOUT)),
    Probe("tls", "TLS", tls.run, operations=4, cross_facts=crossfacts.tls_facts,
          evidence={"not_before": None, "not_after": None, "issuer": None, "subject": None,
                    "trust": None},
          overrun=(Condition.TLS_HANDSHAKE_FAILED, HandshakeKind.TIMEOUT)),
    Probe("clock", "Clock", clock.run, needs=(Need.REACHABLE_SERVER,), operations=3,
          evidence={"skew_seconds": None, "source": None}),
    Probe("ping", "Ping", ping.run, needs=(Need.NO_FAILURE, Need.KEY), retried=True,
          evidence={"status_code": None, "attempts": 0, "response_body": None},
          overrun=(Condition.HTTP_TIMEOUT, HttpKind.READ)),
)


def probe(name: str) -> Probe:
    """The stage called `name`; ValueError for a name that is not a stage."""
    found = next((p for p in PROBES if p.name == name), None)
    if found is None:
        raise ValueError(f"unknown stage {name!r}")
    return found


STAGE_NAMES: tuple[str, ...] = tuple(p.name for p in PROBES)
TITLES: Mapping[str, str] = {p.name: p.title for p in PROBES}
EVIDENCE_DEFAULTS: Mapping[str, Mapping[str, Any]] = {p.name: p.evidence for p in PROBES}
NETWORK_STAGES: tuple[str, ...] = tuple(p.name for p in PROBES if not p.keyed)
OPTIONAL_STAGES: frozenset[str] = frozenset(p.name for p in PROBES if p.optional)
