"""Kernel-level faults the sandbox cannot fake, in network namespaces the test builds itself:
a firewall that drops or rejects, a missing route, and a path MTU black hole.

The client is the real `check` run inside a namespace; the server a real TLS listener inside
another. Root only (skipped with the reason otherwise); only 198.18.0.0/15 is used.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from assure_doctor.sandbox import pki
from tests import netns

pytestmark = pytest.mark.slow  # network namespaces, real servers and whole checks

SERVER_IP = "198.18.0.2"


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for SERVER_IP and the MTU lab's server, made large
    (many names) so the server's first flight needs full-size packets."""
    work = tmp_path_factory.mktemp("netns-pki")
    ca = pki.make_ca("netns test CA")
    now = datetime.now(UTC)
    names = [SERVER_IP, "198.19.2.2", "fd00:ad:2::2",
             *(f"filler-{n}.netns.invalid" for n in range(60))]
    leaf = pki.make_leaf(names, ca, now - timedelta(days=1), now + timedelta(days=30))
    paths = work / "ca.pem", work / "server.pem", work / "server.key"
    for path, data in zip(paths, (ca.cert_pem, leaf.cert_pem, leaf.key_pem), strict=True):
        path.write_bytes(data)
    return paths


def check(ns: str, url: str, ca: Path, timeout: float = 1.5) -> dict[str, Any]:
    """`check --json` inside a namespace; the stages by name."""
    done = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "assure_doctor", "check", "--url",
         url, "--no-ping", "--no-proxy", "--json", "--timeout", str(timeout), "--ca-bundle",
         str(ca)], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent)
    assert "Traceback" not in done.stderr, done.stderr
    return {stage["name"]: stage for stage in json.loads(done.stdout)["stages"]}


def two_hosts(lab: netns.Lab, pem: tuple[Path, Path, Path]) -> str:
    """A client namespace and a server namespace on one link; returns the client's."""
    client, server = lab.namespace("c"), lab.namespace("s")
    lab.link(client, "198.18.0.1/24", server, f"{SERVER_IP}/24")
    lab.tls_server(server, SERVER_IP, 443, pem[1], pem[2])
    return client


def firewall(lab: netns.Lab, rule: list[str]) -> None:
    netns.sh("iptables", "-A", "INPUT", "-p", "tcp", "--dport", "443", *rule,
             ns=lab.namespaces[1])


def test_a_healthy_link_passes(pem: tuple[Path, Path, Path]) -> None:
    netns.require()
    with netns.lab() as lab:
        stages = check(two_hosts(lab, pem), f"https://{SERVER_IP}/v1/ping", pem[0])
    assert stages["tcp"]["status"] == "pass" and stages["tls"]["status"] == "pass", stages


def test_firewall_drop_is_a_connect_timeout_blamed_on_the_firewall(
        pem: tuple[Path, Path, Path]) -> None:
    netns.require("iptables")
    with netns.lab() as lab:
        client = two_hosts(lab, pem)
        firewall(lab, ["-j", "DROP"])
        stages = check(client, f"https://{SERVER_IP}/v1/ping", pem[0])
    tcp = stages["tcp"]
    assert tcp["condition"] == "connect_timeout", tcp
    assert tcp["evidence"]["other_port_answered"] is True  # port 80 sent a reset
    assert tcp["causes"][0]["id"] == "firewall"


def test_firewall_reject_is_a_refused_connection(pem: tuple[Path, Path, Path]) -> None:
    netns.require("iptables")
    with netns.lab() as lab:
        client = two_hosts(lab, pem)
        firewall(lab, ["-j", "REJECT", "--reject-with", "tcp-reset"])
        stages = check(client, f"https://{SERVER_IP}/v1/ping", pem[0])
    tcp = stages["tcp"]
    assert tcp["condition"] == "connect_failed", tcp
    assert tcp["evidence"]["attempts"][0]["outcome"] == "refused"
    assert tcp["causes"][0]["id"] == "firewall"  # port 443 is the API's: not a typo


