"""The TCP traceroute's pure parts: how a trace ends, whose a hop is, the `path` evidence and
the wording the advice uses; and the parser of the kernel's ICMP error records."""

from __future__ import annotations

import json
import socket
import struct
import sys

from hypothesis import given
from hypothesis import strategies as st

from assure_doctor.probes.hops import (
    Ending,
    Hop,
    HopKind,
    Owner,
    Trace,
    finding,
    hop_lines,
    owner,
    proxy_note,
    who_to_call,
)
from assure_doctor.probes.traceroute import parse_extended_err

TO = "203.0.113.7"  # documentation space, standing in for a public API address


def router(ttl: int, address: str | None) -> Hop:
    if address is None:
        return Hop(ttl, None, None, HopKind.SILENT)
    return Hop(ttl, address, 1.0 + ttl, HopKind.TIME_EXCEEDED, (11, 0))


def path(*addresses: str | None, last: Hop | None = None, max_hops: int = 16) -> Trace:
    hops = [router(ttl, a) for ttl, a in enumerate(addresses, 1)]
    return Trace.of(TO, 443, [*hops, *([last] if last else [])], max_hops, 12.5, "192.168.1.20")


def test_addresses_are_owned_by_their_network() -> None:
    assert owner("192.168.1.1") is Owner.PRIVATE
    assert owner("10.255.0.1") is Owner.PRIVATE
    assert owner("172.31.255.254") is Owner.PRIVATE and owner("172.32.0.1") is Owner.PUBLIC
    assert owner("198.19.255.255") is Owner.PRIVATE and owner("198.20.0.1") is Owner.PUBLIC
    assert owner("169.254.10.1") is Owner.PRIVATE
    assert owner("100.64.0.1") is Owner.SHARED and owner("100.128.0.1") is Owner.PUBLIC
    assert owner("fd00:ad::1") is Owner.PRIVATE and owner("fe80::1") is Owner.PRIVATE
    assert owner("::ffff:10.1.2.3") is Owner.PRIVATE  # an IPv4-mapped address is its IPv4's
    assert owner("127.0.0.9") is Owner.LOCAL and owner("::1") is Owner.LOCAL
    assert owner("203.0.113.1") is Owner.PUBLIC and owner("2001:db8::1") is Owner.PUBLIC
    assert owner("203.0.113.1", local="203.0.113.1") is Owner.LOCAL  # this machine's own


def test_who_to_call_is_your_team_inside_and_the_isp_or_platform_beyond() -> None:
    assert who_to_call("192.168.1.1") == "your network team"
    assert who_to_call("203.0.113.1") == "your ISP or the API platform"
    assert who_to_call("203.0.113.1", proxy=True) == "your ISP or the proxy's operator"
    assert "ISP" in who_to_call("100.64.3.4") and "network team" in who_to_call("100.64.3.4")


def test_the_lowest_final_answer_ends_the_trace() -> None:
    connected = Hop(4, TO, 9.0, HopKind.CONNECTED)
    farther = Hop(5, TO, 9.5, HopKind.CONNECTED)
    trace = Trace.of(TO, 443, [farther, router(2, "10.0.0.1"), connected, router(1, None),
                               router(3, "198.51.100.1")], 16, 20.0)
    assert [h.ttl for h in trace.hops] == [1, 2, 3, 4]
    assert trace.ended is Ending.REACHED and trace.reached and trace.end == connected
    assert trace.last_responding == connected


def test_each_final_answer_names_its_ending() -> None:
    def ended(kind: HopKind, address: str | None = TO) -> Ending:
        return path("10.0.0.1", last=Hop(2, address, 3.0, kind)).ended
    assert ended(HopKind.REFUSED) is Ending.REFUSED
    assert ended(HopKind.ADMIN_PROHIBITED) is Ending.REJECTED
    assert ended(HopKind.PORT_UNREACHABLE) is Ending.REJECTED
    assert ended(HopKind.HOST_UNREACHABLE, "198.51.100.9") is Ending.UNREACHABLE
    assert ended(HopKind.NET_UNREACHABLE, "198.51.100.9") is Ending.UNREACHABLE
    assert ended(HopKind.NOT_SENT, None) is Ending.NOT_SENT
    assert path("10.0.0.1", None, None).ended is Ending.SILENT


