"""The TCP traceroute on real sockets: on loopback (any Linux user) and through a chain of
three routers in network namespaces (root), with a firewall dropping or rejecting on the way.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assure_doctor.probes import traceroute
from assure_doctor.probes.hops import Ending, HopKind, Trace
from tests import netns

ROOT = Path(__file__).parent.parent
PORT = 443
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="TCP traceroute is Linux-only")


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def silent_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A loopback port that drops SYNs: its accept queue (backlog 0) is full, and Linux drops
    a SYN for a full queue without answering."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = [socket.create_connection(("127.0.0.1", port), 1)]
    for _ in range(2):  # one more in the SYN queue's stead, whatever the kernel's slack
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    return listener, fillers


@linux_only
def test_a_listening_port_on_loopback_is_reached_at_hop_1() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        result = asyncio.run(traceroute.trace("127.0.0.1", listener.getsockname()[1]))
    assert result.ended is Ending.REACHED and result.reached
    assert [(h.ttl, h.address, h.kind) for h in result.hops] == [(1, "127.0.0.1",
                                                                   HopKind.CONNECTED)]
    assert result.hops[0].rtt_ms is not None and result.hops[0].rtt_ms >= 0


@linux_only
def test_a_closed_port_is_refused_with_a_reset() -> None:
    with socket.create_server(("::1", 0), family=socket.AF_INET6) as listener:
        port = listener.getsockname()[1]
    result = asyncio.run(traceroute.trace("::1", port))  # closed now: the kernel resets
    assert result.ended is Ending.REFUSED and result.end is not None
    assert result.end.address == "::1" and result.evidence()["from"] == "::1"


@pytest.mark.slow
@linux_only
def test_silence_ends_within_the_budget_and_leaves_nothing_open() -> None:
    listener, fillers = silent_listener()
    budget = 1.0
    before = open_fds()

    async def traced() -> tuple[Trace, set[asyncio.Task[Any]]]:
        result = await traceroute.trace("127.0.0.1", listener.getsockname()[1],
                                        budget=budget, per_hop=0.6)
        current = asyncio.current_task()
        return result, {t for t in asyncio.all_tasks() if t is not current}

    try:
        result, tasks = asyncio.run(traced())
    finally:
        for sock in (listener, *fillers):
            sock.close()
    assert result.ended is Ending.SILENT and result.last_responding is None
    assert result.probed == 16  # every TTL was sent within the budget
    assert result.elapsed_ms <= budget * 1000 + 150
    assert not tasks
    assert open_fds() <= before | {str(s.fileno()) for s in (listener, *fillers)}


@linux_only
def test_a_cancelled_trace_closes_its_sockets() -> None:
    listener, fillers = silent_listener()

    async def cancelled() -> bool:
        before = open_fds()
        task = asyncio.create_task(traceroute.trace("127.0.0.1", listener.getsockname()[1]))
        deadline = asyncio.get_running_loop().time() + 2
        while len(open_fds() - before) < 3:  # three probes in flight
            assert asyncio.get_running_loop().time() < deadline, "no probe was sent"
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return not (open_fds() - before)

    try:
        assert asyncio.run(cancelled())
    finally:
        for sock in (listener, *fillers):
            sock.close()


def test_elsewhere_the_trace_is_skipped_saying_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    result = asyncio.run(traceroute.trace("198.18.4.2", PORT))
    assert result.ended is Ending.SKIPPED and not result.hops
    assert result.skipped_reason == "TCP traceroute needs Linux's IP_RECVERR; skipped on win32"
    assert result.evidence()["skipped"] == result.skipped_reason


def test_only_an_ip_address_is_traced() -> None:
    with pytest.raises(ValueError):
        asyncio.run(traceroute.trace("api.example.invalid", PORT))
    with pytest.raises(ValueError):
        asyncio.run(traceroute.trace("127.0.0.1", PORT, max_hops=0))


# ---- through three routers, in network namespaces ------------------------------------

# Runs in the client's namespace: the trace's evidence and wording, and its wall time.
TRACE = """
import asyncio, json, sys, time
from assure_doctor.probes import hops, traceroute
started = time.monotonic()
trace = asyncio.run(traceroute.trace(sys.argv[1], int(sys.argv[2]), budget=float(sys.argv[3])))
print(json.dumps({"evidence": trace.evidence(), "finding": hops.finding(trace),
                  "lines": hops.hop_lines(trace), "seconds": time.monotonic() - started}))
"""


@pytest.fixture(scope="module")
def chain() -> Iterator[netns.Chain]:
    """One chain for the module (building it takes seconds); each test's rules are flushed
    after it."""
    netns.require("iptables", "ip6tables", "sysctl")
    with netns.lab() as lab:
        built = netns.Chain(lab)
        built.listen(PORT)
        yield built


@pytest.fixture
def lab_chain(chain: netns.Chain) -> Iterator[netns.Chain]:
    yield chain
    for ns in chain.nodes:
        for tool in ("iptables", "ip6tables"):
            for table in ("filter", "raw"):
                netns.sh(tool, "-t", table, "-F", ns=ns)


def run_trace(chain: netns.Chain, address: str, budget: float = 3.0,
              as_user: tuple[str, ...] = ()) -> dict[str, Any]:
    """The trace from the client's namespace, printed for the test's log; `as_user` is a
    command prefix that drops root."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(["ip", "netns", "exec", chain.client, *as_user, sys.executable, "-c",
                           TRACE, address, str(PORT), str(budget)], capture_output=True,
                          text=True, timeout=30, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    print(json.dumps(result["evidence"]), result["finding"], *result["lines"], sep="\n")
    return result