def test_no_route_is_a_routing_problem(pem: tuple[Path, Path, Path]) -> None:
    netns.require()
    with netns.lab() as lab:
        client = two_hosts(lab, pem)
        netns.sh("ip", "route", "add", "unreachable", "198.19.0.0/16", ns=client)
        stages = check(client, "https://198.19.7.7/v1/ping", pem[0])
    tcp = stages["tcp"]
    assert tcp["condition"] == "connect_failed", tcp
    assert tcp["evidence"]["attempts"][0]["outcome"] == "unreachable"
    assert tcp["causes"][0]["id"] == "routing"


def mtu_lab(lab: netns.Lab, pem: tuple[Path, Path, Path], drop_icmp: bool) -> str:
    """client -- router -- server, the router's link to the client limited to MTU 1000.

    With the router's ICMP "fragmentation needed" dropped, the server never learns the path
    MTU: its full-size packets vanish (a black hole). Returns the client namespace.
    """
    client, router, server = lab.namespace("c"), lab.namespace("r"), lab.namespace("s")
    lab.link(client, "198.19.1.1/24", router, "198.19.1.254/24", right_mtu=1000)
    lab.link(router, "198.19.2.254/24", server, "198.19.2.2/24")
    netns.sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=router)
    netns.sh("ip", "route", "add", "default", "via", "198.19.1.254", ns=client)
    netns.sh("ip", "route", "add", "default", "via", "198.19.2.254", ns=server)
    if drop_icmp:
        netns.sh("iptables", "-A", "OUTPUT", "-p", "icmp", "--icmp-type",
                 "fragmentation-needed", "-j", "DROP", ns=router)
    lab.tls_server(server, "198.19.2.2", 443, pem[1], pem[2])
    return client


def test_mtu_black_hole_is_told_apart_by_small_segments(pem: tuple[Path, Path, Path]) -> None:
    netns.require("iptables", "sysctl")
    with netns.lab() as lab:
        stages = check(mtu_lab(lab, pem, drop_icmp=True), "https://198.19.2.2/v1/ping", pem[0],
                       timeout=2.0)
    tls = stages["tls"]
    assert tls["condition"] == "tls_handshake_failed", tls
    assert tls["evidence"]["small_mss_retry"] == "completed"
    assert tls["causes"][0]["id"] == "routing"
    assert "MSS" in tls["causes"][0]["advice"] and "fragmentation needed" in tls["causes"][0][
        "advice"]


def test_the_same_path_with_icmp_passing_works(pem: tuple[Path, Path, Path]) -> None:
    """The control: path MTU discovery works when ICMP gets through."""
    netns.require("iptables", "sysctl")
    with netns.lab() as lab:
        stages = check(mtu_lab(lab, pem, drop_icmp=False), "https://198.19.2.2/v1/ping",
                       pem[0], timeout=2.0)
    assert stages["tls"]["status"] == "pass", stages["tls"]


def test_ipv6_mtu_black_hole_is_told_apart_too(pem: tuple[Path, Path, Path]) -> None:
    """The same over IPv6 (fd00::/8): a 1280-byte link, ICMPv6 "packet too big" dropped."""
    netns.require("ip6tables", "sysctl")
    with netns.lab() as lab:
        client, router, server = lab.namespace("c"), lab.namespace("r"), lab.namespace("s")
        lab.link(client, "fd00:ad:1::1/64", router, "fd00:ad:1::fe/64", right_mtu=1280)
        lab.link(router, "fd00:ad:2::fe/64", server, "fd00:ad:2::2/64")
        netns.sh("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", ns=router)
        netns.sh("ip", "-6", "route", "add", "default", "via", "fd00:ad:1::fe", ns=client)
        netns.sh("ip", "-6", "route", "add", "default", "via", "fd00:ad:2::fe", ns=server)
        netns.sh("ip6tables", "-A", "OUTPUT", "-p", "icmpv6", "--icmpv6-type", "packet-too-big",
                 "-j", "DROP", ns=router)
        lab.tls_server(server, "fd00:ad:2::2", 443, pem[1], pem[2])
        lab.wait_reachable(client, "fd00:ad:2::2", 443)
        stages = check(client, "https://[fd00:ad:2::2]/v1/ping", pem[0], timeout=2.0)
    tls = stages["tls"]
    assert tls["condition"] == "tls_handshake_failed", tls
    assert tls["evidence"]["small_mss_retry"] == "completed"
    assert tls["causes"][0]["id"] == "routing"


