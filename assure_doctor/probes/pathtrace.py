"""Where on the path a connection dies: after a stage fails (or warns) with a timeout, a
reset or an unreachable, a TCP traceroute to the port it was connecting to, as evidence
(`path`) and as a fact the advice words. Never on a healthy check.
"""

from __future__ import annotations

from dataclasses import replace

from assure_doctor import logs, sanitize
from assure_doctor.kinds import ConnectKind, Facts, HandshakeKind, Kind
from assure_doctor.model import Outcome, Status
from assure_doctor.probes.results import TcpFound
from assure_doctor.probes.stage import Context

TRACEABLE: frozenset[Kind] = frozenset({ConnectKind.TIMEOUT, ConnectKind.RESET,
                                        ConnectKind.UNREACHABLE, HandshakeKind.TIMEOUT,
                                        HandshakeKind.RESET})
BUDGET = 3.0  # seconds for the whole trace, at most 16 hops
FINDING_LIMIT = 400
log = logs.get("path")


def wanted(outcome: Outcome) -> bool:
    """Whether this outcome is a timeout, reset or unreachable worth tracing."""
    return (outcome.status in (Status.FAIL, Status.WARN)
            and outcome.facts.get("kind") in TRACEABLE)


async def follow(ctx: Context, outcome: Outcome) -> Outcome:
    """`outcome` with the path to the address it failed on: through a proxy, to the proxy."""
    from assure_doctor.probes import hops, traceroute  # a failing check's: not a healthy one's

    address = outcome.facts.get("address") or ctx.found(TcpFound).address
    if not address or not wanted(outcome):
        return outcome
    port = ctx.dial_port
    log.info("Tracing the TCP path to %s port %d", address, port)
    try:
        trace = await traceroute.trace(address, port, budget=min(BUDGET, ctx.options.timeout
                                                                  * 2))
    except ValueError:  # not an address (a name the stage could not resolve)
        return outcome
    proxy = ctx.route.proxy.masked_url if ctx.route.proxy else None
    finding = sanitize.text(hops.finding(trace, proxy=proxy), FINDING_LIMIT)
    log.info("TCP traceroute: %s", finding)
    facts = Facts(**outcome.facts)
    if trace.ended is not hops.Ending.SKIPPED:
        facts.update(Facts(path_finding=finding, path_ending=trace.ended.value))
    return replace(outcome, facts=facts, path=trace)
