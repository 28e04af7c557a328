"""The tcp stage against real sockets on loopback, in-process: a connection handed to the next
stage, a refusal, silence told apart by the side probe on another port, one address of a
family failing while another works, the stagger and the grace of Happy Eyeballs, addresses
of the wrong family, and a proxy's connection failing. 127.0.0.0/8 gives as many IPv4
addresses as a test needs; silence is a listener whose queue is full (SYNs dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import socket
import time
from collections.abc import Iterator

import pytest

from assure_doctor.kinds import Condition, ConnectKind, Family, ProxyStep
from assure_doctor.model import Outcome, Status
from assure_doctor.options import CheckOptions
from assure_doctor.probes import tcp
from assure_doctor.probes.results import Attempt, DnsFound, TcpFound
from assure_doctor.probes.stage import Context
from assure_doctor.proxyconfig import load as load_proxy
from assure_doctor.target import from_url
from tests.waiting import until

HOST = "api.uk2.sheassure.net"


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) here")


@contextlib.contextmanager
def sockets() -> Iterator[list[socket.socket]]:
    held: list[socket.socket] = []
    try:
        yield held
    finally:
        for sock in held:
            sock.close()


def listening(held: list[socket.socket], address: str, port: int = 0) -> int:
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(8)
    held.append(sock)
    return int(sock.getsockname()[1])


def refusing(held: list[socket.socket], address: str, port: int = 0) -> int:
    """Bound, not listening: every SYN gets a reset."""
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    held.append(sock)
    return int(sock.getsockname()[1])


def silent(held: list[socket.socket], address: str, port: int = 0) -> int:
    """A backlog of 0 filled by one connection never accepted: later SYNs are dropped."""
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(0)
    held.append(sock)
    port = int(sock.getsockname()[1])
    held.append(socket.create_connection((address, port)))
    return port


def connect(addresses: tuple[str, ...], port: int, timeout: float = 2.0,
            url: str | None = None, **options: object) -> tuple[Outcome, Context, float]:
    """The tcp stage, as if DNS had answered `addresses`; its outcome, context and duration.
    The connection it hands over is closed after."""
    made = CheckOptions(timeout=timeout, proxy=load_proxy(None, True, {}))
    for name, value in options.items():
        made = dataclasses.replace(made, **{name: value})  # type: ignore[arg-type]
    ctx = Context(from_url(url or f"https://{HOST}:{port}/v1/ping"), made, None)
    ctx.outcomes["dns"] = Outcome(Status.PASS, "resolved", DnsFound(addresses))

    async def go() -> tuple[Outcome, float]:
        start = time.monotonic()
        try:
            return await tcp.run(ctx), time.monotonic() - start
        finally:
            ctx.close_streams()

    outcome, took = asyncio.run(go())
    return outcome, ctx, took


def found(outcome: Outcome) -> TcpFound:
    assert isinstance(outcome.found, TcpFound)
    return outcome.found


# --- connected -----------------------------------------------------------------------------------
def test_a_connection_is_made_and_handed_to_the_next_stage(
        caplog: pytest.LogCaptureFixture) -> None:
    with sockets() as held, caplog.at_level(logging.INFO, "assure_doctor.tcp"):
        port = listening(held, "127.0.0.1")

        async def go() -> tuple[Outcome, bool]:
            made = CheckOptions(timeout=2.0, proxy=load_proxy(None, True, {}))
            ctx = Context(from_url(f"https://{HOST}:{port}/v1/ping"), made, None)
            ctx.outcomes["dns"] = Outcome(Status.PASS, "resolved", DnsFound(("127.0.0.1",)))
            try:
                outcome = await tcp.run(ctx)
                handed = found(outcome).connection
                stream = handed.take() if handed else None
                return outcome, stream is not None and not stream[1].is_closing()
            finally:
                ctx.close_streams()

        outcome, live = asyncio.run(go())
    tcp_found = found(outcome)
    [attempt] = tcp_found.attempts
    assert live  # an open connection for the tls stage
    assert outcome.status is Status.PASS and outcome.condition is None
    assert outcome.summary == f"connected to 127.0.0.1:{port} in {attempt.ms:.0f} ms"
    assert (tcp_found.address, tcp_found.port) == ("127.0.0.1", port)
    assert (attempt.address, attempt.port, attempt.kind, attempt.error) == (
        "127.0.0.1", port, None, None)
    assert attempt.stream is None  # the evidence holds no stream
    assert tcp_found.not_tried is None and tcp_found.other_port_answered is None
    assert tcp_found.failed_family is None
    said = [r for r in caplog.records if r.getMessage().startswith(f"127.0.0.1 port {port}: ")]
    assert [r.getMessage() for r in said] == [
        f"127.0.0.1 port {port}: connected in {attempt.ms:.1f} ms"]
    assert said[0].name == "assure_doctor.tcp"


def test_cancelled_it_leaves_no_connection_open() -> None:
    """One address connected, the other still silent: the check is cancelled (its deadline),
    and the connection made is closed, not left to the next stage."""
    with sockets() as held:
        port = listening(held, "127.0.0.71")
        silent(held, "127.0.0.72", port)
        server = held[0]

        async def go() -> None:
            made = CheckOptions(timeout=10.0, proxy=load_proxy(None, True, {}))
            ctx = Context(from_url(f"https://{HOST}:{port}/v1/ping"), made, None)
            ctx.outcomes["dns"] = Outcome(Status.PASS, "resolved",
                                          DnsFound(("127.0.0.71", "127.0.0.72")))
            task = asyncio.create_task(tcp.run(ctx))
            conn = await until(lambda: accept(server), 5, "the first connection")
            assert conn is not None
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            conn.settimeout(5)
            try:
                assert conn.recv(1) == b""  # closed by us
            except ConnectionResetError:
                pass  # aborted: closed too
            finally:
                conn.close()

        asyncio.run(go())


def accept(server: socket.socket) -> socket.socket | None:
    server.setblocking(False)
    try:
        return server.accept()[0]
    except BlockingIOError:
        return None


def test_without_an_answer_from_dns_the_name_itself_is_dialled() -> None:
    with sockets() as held:
        port = listening(held, "127.0.0.1")
        outcome, _, _ = connect((), port, url=f"https://127.0.0.1:{port}/v1/ping")
    assert outcome.status is Status.PASS and found(outcome).address == "127.0.0.1"


# --- refused and silent --------------------------------------------------------------------------
def test_a_refusal_is_a_connect_failure_naming_the_address() -> None:
    with sockets() as held:
        port = refusing(held, "127.0.0.1")
        outcome, _, took = connect(("127.0.0.1",), port, timeout=3.0)
    tcp_found, facts = found(outcome), outcome.facts
    [attempt] = tcp_found.attempts
    assert outcome.status is Status.FAIL and outcome.condition is Condition.CONNECT_FAILED
    assert attempt.kind is ConnectKind.REFUSED and attempt.error
    assert outcome.summary == f"cannot connect: 127.0.0.1:{port} {attempt.error}"
    assert facts == {"kind": ConnectKind.REFUSED, "default_port": False, "host_answers": None,
                     "address": "127.0.0.1", "error": attempt.error}
    assert tcp_found.other_port_answered is None  # nothing was slow: no side probe
    assert took < 1.0


def test_the_default_port_is_said_to_be_it() -> None:
    outcome, _, _ = connect(("127.0.0.1",), 443, timeout=3.0)  # nothing listens on 443 here
    assert outcome.facts["default_port"] is True
    assert outcome.facts["kind"] is ConnectKind.REFUSED


def test_silence_answered_on_another_port_is_a_filtered_port() -> None:
    """The API's port drops the SYNs; port 80 of the same host refuses: the host is there."""
    with sockets() as held:
        port = silent(held, "127.0.0.1")
        outcome, _, took = connect(("127.0.0.1",), port, timeout=1.0)
    tcp_found, facts = found(outcome), outcome.facts
    assert outcome.condition is Condition.CONNECT_TIMEOUT
    assert facts["kind"] is ConnectKind.TIMEOUT and facts["host_answers"] is True
    assert tcp_found.other_port_answered is True
    assert took < 1.8  # the side probe ran beside the attempt, within its timeout


