"""The one list of stages, in the order they run. Everything that lists stages derives from it:
`STAGE_NAMES`, `TITLES` (the TUI), `EVIDENCE_DEFAULTS` (the contract's evidence, from each
stage's empty result), `NETWORK_STAGES` (the monitor's keyless cadence).

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
    ProxyKind,
)
from assure_doctor.probes import clock, crossfacts, dns, ping, proxy, tcp, tls
from assure_doctor.probes.results import (
    ClockFound,
    DnsFound,
    PingFound,
    ProxyFound,
    TcpFound,
    TlsFound,
)
from assure_doctor.probes.stage import Need, Probe

PROBES: tuple[Probe, ...] = (
    Probe("dns", "DNS", dns.run, DnsFound, needs=(Need.ROUTE,), operations=2,
          overrun=(Condition.DNS_LOOKUP_FAILED, DnsKind.TIMEOUT)),
    Probe("tcp", "TCP", tcp.run, TcpFound, needs=(Need.ROUTE, Need.NO_FAILURE), operations=2,
          traced=True,
          cross_facts=crossfacts.tcp_facts,
          overrun=(Condition.CONNECT_TIMEOUT, ConnectKind.TIMEOUT)),
    Probe("proxy", "Proxy", proxy.run, ProxyFound, operations=3, optional=True,
          overrun=(Condition.PROXY_UPSTREAM_FAILED, ProxyKind.TIMEOUT), skipped=proxy.skipped),
    Probe("tls", "TLS", tls.run, TlsFound, operations=4, traced=True,
          cross_facts=crossfacts.tls_facts,
          overrun=(Condition.TLS_HANDSHAKE_FAILED, HandshakeKind.TIMEOUT)),
    Probe("clock", "Clock", clock.run, ClockFound, needs=(Need.REACHABLE_SERVER,),
          operations=3),
    Probe("ping", "Ping", ping.run, PingFound, needs=(Need.NO_FAILURE, Need.KEY),
          retried=True, overrun=(Condition.HTTP_TIMEOUT, None)),
)


def probe(name: str) -> Probe:
    """The stage called `name`; ValueError for a name that is not a stage."""
    found = next((p for p in PROBES if p.name == name), None)
    if found is None:
        raise ValueError(f"unknown stage {name!r}")
    return found


STAGE_NAMES: tuple[str, ...] = tuple(p.name for p in PROBES)
TITLES: Mapping[str, str] = {p.name: p.title for p in PROBES}
EVIDENCE_DEFAULTS: Mapping[str, Mapping[str, Any]] = {p.name: p.found().evidence()
                                                      for p in PROBES}
NETWORK_STAGES: tuple[str, ...] = tuple(p.name for p in PROBES if not p.keyed)
OPTIONAL_STAGES: frozenset[str] = frozenset(p.name for p in PROBES if p.optional)
