"""IPv4 and IPv6 on loopback: Happy Eyeballs, a family that fails while the other works,
-4 / -6, and the cap on addresses tried. A real UDP DNS server answers; real sockets listen."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from assure_doctor.engine import run_check
from assure_doctor.kinds import CauseId, Condition, ConnectKind, Family
from assure_doctor.model import Report, Status
from assure_doctor.options import CheckOptions
from assure_doctor.probes import registry, tcp
from assure_doctor.sandbox import dnsserver
from assure_doctor.target import from_url, parse_resolver
from tests.conftest import run_cli
from tests.waiting import until

HOST = "api.family.test"


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback (::1) here")


@pytest.fixture(autouse=True)
def dns_and_tcp_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These listeners speak no TLS: the later stages would only wait for their timeouts."""
    monkeypatch.setattr(registry, "PROBES", registry.PROBES[:2])


@contextlib.contextmanager
def sockets() -> Iterator[list[socket.socket]]:
    held: list[socket.socket] = []
    try:
        yield held
    finally:
        for sock in held:
            sock.close()


def listener(held: list[socket.socket], family: socket.AddressFamily, address: str,
             port: int, backlog: int | None = 8) -> int:
    """A socket bound to address:port: listening (backlog), or only bound (None: refuses)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    if backlog is not None:
        sock.listen(backlog)
    sock.setblocking(False)
    held.append(sock)
    return int(sock.getsockname()[1])


def blackhole(held: list[socket.socket], family: socket.AddressFamily, address: str,
              port: int) -> None:
    """Backlog 0 and one connection never accepted fill the queue: later SYNs are dropped."""
    listener(held, family, address, port, backlog=0)
    filler = socket.create_connection((address, port))
    held.append(filler)


def accepted(held: list[socket.socket]) -> int:
    count = 0
    for sock in held:
        while True:
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, OSError):
                break
            conn.close()
            count += 1
    return count


@contextlib.asynccontextmanager
async def dns(ipv4: tuple[str, ...], ipv6: tuple[str, ...] = ()) -> AsyncIterator[str]:
    transport, _ = await dnsserver.start(dnsserver.Zone(HOST, "answer", ipv4, ipv6))
    try:
        yield f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
    finally:
        transport.close()


async def check(resolver: str, port: int, timeout: float = 5.0,
                family: Family | None = None) -> Report:
    options = CheckOptions(timeout=timeout, resolvers=(parse_resolver(resolver),),
                           no_ping=True, family=family)
    return await run_check(from_url(f"https://{HOST}:{port}/v1/ping"), options, None)


def tcp_stage(report: Report) -> tuple[Status, str, Condition | None, list[CauseId]]:
    stage = report.stage("tcp")
    assert stage is not None
    return stage.status, stage.summary, stage.condition, [c.id for c in stage.causes]


@needs_ipv6
def test_ipv6_refused_while_ipv4_works_is_a_warning_naming_ipv6() -> None:
    async def main() -> None:
        with sockets() as held:
            port = listener(held, socket.AF_INET, "127.0.0.1", 0)
            listener(held, socket.AF_INET6, "::1", port, backlog=None)  # bound: refuses
            async with dns(("127.0.0.1",), ("::1",)) as resolver:
                report = await check(resolver, port)
        status, summary, condition, causes = tcp_stage(report)
        assert status is Status.WARN and condition is Condition.CONNECT_FAILED
        assert summary.startswith(f"IPv6 to {HOST} was refused") and "IPv4 works" in summary
        assert causes[0] is CauseId.ROUTING
        stage = report.stage("tcp")
        assert stage is not None and stage.evidence["address"] == "127.0.0.1"
        assert stage.evidence["failed_family"] == "IPv6"
        routing = stage.causes[0].advice
        assert "IPv6" in routing and "IPv4 works" in routing and "waits for its timeout" in routing

    asyncio.run(main())


@needs_ipv6
@pytest.mark.slow
def test_a_silent_ipv6_does_not_hold_up_ipv4_and_is_still_reported() -> None:
    async def main() -> None:
        with sockets() as held:
            port = listener(held, socket.AF_INET, "127.0.0.1", 0)
            blackhole(held, socket.AF_INET6, "::1", port)
            async with dns(("127.0.0.1",), ("::1",)) as resolver:
                report = await check(resolver, port, timeout=6.0)
        status, summary, condition, causes = tcp_stage(report)
        stage = report.stage("tcp")
        assert stage is not None and stage.duration_ms < 3000, (
            "waited for the dead IPv6 address's whole timeout")
        assert status is Status.WARN and condition is Condition.CONNECT_TIMEOUT
        assert summary.startswith(f"IPv6 to {HOST} timed out") and "IPv4 works" in summary
        assert causes[0] is CauseId.ROUTING
        outcomes = {a["address"]: a["outcome"] for a in stage.evidence["attempts"]}
        assert outcomes == {"127.0.0.1": "connected", "::1": "timeout"}

    asyncio.run(main())


@needs_ipv6
@pytest.mark.slow
def test_happy_eyeballs_starts_the_other_family_without_waiting_for_a_timeout() -> None:
    """IPv6 preferred and silent: IPv4 starts after the stagger and wins well within the
    timeout; the IPv6 attempt is cut after the grace, and recorded."""
    async def main() -> None:
        with sockets() as held:
            port = listener(held, socket.AF_INET, "127.0.0.1", 0)
            blackhole(held, socket.AF_INET6, "::1", port)
            race = tcp._Race(tcp.happy_order(["::1", "127.0.0.1"]), port, 10.0)
            start = time.monotonic()
            attempts = await race.run()
            took = time.monotonic() - start
            race.abort_all()
        assert race.winner is not None and race.winner.address == "127.0.0.1"
        # IPv4 started after the stagger, not after IPv6's 10 s timeout; IPv6 got the grace.
        assert tcp.STAGGER + tcp.LOSER_GRACE - 0.1 <= took < tcp.STAGGER + tcp.LOSER_GRACE + 1
        assert [(a.address, a.kind) for a in attempts] == [("::1", ConnectKind.TIMEOUT),
                                                            ("127.0.0.1", None)]

    asyncio.run(main())


def test_happy_order_interleaves_and_caps_each_family() -> None:
    v4 = [f"192.0.2.{i}" for i in range(1, 8)]
    v6 = [f"2001:db8::{i}" for i in range(1, 8)]
    order = tcp.happy_order(v4 + v6)
    assert order[:4] == ["192.0.2.1", "2001:db8::1", "192.0.2.2", "2001:db8::2"]
    assert len(order) == 2 * tcp.PER_FAMILY
    assert tcp.happy_order(v6 + v4)[0] == "2001:db8::1"


@needs_ipv6
@pytest.mark.parametrize(("flag", "family", "address"), [("-4", Family.IPV4, "127.0.0.1"),
                                                         ("-6", Family.IPV6, "::1")])
def test_one_family_only(flag: str, family: Family, address: str) -> None:
    async def main() -> None:
        with sockets() as held:
            port = listener(held, socket.AF_INET, "127.0.0.1", 0)
            listener(held, socket.AF_INET6, "::1", port)
            transport, server = await dnsserver.start(
                dnsserver.Zone(HOST, "answer", ("127.0.0.1",), ("::1",)))
            resolver = f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
            report = await check(resolver, port, family=family)
            transport.close()
        dns_stage, stage = report.stage("dns"), report.stage("tcp")
        assert dns_stage is not None and dns_stage.evidence["addresses"] == [address]
        assert {rdtype for _, rdtype in server.queries} == {"A" if flag == "-4" else "AAAA"}
        assert stage is not None and stage.status is Status.PASS
        assert [a["address"] for a in stage.evidence["attempts"]] == [address]

    asyncio.run(main())


def test_the_flags_reach_the_options() -> None:
    from assure_doctor import cli

    parser = cli.build_parser()
    for flag, family in (("-4", Family.IPV4), ("-6", Family.IPV6)):
        args = parser.parse_args(["check", "--stack", "uk2", "--no-ping", flag])
        assert cli.inputs(args)[1].family is family
    both = run_cli("check", "--stack", "uk2", "-4", "-6")
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_five_hundred_addresses_are_reported_but_only_a_few_connected_to() -> None:
    addresses = tuple(f"127.0.{i // 250}.{i % 250 + 1}" for i in range(500))

    async def main() -> None:
        with sockets() as held:
            port = listener(held, socket.AF_INET, addresses[0], 0)
            for address in addresses[1:]:
                listener(held, socket.AF_INET, address, port)
            async with dns(addresses) as resolver:
                report = await check(resolver, port, timeout=2.0)
            connections = 0

            def landed() -> bool:  # the connects it made, as they reach the listen queues
                nonlocal connections
                connections += accepted(held)
                return connections >= tcp.PER_FAMILY

            await until(landed, 5, "the check's connections to reach the listeners")
            connections += accepted(held)  # and no more than that
        dns_stage, stage = report.stage("dns"), report.stage("tcp")
        assert dns_stage is not None and stage is not None
        assert sorted(dns_stage.evidence["addresses"]) == sorted(addresses)
        assert len(stage.evidence["attempts"]) == tcp.PER_FAMILY
        assert stage.evidence["not_tried"] == 500 - tcp.PER_FAMILY
        assert connections == tcp.PER_FAMILY
        for result in report.stages:
            assert len(result.summary) <= 300, result.summary
            assert all(len(c.advice) <= 1000 for c in result.causes)

    asyncio.run(main())