@pytest.mark.parametrize("version", [4, 6])
def test_a_healthy_path_is_reached_in_four_hops(lab_chain: netns.Chain, version: int) -> None:
    result = run_trace(lab_chain, lab_chain.address(4, version))
    evidence = result["evidence"]
    assert evidence["ended"] == "reached" and evidence["reached"] is True
    assert [h["address"] for h in evidence["hops"]] == [lab_chain.address(n, version)
                                                        for n in (1, 2, 3, 4)]
    assert [h["kind"] for h in evidence["hops"]] == ["time_exceeded"] * 3 + ["connected"]
    assert evidence["at_hop"] == 4 and evidence["probed"] == 4
    assert evidence["from"] == lab_chain.address(0, version)
    assert result["finding"].startswith("the path is open")


@pytest.mark.parametrize("version", [4, 6])
def test_a_drop_at_the_second_router_ends_the_path_after_it(lab_chain: netns.Chain,
                                                            version: int) -> None:
    """Dropped in r2's FORWARD chain: r2 still answers the SYN whose TTL runs out there (the
    TTL is checked before forwarding), and nothing beyond it answers."""
    tool = "iptables" if version == 4 else "ip6tables"
    netns.sh(tool, "-A", "FORWARD", "-p", "tcp", "--dport", str(PORT), "-j", "DROP",
             ns=lab_chain.routers[1])
    result = run_trace(lab_chain, lab_chain.address(4, version))
    evidence = result["evidence"]
    r2 = lab_chain.address(2, version)
    assert evidence["ended"] == "silent" and evidence["reached"] is False
    assert evidence["last_answered"]["address"] == r2
    assert evidence["silent_from"] == 3 and evidence["probed"] == evidence["max_hops"]
    assert f"dropped after hop 2 ({r2}, on your network)" in result["finding"]
    assert "your network team" in result["finding"]
    assert result["seconds"] <= 3.0 + 0.3  # the budget, and a little for the event loop


def test_an_unprivileged_user_can_trace(lab_chain: netns.Chain) -> None:
    """No raw socket, no capability: the same drop, traced as nobody."""
    netns.require("setpriv")
    netns.sh("iptables", "-A", "FORWARD", "-p", "tcp", "--dport", str(PORT), "-j", "DROP",
             ns=lab_chain.routers[1])
    nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
              "--inh-caps=-all", "--bounding-set=-all")
    result = run_trace(lab_chain, lab_chain.address(4), as_user=nobody)
    assert result["evidence"]["last_answered"]["address"] == lab_chain.address(2)
    assert result["evidence"]["ended"] == "silent"


def test_a_drop_before_routing_silences_the_hop_itself(lab_chain: netns.Chain) -> None:
    """Dropped as it enters r2 (raw PREROUTING, before the TTL is looked at): r2 is silent
    too, and the last to answer is r1, the client's gateway."""
    netns.sh("iptables", "-t", "raw", "-A", "PREROUTING", "-p", "tcp", "--dport", str(PORT),
             "-j", "DROP", ns=lab_chain.routers[1])
    result = run_trace(lab_chain, lab_chain.address(4))
    r1 = lab_chain.address(1)
    assert result["evidence"]["last_answered"]["address"] == r1
    assert result["evidence"]["silent_from"] == 2
    assert f"dropped after hop 1 ({r1}, your gateway)" in result["finding"]


@pytest.mark.parametrize(("version", "reject_with", "ended", "kind"), [
    (4, "tcp-reset", "refused", "refused"),
    (4, "icmp-admin-prohibited", "rejected", "admin_prohibited"),
    (6, "icmp6-adm-prohibited", "rejected", "admin_prohibited"),
])
def test_a_reject_at_the_server_is_reached_and_named(lab_chain: netns.Chain, version: int,
                                                     reject_with: str, ended: str,
                                                     kind: str) -> None:
    tool = "iptables" if version == 4 else "ip6tables"
    netns.sh(tool, "-A", "INPUT", "-p", "tcp", "--dport", str(PORT), "-j", "REJECT",
             "--reject-with", reject_with, ns=lab_chain.server)
    result = run_trace(lab_chain, lab_chain.address(4, version))
    evidence = result["evidence"]
    server = lab_chain.address(4, version)
    assert evidence["ended"] == ended and evidence["reached"] is True
    assert evidence["at_hop"] == 4 and evidence["last_answered"]["address"] == server
    assert evidence["hops"][-1]["kind"] == kind
    assert server in result["finding"]


def test_a_firewall_rejecting_at_a_router_is_named_by_its_hop(lab_chain: netns.Chain) -> None:
    netns.sh("iptables", "-A", "FORWARD", "-p", "tcp", "--dport", str(PORT), "-j", "REJECT",
             "--reject-with", "icmp-admin-prohibited", ns=lab_chain.routers[1])
    result = run_trace(lab_chain, lab_chain.address(4))
    r2 = lab_chain.address(2)
    assert result["evidence"]["ended"] == "rejected" and result["evidence"]["reached"] is False
    assert result["evidence"]["last_answered"]["address"] == r2
    assert f"rejected by a firewall at hop 2 ({r2}, on your network)" in result["finding"]
