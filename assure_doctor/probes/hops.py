"""A TCP traceroute's result and its wording, without I/O: the hops, how the path ended, who
owns the last hop that answered, and the `path` evidence (contract, turn 3).

`probes.traceroute` does the I/O and builds a `Trace` from its `Hop`s with `Trace.of`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class HopKind(StrEnum):
    """What answered one probe (a SYN with one TTL)."""

    TIME_EXCEEDED = "time_exceeded"  # a router on the way: ICMP time exceeded
    CONNECTED = "connected"  # the destination's SYN-ACK
    REFUSED = "refused"  # a TCP reset
    ADMIN_PROHIBITED = "admin_prohibited"  # ICMP administratively prohibited: a REJECT
    PORT_UNREACHABLE = "port_unreachable"  # ICMP port unreachable: iptables' default REJECT
    HOST_UNREACHABLE = "host_unreachable"
    NET_UNREACHABLE = "net_unreachable"
    UNREACHABLE = "unreachable"  # another ICMP unreachable code (or type)
    SILENT = "silent"  # nothing within the time: `*`
    NOT_SENT = "not_sent"  # this machine refused to send it (no route, its own firewall)


# Answers that end the path: nothing beyond them says more about this port.
_FINAL = frozenset(HopKind) - {HopKind.TIME_EXCEEDED, HopKind.SILENT}
_REJECTS = frozenset({HopKind.ADMIN_PROHIBITED, HopKind.PORT_UNREACHABLE})
_UNREACHABLES = frozenset({HopKind.HOST_UNREACHABLE, HopKind.NET_UNREACHABLE,
                           HopKind.UNREACHABLE})


class Ending(StrEnum):
    """How a trace ended."""

    REACHED = "reached"  # the destination accepted the connection
    REFUSED = "refused"  # a TCP reset
    REJECTED = "rejected"  # ICMP admin-prohibited or port unreachable: a firewall's REJECT
    UNREACHABLE = "unreachable"  # ICMP host/net unreachable: a hop has no route onward
    SILENT = "silent"  # no final answer: the SYN is dropped after the last hop that answered
    NOT_SENT = "not_sent"  # this machine did not send the SYN
    SKIPPED = "skipped"  # no trace on this platform


class Owner(StrEnum):
    """Whose an address is, as far as the address alone tells."""

    LOCAL = "local"  # loopback, unspecified, or this machine's own address
    PRIVATE = "private"  # RFC 1918, ULA, link-local, benchmark space: your network
    SHARED = "shared"  # RFC 6598: an ISP's carrier-grade NAT, or a network that borrows it
    PUBLIC = "public"  # beyond your network


_PRIVATE = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # RFC 1918
    "169.254.0.0/16", "fe80::/10",  # link-local
    "fc00::/7",  # unique local (RFC 4193; fd00::/8 in practice)
    # Benchmark space (RFC 2544): never routed on the Internet, so a hop there is inside
    # someone's network; our namespace tests use it, and read naturally as "yours".
    "198.18.0.0/15",
))
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NOWHERE = tuple(ipaddress.ip_network(n) for n in ("127.0.0.0/8", "0.0.0.0/32", "::1/128",
                                                    "::/128"))


def owner(address: str, local: str | None = None) -> Owner:
    """Who an address belongs to; `local` is this machine's address on the trace's socket."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if address == local or any(ip in net for net in _NOWHERE):
        return Owner.LOCAL
    if any(ip in net for net in _PRIVATE):
        return Owner.PRIVATE
    return Owner.SHARED if ip in _SHARED else Owner.PUBLIC


@dataclass(frozen=True)
class Hop:
    """The answer to the SYN sent with one TTL (hop limit)."""

    ttl: int
    address: str | None  # who answered; None: nobody (`*`)
    rtt_ms: float | None
    kind: HopKind
    icmp: tuple[int, int] | None = None  # the ICMP (type, code) that answered, if one did

    @property
    def final(self) -> bool:
        return self.kind in _FINAL

    def evidence(self, local: str | None = None) -> dict[str, Any]:
        return {"ttl": self.ttl, "address": self.address,
                "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 2),
                "kind": self.kind.value,
                "owner": None if self.address is None else owner(self.address, local).value,
                "icmp": None if self.icmp is None else {"type": self.icmp[0],
                                                        "code": self.icmp[1]}}