# --- where on the path: a TCP traceroute after a timeout or a reject ---------------------------
@pytest.fixture(scope="module")
def chain_pem(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A CA and a certificate for the three-router chain's server (198.18.4.2)."""
    work = tmp_path_factory.mktemp("chain-pki")
    ca = pki.make_ca("netns chain CA")
    now = datetime.now(UTC)
    leaf = pki.make_leaf(["198.18.4.2"], ca, now - timedelta(days=1), now + timedelta(days=30))
    paths = work / "ca.pem", work / "server.pem", work / "server.key"
    for path, data in zip(paths, (ca.cert_pem, leaf.cert_pem, leaf.key_pem), strict=True):
        path.write_bytes(data)
    return paths


def test_a_drop_at_hop_2_is_located_and_its_owner_named(
        chain_pem: tuple[Path, Path, Path]) -> None:
    netns.require("iptables", "sysctl")
    with netns.lab() as lab:
        chain = netns.Chain(lab)
        lab.tls_server(chain.server, chain.address(4), 443, chain_pem[1], chain_pem[2])
        lab.wait_reachable(chain.client, chain.address(4), 443)
        netns.sh("iptables", "-A", "FORWARD", "-p", "tcp", "--dport", "443", "-j", "DROP",
                 ns=chain.routers[1])
        stages = check(chain.client, f"https://{chain.address(4)}/v1/ping", chain_pem[0])
    tcp = stages["tcp"]
    assert tcp["condition"] == "connect_timeout", tcp
    path = tcp["evidence"]["path"]
    assert path["ended"] == "silent" and path["last_answered"]["address"] == "198.18.2.2"
    assert [hop["address"] for hop in path["hops"][:2]] == ["198.18.1.2", "198.18.2.2"]
    first = tcp["causes"][0]
    assert first["id"] == "firewall"  # the server answers on port 80: only 443 is dropped
    assert "dropped after hop 2 (198.18.2.2" in first["advice"]
    assert "network team" in first["advice"]


def test_a_reject_at_the_server_is_a_firewall_whatever_the_socket_said(
        chain_pem: tuple[Path, Path, Path]) -> None:
    netns.require("iptables", "sysctl")
    with netns.lab() as lab:
        chain = netns.Chain(lab)
        lab.tls_server(chain.server, chain.address(4), 443, chain_pem[1], chain_pem[2])
        lab.wait_reachable(chain.client, chain.address(4), 443)
        netns.sh("iptables", "-A", "INPUT", "-p", "tcp", "--dport", "443", "-j", "REJECT",
                 "--reject-with", "icmp-admin-prohibited", ns=chain.server)
        stages = check(chain.client, f"https://{chain.address(4)}/v1/ping", chain_pem[0])
    tcp = stages["tcp"]
    assert tcp["condition"] == "connect_failed", tcp
    assert tcp["evidence"]["attempts"][0]["outcome"] == "unreachable"  # what the socket said
    path = tcp["evidence"]["path"]
    assert path["ended"] == "rejected" and path["at_hop"] == 4
    assert tcp["causes"][0]["id"] == "firewall"
    assert "administratively prohibited" in tcp["causes"][0]["advice"]


def test_a_healthy_check_sends_no_trace(chain_pem: tuple[Path, Path, Path]) -> None:
    netns.require("iptables", "sysctl")
    with netns.lab() as lab:
        chain = netns.Chain(lab)
        lab.tls_server(chain.server, chain.address(4), 443, chain_pem[1], chain_pem[2])
        lab.wait_reachable(chain.client, chain.address(4), 443)
        # Count the SYNs that reach the server with a TTL a router would expire.
        netns.sh("iptables", "-A", "INPUT", "-p", "tcp", "--syn", "-m", "ttl", "--ttl-lt", "60",
                 ns=chain.server)
        stages = check(chain.client, f"https://{chain.address(4)}/v1/ping", chain_pem[0])
        counters = netns.sh("iptables", "-nvxL", "INPUT", ns=chain.server)
    assert stages["tcp"]["status"] == "pass" and "path" not in stages["tcp"]["evidence"]
    low_ttl_syns = int(counters.splitlines()[2].split()[0])
    assert low_ttl_syns == 0, counters