def test_reached_means_the_destination_itself_answered() -> None:
    from_router = path("10.0.0.1", last=Hop(2, "10.0.0.1", 1.0, HopKind.ADMIN_PROHIBITED))
    from_server = path("10.0.0.1", last=Hop(2, TO, 1.0, HopKind.ADMIN_PROHIBITED))
    assert not from_router.reached and from_server.reached
    assert path("10.0.0.1", last=Hop(2, TO, 1.0, HopKind.REFUSED)).reached
    assert not path("10.0.0.1", None).reached


def test_evidence_holds_the_hops_reached_and_the_last_that_answered() -> None:
    trace = path("192.168.1.1", "100.64.0.1", "198.51.100.1", None, None, None)
    evidence = trace.evidence()
    assert json.loads(json.dumps(evidence)) == evidence
    assert evidence["ended"] == "silent" and evidence["reached"] is False
    assert [h["address"] for h in evidence["hops"]] == ["192.168.1.1", "100.64.0.1",
                                                        "198.51.100.1"]
    assert [h["owner"] for h in evidence["hops"]] == ["private", "shared", "public"]
    assert evidence["last_answered"]["ttl"] == 3
    assert evidence["last_answered"]["icmp"] == {"type": 11, "code": 0}
    assert (evidence["silent_from"], evidence["probed"]) == (4, 6)
    assert evidence["to"] == TO and evidence["port"] == 443 and evidence["at_hop"] is None
    assert evidence["from"] == "192.168.1.20" and evidence["max_hops"] == 16


def test_a_silent_gap_before_an_answer_stays_in_the_evidence() -> None:
    trace = path("192.168.1.1", None, "198.51.100.1", last=Hop(4, TO, 5.0, HopKind.CONNECTED))
    evidence = trace.evidence()
    assert [h["kind"] for h in evidence["hops"]] == ["time_exceeded", "silent",
                                                     "time_exceeded", "connected"]
    assert evidence["silent_from"] is None and evidence["at_hop"] == 4
    assert hop_lines(trace)[1] == " 2  *"


def test_a_skipped_trace_says_why() -> None:
    trace = Trace.skipped(TO, 443, "TCP traceroute needs Linux's IP_RECVERR; skipped on win32",
                          16)
    assert trace.evidence()["skipped"] == trace.skipped_reason
    assert trace.evidence()["hops"] == [] and not trace.reached
    assert finding(trace) == f"no TCP traceroute: {trace.skipped_reason}."


def test_a_drop_after_your_gateway_names_it_and_your_network_team() -> None:
    text = finding(path("192.168.1.1", None, None))
    assert "dropped after hop 1 (192.168.1.1, your gateway)" in text
    assert "hops 2 to 3 are silent" in text and "your network team" in text


def test_a_drop_beyond_your_network_names_the_isp_or_platform() -> None:
    text = finding(path("192.168.1.1", "198.51.100.1", None))
    assert "dropped after hop 2 (198.51.100.1, beyond your network)" in text
    assert "your ISP or the API platform" in text and "network team" not in text


def test_no_hop_answering_is_said_as_such() -> None:
    text = finding(path(None, None, None))
    assert "no answer from any hop (1 to 3)" in text and "your network team" in text


def test_a_firewall_rejecting_midway_is_named_by_its_own_hop() -> None:
    """A router rejecting what it forwards answers for the TTL after its own."""
    rejected = Hop(3, "198.51.100.1", 4.0, HopKind.ADMIN_PROHIBITED, (3, 13))
    text = finding(path("192.168.1.1", "198.51.100.1", last=rejected))
    assert "rejected by a firewall at hop 2 (198.51.100.1, beyond your network)" in text
    assert "administratively prohibited" in text and "your ISP or the API platform" in text