# Port 80 of an address of this process's own (two test processes may run at once).
MINE = f"127.{1 + os.getpid() % 250}.{os.getpid() // 250 % 256}.80"


def can_bind_port_80() -> bool:
    try:
        with socket.socket() as sock:
            sock.bind((MINE, 80))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not can_bind_port_80(), reason="binding port 80 needs root here")
@pytest.mark.parametrize("api_port", [0, 80])
def test_silence_on_port_80_too_is_a_host_that_does_not_answer(api_port: int) -> None:
    """Side probe on port 80 (on 443 when the API is on 80), dropped too: unreachable."""
    with sockets() as held:
        port = silent(held, MINE, api_port)
        silent(held, MINE, 443 if api_port == 80 else 80)
        outcome, _, _ = connect((MINE,), port, timeout=1.0)
    assert outcome.facts["host_answers"] is False
    assert found(outcome).other_port_answered is False


@pytest.mark.skipif(not can_bind_port_80(), reason="binding port 80 needs root here")
def test_a_slow_address_beside_a_winner_is_still_probed_on_its_other_port() -> None:
    """The silent address's port 80 is silent too: that answer is waited for (until the
    timeout), though another address connected."""
    winner = MINE.rsplit(".", 1)[0] + ".81"
    with sockets() as held:
        port = silent(held, MINE)
        silent(held, MINE, 80)
        listening(held, winner, port)
        outcome, _, took = connect((MINE, winner), port, timeout=3.0)
    assert outcome.status is Status.WARN and found(outcome).other_port_answered is False
    assert took > 2.5