@dataclass(frozen=True)
class Trace:
    """A TCP traceroute to `address` port `port`: the hops up to the one that ended it."""

    address: str
    port: int
    hops: tuple[Hop, ...]
    ended: Ending
    max_hops: int
    elapsed_ms: float = 0.0
    source: str | None = None  # this machine's address on the path
    skipped_reason: str | None = None
    local_error: str | None = None  # why this machine did not send the SYN (NOT_SENT)

    @classmethod
    def of(cls, address: str, port: int, hops: Sequence[Hop], max_hops: int,
           elapsed_ms: float, source: str | None = None, local_error: str | None = None
           ) -> Trace:
        """The trace the probes' answers make: cut at the lowest-TTL final answer (higher
        TTLs reach the same end), and ended as that answer says, or silent without one."""
        ordered = sorted(hops, key=lambda h: h.ttl)
        end = next((h for h in ordered if h.final), None)
        if end is not None:
            ordered = [h for h in ordered if h.ttl <= end.ttl]
        return cls(address, port, tuple(ordered), _ending(end), max_hops, elapsed_ms, source,
                   None, local_error if end is not None and end.kind is HopKind.NOT_SENT
                   else None)

    @classmethod
    def skipped(cls, address: str, port: int, reason: str, max_hops: int) -> Trace:
        return cls(address, port, (), Ending.SKIPPED, max_hops, skipped_reason=reason)

    @property
    def end(self) -> Hop | None:
        """The hop whose answer ended the trace (None: silent or skipped)."""
        return self.hops[-1] if self.hops and self.hops[-1].final else None

    @property
    def reached(self) -> bool:
        """The destination itself answered: connected, reset, or an ICMP in its own name."""
        end = self.end
        return end is not None and (end.kind in (HopKind.CONNECTED, HopKind.REFUSED)
                                    or end.address == self.address)

    @property
    def last_responding(self) -> Hop | None:
        """The highest hop that answered at all."""
        return next((h for h in reversed(self.hops) if h.address is not None), None)

    @property
    def probed(self) -> int:
        """The highest TTL sent (bounded by `max_hops` and the time budget)."""
        return self.hops[-1].ttl if self.hops else 0

    def evidence(self) -> dict[str, Any]:
        """The contract's `path` evidence: the hops the trace reached and the last that
        answered. Trailing silent hops fold into `silent_from` .. `probed`."""
        last = self.last_responding
        shown = self.hops
        silent_from = None
        if self.ended is Ending.SILENT:
            cut = last.ttl if last else 0
            shown = tuple(h for h in self.hops if h.ttl <= cut)
            silent_from = cut + 1 if self.probed > cut else None
        end = self.end
        return {"method": "tcp_syn", "to": self.address, "port": self.port,
                "from": self.source, "ended": self.ended.value,
                "at_hop": end.ttl if end else None, "reached": self.reached,
                "hops": [h.evidence(self.source) for h in shown],
                "last_answered": last.evidence(self.source) if last else None,
                "silent_from": silent_from, "probed": self.probed,
                "max_hops": self.max_hops, "elapsed_ms": round(self.elapsed_ms, 1),
                "skipped": self.skipped_reason, "error": self.local_error}


def _ending(end: Hop | None) -> Ending:
    if end is None:
        return Ending.SILENT
    if end.kind is HopKind.CONNECTED:
        return Ending.REACHED
    if end.kind is HopKind.REFUSED:
        return Ending.REFUSED
    if end.kind in _REJECTS:
        return Ending.REJECTED
    return Ending.NOT_SENT if end.kind is HopKind.NOT_SENT else Ending.UNREACHABLE


# ---- wording --------------------------------------------------------------------------

_ICMP_TEXT: dict[HopKind, str] = {
    HopKind.ADMIN_PROHIBITED: "ICMP administratively prohibited",
    HopKind.PORT_UNREACHABLE: "ICMP port unreachable",
    HopKind.HOST_UNREACHABLE: "ICMP host unreachable",
    HopKind.NET_UNREACHABLE: "ICMP network unreachable",
    HopKind.UNREACHABLE: "an ICMP unreachable",
}
_NETWORK_TEAM = "your network team"


def where(hop: Hop, local: str | None = None) -> str:
    """Whose the hop is, in words: "your gateway", "on your network", ..."""
    if hop.address is None:
        return "no answer"
    found = owner(hop.address, local)
    if found is Owner.LOCAL:
        return "this machine"
    if found is Owner.PRIVATE:
        return "your gateway" if hop.ttl == 1 else "on your network"
    if found is Owner.SHARED:
        return "carrier-grade NAT space (RFC 6598)"
    return "beyond your network"