def test_the_server_rejecting_or_refusing_names_it() -> None:
    rejected = finding(path("10.0.0.1", last=Hop(2, TO, 4.0, HopKind.PORT_UNREACHABLE, (3, 3))))
    assert f"rejected at hop 2 by {TO} itself with ICMP port unreachable" in rejected
    refused = finding(path("10.0.0.1", last=Hop(2, TO, 4.0, HopKind.REFUSED)))
    assert "refused with a TCP reset at hop 2" in refused and "the API platform" in refused


def test_an_unreachable_names_the_hop_that_cannot_deliver() -> None:
    text = finding(path("10.0.0.1", last=Hop(2, "10.0.0.1", 4.0, HopKind.NET_UNREACHABLE)))
    assert "answered by hop 1 (10.0.0.1, your gateway) with ICMP network unreachable" in text


def test_an_open_path_and_a_local_refusal() -> None:
    assert finding(path("10.0.0.1", last=Hop(2, TO, 4.0, HopKind.CONNECTED))).startswith(
        "the path is open")
    not_sent = Trace.of(TO, 443, [Hop(1, None, None, HopKind.NOT_SENT)], 16, 0.1,
                        local_error="Network is unreachable (ENETUNREACH)")
    assert not_sent.ended is Ending.NOT_SENT
    assert "Network is unreachable (ENETUNREACH)" in finding(not_sent)


def test_through_a_proxy_the_path_ends_at_the_proxy() -> None:
    text = finding(path("10.0.0.1", "198.51.100.1", None), proxy="http://proxy.example:8080")
    assert "the proxy http://proxy.example:8080" in text
    assert "your ISP or the proxy's operator" in text
    assert text.endswith(proxy_note("http://proxy.example:8080"))
    assert "path ends at the proxy" in proxy_note("p:3128")


def extended_err(origin: int, icmp_type: int, code: int, offender: bytes) -> bytes:
    return struct.pack("=IBBBBII", 113, origin, icmp_type, code, 0, 0, 0) + offender


def sockaddr_in(address: str) -> bytes:
    return (socket.AF_INET.to_bytes(2, sys.byteorder) + b"\0\0"
            + socket.inet_pton(socket.AF_INET, address) + bytes(8))


def sockaddr_in6(address: str) -> bytes:
    return (socket.AF_INET6.to_bytes(2, sys.byteorder) + bytes(6)
            + socket.inet_pton(socket.AF_INET6, address) + bytes(4))


def test_the_kernels_icmp_error_records_are_read() -> None:
    exceeded = parse_extended_err(extended_err(2, 11, 0, sockaddr_in("198.18.1.2")))
    assert exceeded == ((HopKind.TIME_EXCEEDED, 11, 0), "198.18.1.2")
    prohibited = parse_extended_err(extended_err(3, 1, 1, sockaddr_in6("fd00:ad:4::2")))
    assert prohibited == ((HopKind.ADMIN_PROHIBITED, 1, 1), "fd00:ad:4::2")
    no_route = parse_extended_err(extended_err(3, 1, 0, sockaddr_in6("fd00:ad:2::2")))
    assert no_route is not None and no_route[0][0] is HopKind.NET_UNREACHABLE
    odd = parse_extended_err(extended_err(2, 12, 0, b""))  # parameter problem, no offender
    assert odd == ((HopKind.UNREACHABLE, 12, 0), None)


def test_records_that_are_not_icmp_errors_are_ignored() -> None:
    assert parse_extended_err(extended_err(1, 0, 0, b"")) is None  # SO_EE_ORIGIN_LOCAL
    assert parse_extended_err(b"\x02\x00") is None


@given(st.binary(max_size=64))
def test_any_record_parses_without_raising(data: bytes) -> None:
    found = parse_extended_err(data)
    assert found is None or isinstance(found[0][0], HopKind)