@pytest.mark.skipif(not can_bind_port_80(), reason="binding port 80 needs root here")
def test_a_side_port_that_connects_is_a_host_that_answers(
        caplog: pytest.LogCaptureFixture) -> None:
    with sockets() as held:
        port = silent(held, MINE)
        listening(held, MINE, 80)
        with caplog.at_level(logging.INFO, "assure_doctor.tcp"):
            outcome, _, _ = connect((MINE,), port, timeout=1.0)
    assert outcome.facts["host_answers"] is True
    [said] = [r for r in caplog.records if r.getMessage().startswith("Side probe ")]
    assert said.getMessage() == f"Side probe {MINE} port 80: connected"
    assert said.name == "assure_doctor.tcp"


# --- several addresses ---------------------------------------------------------------------------
def test_one_address_refusing_while_another_connects_is_a_warning() -> None:
    with sockets() as held:
        port = refusing(held, "127.0.0.21")
        listening(held, "127.0.0.22", port)
        outcome, _, _ = connect(("127.0.0.21", "127.0.0.22"), port, timeout=3.0)
    tcp_found, facts = found(outcome), outcome.facts
    bad, good = tcp_found.attempts  # in the resolver's order
    assert (bad.address, bad.kind, good.address, good.kind) == (
        "127.0.0.21", ConnectKind.REFUSED, "127.0.0.22", None)
    assert outcome.status is Status.WARN and outcome.condition is Condition.CONNECT_FAILED
    assert outcome.summary == (f"connected to 127.0.0.22:{port} in {good.ms:.0f} ms, but "
                               f"127.0.0.21:{port} {bad.error}")
    assert tcp_found.address == "127.0.0.22" and tcp_found.failed_family is None
    assert facts["address"] == "127.0.0.21" and facts["kind"] is ConnectKind.REFUSED


@needs_ipv6
@pytest.mark.parametrize("broken", [Family.IPV6, Family.IPV4])
def test_a_family_whose_every_address_fails_is_named(broken: Family) -> None:
    with sockets() as held:
        v4 = "127.0.0.1"
        if broken is Family.IPV6:
            port = listening(held, v4)
            refusing(held, "::1", port)
        else:
            port = listening(held, "::1")
            refusing(held, v4, port)
        outcome, _, _ = connect((v4, "::1"), port, timeout=3.0)
    tcp_found, facts = found(outcome), outcome.facts
    failed = {a.address: a for a in tcp_found.attempts if not a.ok}
    [(address, attempt)] = failed.items()
    winner = next(a for a in tcp_found.attempts if a.ok)
    where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    works = (f"connected to {'[::1]' if ':' in winner.address else winner.address}:{port} in "
             f"{winner.ms:.0f} ms")
    assert outcome.status is Status.WARN and outcome.condition is Condition.CONNECT_FAILED
    assert outcome.summary == (f"{broken} to {HOST} was refused ({where} {attempt.error}); "
                               f"{broken.other} works: {works}")
    assert facts["failed_family"] is broken and facts["working_family"] is broken.other
    assert facts["address"] == address and facts["kind"] is ConnectKind.REFUSED
    assert tcp_found.failed_family is broken