def who_to_call(address: str | None, local: str | None = None, *, proxy: bool = False) -> str:
    """Who can fix what happens at (or just after) `address`."""
    beyond = "your ISP or the proxy's operator" if proxy else "your ISP or the API platform"
    if address is None:
        return _NETWORK_TEAM
    found = owner(address, local)
    if found is Owner.SHARED:
        return "your ISP (it runs carrier-grade NAT there) or your network team"
    return beyond if found is Owner.PUBLIC else _NETWORK_TEAM


def _named(hop: Hop, local: str | None) -> str:
    return f"hop {hop.ttl} ({hop.address}, {where(hop, local)})"


def finding(trace: Trace, *, proxy: str | None = None) -> str:
    """The trace in one sentence for the advice, naming who to call.

    `proxy`: the proxy's display name (credentials masked) when the trace went to the proxy;
    the sentence then says the path ends there."""
    to = f"the proxy {proxy} ({trace.address})" if proxy else trace.address
    syn = f"the SYN to {to} port {trace.port}"
    local, end = trace.source, trace.end
    note = f" {proxy_note(proxy)}" if proxy else ""
    if trace.ended is Ending.SKIPPED:
        return f"no TCP traceroute: {trace.skipped_reason}."
    if trace.ended is Ending.SILENT:
        return _silent(trace, syn, proxy is not None) + note
    assert end is not None  # every other ending has a final hop
    call = who_to_call(end.address, local, proxy=proxy is not None)
    if trace.ended is Ending.NOT_SENT:
        return (f"this machine did not send {syn}: {trace.local_error}; its routing table or "
                f"firewall stops it (call {_NETWORK_TEAM}).")
    if trace.ended is Ending.REACHED:
        return f"the path is open: {syn} is answered at hop {end.ttl}.{note}"
    if trace.ended is Ending.REFUSED:
        return (f"{syn} is refused with a TCP reset at hop {end.ttl}: the path is open to "
                f"there, and the server or a firewall in front of it refuses the port "
                f"(call {call}).{note}")
    icmp = _ICMP_TEXT.get(end.kind, "an ICMP unreachable")
    if trace.ended is Ending.REJECTED and end.address == trace.address:
        return (f"{syn} is rejected at hop {end.ttl} by {to} itself with {icmp}: a "
                f"firewall's REJECT (call {call}).{note}")
    # A router that rejects or cannot forward answers for the TTL after its own: name it by
    # the hop it answered time exceeded for, when it did.
    hop = next((h for h in trace.hops if h.address == end.address), end)
    if trace.ended is Ending.REJECTED:
        return (f"{syn} is rejected by a firewall at {_named(hop, local)} with {icmp} "
                f"(call {call}).{note}")
    return (f"{syn} is answered by {_named(hop, local)} with {icmp}: it cannot deliver it "
            f"onward (call {call}).{note}")


def _silent(trace: Trace, syn: str, proxy: bool) -> str:
    last = trace.last_responding
    if last is None:
        return (f"{syn} gets no answer from any hop (1 to {trace.probed}): this machine's "
                f"firewall or your gateway drops it, or no router on the way answers traces "
                f"(call {_NETWORK_TEAM}).")
    span = (f"hops {last.ttl + 1} to {trace.probed} are silent" if trace.probed > last.ttl
            else "no later hop was probed in time")
    call = who_to_call(last.address, trace.source, proxy=proxy)
    return f"{syn} is dropped after {_named(last, trace.source)}: {span} (call {call})."


def proxy_note(proxy: str) -> str:
    """Through a proxy, the trace ends at the proxy: say so."""
    return (f"Through a proxy the path ends at the proxy ({proxy}): the hops from the proxy "
            f"to the API are the proxy's, and only its operator can trace them.")


def hop_lines(trace: Trace) -> list[str]:
    """The hops as traceroute prints them, trailing silence folded: " 3-16  *"."""
    evidence = trace.evidence()
    lines = []
    for hop in trace.hops[: len(evidence["hops"])]:
        rtt = "" if hop.rtt_ms is None else f"  {hop.rtt_ms:.1f} ms"
        plain = hop.kind in (HopKind.TIME_EXCEEDED, HopKind.SILENT)
        kind = "" if plain else f"  {hop.kind.value}"
        lines.append(f"{hop.ttl:>2}  {hop.address or '*'}{rtt}{kind}")
    if evidence["silent_from"] is not None:
        span = evidence["silent_from"], evidence["probed"]
        lines.append(f"{span[0]}-{span[1]}  *" if span[0] < span[1] else f"{span[0]:>2}  *")
    return lines