@needs_ipv6
def test_the_failed_familys_worst_address_is_named_not_the_other_familys() -> None:
    """IPv4: one refuses, one connects; IPv6 is silent: IPv6 failed, and is what is named."""
    with sockets() as held:
        port = refusing(held, "127.0.0.83")
        listening(held, "127.0.0.84", port)
        silent(held, "::1", port)
        outcome, _, _ = connect(("127.0.0.83", "127.0.0.84", "::1"), port, timeout=5.0)
    facts = outcome.facts
    assert facts["failed_family"] is Family.IPV6
    assert (facts["address"], facts["kind"]) == ("::1", ConnectKind.TIMEOUT)
    assert facts["error"] == next(a.error for a in found(outcome).attempts if a.address == "::1")
    assert outcome.condition is Condition.CONNECT_TIMEOUT
    assert outcome.summary.startswith(f"IPv6 to {HOST} timed out (")


@needs_ipv6
def test_a_family_with_one_address_working_has_not_failed() -> None:
    with sockets() as held:
        port = refusing(held, "127.0.0.87")
        listening(held, "127.0.0.88", port)
        listening(held, "::1", port)
        outcome, _, _ = connect(("127.0.0.87", "127.0.0.88", "::1"), port, timeout=5.0)
    assert outcome.status is Status.WARN and "failed_family" not in outcome.facts
    assert found(outcome).failed_family is None
    assert ", but 127.0.0.87:" in outcome.summary


@needs_ipv6
def test_of_several_failed_addresses_of_a_family_the_most_telling_is_named() -> None:
    with sockets() as held:
        port = listening(held, "::1")
        refusing(held, "127.0.0.85", port)
        silent(held, "127.0.0.86", port)
        outcome, _, _ = connect(("127.0.0.86", "127.0.0.85", "::1"), port, timeout=5.0)
    assert outcome.facts["failed_family"] is Family.IPV4
    assert (outcome.facts["address"], outcome.facts["kind"]) == ("127.0.0.85",
                                                                 ConnectKind.REFUSED)


@needs_ipv6
def test_a_family_failing_otherwise_is_said_to_have_failed() -> None:
    """A link-local IPv6 address without its interface: the kernel refuses the connect
    itself (EINVAL), before any packet."""
    with sockets() as held:
        port = listening(held, "127.0.0.1")
        outcome, _, _ = connect(("fe80::1", "127.0.0.1"), port, timeout=3.0)
    assert outcome.facts["kind"] is ConnectKind.ERROR
    assert outcome.summary.startswith(f"IPv6 to {HOST} failed (")


def test_many_failures_make_one_short_line() -> None:
    addresses = tuple(f"127.0.0.{n}" for n in range(31, 36))
    with sockets() as held:
        port = refusing(held, addresses[0])
        for address in addresses[1:]:
            refusing(held, address, port)
        outcome, _, _ = connect(addresses, port, timeout=3.0)
    assert re.fullmatch(rf"cannot connect: (127\.0\.0\.3\d:{port} [^;]+; ){{3}}and 1 more",
                        outcome.summary), outcome.summary
    assert found(outcome).not_tried == 1  # five IPv4 addresses: four are tried


def test_exactly_three_failures_are_all_named() -> None:
    addresses = tuple(f"127.0.0.{n}" for n in range(41, 44))
    with sockets() as held:
        port = refusing(held, addresses[0])
        for address in addresses[1:]:
            refusing(held, address, port)
        outcome, _, _ = connect(addresses, port, timeout=3.0)
    assert "more" not in outcome.summary and outcome.summary.count(";") == 2


def test_the_next_address_starts_after_the_stagger_and_the_loser_gets_a_grace() -> None:
    """The first address is silent: the second starts 0.25 s later and connects; the first
    then gets one more second, not the whole timeout."""
    with sockets() as held:
        port = silent(held, "127.0.0.51")
        listening(held, "127.0.0.52", port)
        outcome, _, took = connect(("127.0.0.51", "127.0.0.52"), port, timeout=10.0)
    slow, fast = found(outcome).attempts
    assert fast.ok and fast.address == "127.0.0.52"
    assert slow.kind is ConnectKind.TIMEOUT
    assert slow.error == (f"no answer in {slow.ms:.0f} ms, while 127.0.0.52 connected in "
                          f"{fast.ms:.0f} ms")
    assert 1.1 < took < 1.9  # 0.25 s of stagger, then 1 s of grace for the silent one
    assert outcome.status is Status.WARN and outcome.condition is Condition.CONNECT_TIMEOUT
    assert found(outcome).other_port_answered is True  # a slow one: the side probe asked


def test_a_failure_starts_the_next_address_at_once() -> None:
    """The stagger is for silence: a refusal is an answer, and the next one starts then (three
    refusals would otherwise cost three staggers, 0.75 s)."""
    with sockets() as held:
        port = refusing(held, "127.0.0.61")
        for address in ("127.0.0.62", "127.0.0.63"):
            refusing(held, address, port)
        listening(held, "127.0.0.64", port)
        outcome, _, took = connect(("127.0.0.61", "127.0.0.62", "127.0.0.63", "127.0.0.64"),
                                   port, timeout=10.0)
    assert found(outcome).attempts[3].ok and took < 0.5


# --- the family asked for ------------------------------------------------------------------------
def test_addresses_of_the_other_family_only_are_no_address_to_connect_to() -> None:
    addresses = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")
    outcome, _, _ = connect(addresses, 9, family=Family.IPV6)
    assert outcome.status is Status.FAIL and outcome.condition is Condition.CONNECT_FAILED
    assert outcome.summary == ("no IPv6 address to connect to: 127.0.0.1, 127.0.0.2, "
                               "127.0.0.3 and 2 more")
    assert outcome.facts == {"kind": ConnectKind.ERROR, "error": "no IPv6 address"}
    assert (found(outcome).address, found(outcome).port) == ("127.0.0.1", 9)


def test_three_addresses_of_the_other_family_are_all_named() -> None:
    outcome, _, _ = connect(("127.0.0.1", "127.0.0.2", "127.0.0.3"), 9, family=Family.IPV6)
    assert outcome.summary == "no IPv6 address to connect to: 127.0.0.1, 127.0.0.2, 127.0.0.3"


def test_the_family_asked_for_is_the_one_connected_to() -> None:
    with sockets() as held:
        port = listening(held, "127.0.0.1")
        outcome, _, _ = connect(("2001:db8::1", "127.0.0.1"), port, family=Family.IPV4)
    assert [a.address for a in found(outcome).attempts] == ["127.0.0.1"]


# --- through a proxy -----------------------------------------------------------------------------
def test_a_proxy_that_refuses_is_the_proxys_failure() -> None:
    with sockets() as held:
        port = refusing(held, "127.0.0.1")
        url = f"http://127.0.0.1:{port}"
        outcome, _, _ = connect(("127.0.0.1",), port, proxy=load_proxy(url, False, {}))
    assert outcome.condition is Condition.PROXY_CONNECT_FAILED
    assert outcome.summary.startswith(f"proxy {url}: cannot connect: 127.0.0.1:{port} ")
    assert outcome.facts["step"] is ProxyStep.TCP and outcome.facts["proxy"] == url
    assert outcome.facts["kind"] is ConnectKind.REFUSED


def test_a_proxy_that_answers_passes_unchanged() -> None:
    with sockets() as held:
        port = listening(held, "127.0.0.1")
        outcome, _, _ = connect(("127.0.0.1",), port,
                                proxy=load_proxy(f"http://127.0.0.1:{port}", False, {}))
    assert outcome.status is Status.PASS and outcome.condition is None
    assert outcome.summary.startswith("connected to 127.0.0.1:")


def test_ipv6_addresses_are_bracketed_with_their_port() -> None:
    assert tcp._where(Attempt("2001:db8::1", 443, 1.0)) == "[2001:db8::1]:443"
    assert tcp._where(Attempt("192.0.2.1", 443, 1.0)) == "192.0.2.1:443"

