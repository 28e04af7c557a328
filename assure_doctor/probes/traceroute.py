"""A TCP traceroute to the API's port, as an unprivileged user on Linux.

Each probe is a non-blocking TCP connect with a small IP TTL (IPv6 hop limit) and
IP_RECVERR on: a router where the TTL runs out answers ICMP time exceeded, which aborts the
connect and leaves the ICMP (type, code, and the router's address) on the socket's error
queue. The destination answers a SYN-ACK (connected), a reset (refused), or an ICMP
unreachable. Probes for rising TTLs overlap, so sixteen hops fit in a few seconds; the trace
stops sending once an answer ended the path (a probe already past the destination connects
too, and is reset at once: the server sees a bare SYN and RST). Other platforms have no
error queue for TCP sockets (raw sockets need privileges): there the trace is skipped, saying
why.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import socket
import struct
import sys
from dataclasses import dataclass, field

from assure_doctor.probes import netclass
from assure_doctor.probes.hops import Hop, HopKind, Trace

# Linux's values (bits/in.h, linux/in6.h, linux/errqueue.h): Python 3.11 names only some.
_IP_RECVERR = 11
_IPV6_RECVERR = 25
_MSG_ERRQUEUE = 0x2000
_SO_EE_ORIGIN_ICMP = 2
_SO_EE_ORIGIN_ICMP6 = 3
_EXTENDED_ERR = struct.Struct("=IBBBBII")  # struct sock_extended_err; the offender follows
_ICMP_TIME_EXCEEDED, _ICMP_UNREACH = 11, 3
_ICMP6_TIME_EXCEEDED, _ICMP6_UNREACH = 3, 1
_ICMP_CODES: dict[int, HopKind] = {
    0: HopKind.NET_UNREACHABLE, 6: HopKind.NET_UNREACHABLE, 11: HopKind.NET_UNREACHABLE,
    1: HopKind.HOST_UNREACHABLE, 7: HopKind.HOST_UNREACHABLE, 12: HopKind.HOST_UNREACHABLE,
    3: HopKind.PORT_UNREACHABLE,
    9: HopKind.ADMIN_PROHIBITED, 10: HopKind.ADMIN_PROHIBITED, 13: HopKind.ADMIN_PROHIBITED,
}
_ICMP6_CODES: dict[int, HopKind] = {
    0: HopKind.NET_UNREACHABLE, 3: HopKind.HOST_UNREACHABLE, 4: HopKind.PORT_UNREACHABLE,
    1: HopKind.ADMIN_PROHIBITED, 5: HopKind.ADMIN_PROHIBITED, 6: HopKind.ADMIN_PROHIBITED,
}
_SockAddr = tuple[str, int] | tuple[str, int, int, int]
MAX_HOPS = 16
PER_HOP = 1.0  # Linux resends a SYN after 1 s; a hop silent that long counts as silent
# The probes' launches spread over at most this share of the budget, so the last one still
# has the rest to be answered.
_LAUNCH_SHARE = 0.5


async def trace(address: str, port: int, *, max_hops: int = MAX_HOPS, budget: float = 3.0,
                per_hop: float = PER_HOP) -> Trace:
    """Trace the path to `address` (an IP literal) port `port`, within `budget` seconds.

    Never raises for network errors: they are the trace's findings. Every socket is closed
    and every task done on return, also when cancelled."""
    if not 1 <= max_hops <= 255 or budget <= 0 or per_hop <= 0:
        raise ValueError("max_hops must be 1..255, budget and per_hop positive")
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # ValueError for a name
    reason = _unsupported(ip.version)
    if reason is not None:
        return Trace.skipped(address, port, reason, max_hops)
    loop = asyncio.get_running_loop()
    run = _Run(socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
               _sockaddr(address, port, ip.version), loop.time() + budget, per_hop)
    started = loop.time()
    await run.launch(max_hops, budget * _LAUNCH_SHARE / max_hops)
    return Trace.of(address, port, list(run.hops.values()), max_hops,
                    (loop.time() - started) * 1000, run.source, run.local_error)


def _unsupported(version: int) -> str | None:
    """Why no trace can run here, or None. Only Linux queues ICMP errors on TCP sockets."""
    if sys.platform != "linux":
        return f"TCP traceroute needs Linux's IP_RECVERR; skipped on {sys.platform}"
    family = socket.AF_INET6 if version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            _arm(sock, family, 1)
    except OSError as exc:
        return (f"IPv{version} TCP sockets with a TTL and IP_RECVERR are unavailable here "
                f"({netclass.describe(exc)}); TCP traceroute skipped")
    return None


def _sockaddr(address: str, port: int, version: int) -> _SockAddr:
    """The socket address, with a link-local IPv6 address's zone resolved (numeric only)."""
    family = socket.AF_INET6 if version == 6 else socket.AF_INET
    found = socket.getaddrinfo(address, port, family, socket.SOCK_STREAM, 0,
                               socket.AI_NUMERICHOST)[0][4]
    if not isinstance(found[0], str):
        raise ValueError("not an IP address")  # AF_INET/AF_INET6 give (host, port, ...)
    return found


def _arm(sock: socket.socket, family: int, ttl: int) -> None:
    """Set the TTL (hop limit) and ask for ICMP errors on the error queue."""
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
        sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)


@dataclass
class _Run:
    """One trace's probes: one task per TTL, each with its own socket."""

    family: int
    sockaddr: _SockAddr
    deadline: float
    per_hop: float
    hops: dict[int, Hop] = field(default_factory=dict)
    tasks: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    end: int | None = None  # the lowest TTL a final answer came back for
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    source: str | None = None
    local_error: str | None = None

    async def launch(self, max_hops: int, stagger: float) -> None:
        """TTL 1, 2, ... each as soon as a probe answered or `stagger` passed; none beyond a
        final answer's TTL, none after the deadline."""
        loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as group:
            for ttl in range(1, max_hops + 1):
                if (self.end is not None and ttl > self.end) or loop.time() >= self.deadline:
                    break
                self.answered.clear()
                self.tasks[ttl] = group.create_task(
                    self._one(ttl, min(loop.time() + self.per_hop, self.deadline)))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(stagger):
                        await self.answered.wait()

    async def _one(self, ttl: int, deadline: float) -> None:
        hop = await _probe(self, ttl, deadline)
        self.hops[ttl] = hop
        if hop.address is not None:
            self.answered.set()
        if hop.final and (self.end is None or ttl < self.end):
            self.end = ttl
            for higher, task in self.tasks.items():
                if higher > ttl:
                    task.cancel()  # the same end, farther: no news


async def _probe(run: _Run, ttl: int, deadline: float) -> Hop:
    """One SYN with TTL `ttl`, and what answered it by `deadline`."""
    loop = asyncio.get_running_loop()
    try:
        sock = socket.socket(run.family, socket.SOCK_STREAM)
    except OSError as exc:  # out of file descriptors, say
        return _not_sent(run, ttl, exc)
    try:
        sock.setblocking(False)
        _arm(sock, run.family, ttl)
        sent = loop.time()
        code = sock.connect_ex(run.sockaddr)
        if code not in (0, errno.EINPROGRESS):
            return _not_sent(run, ttl, OSError(code, ""))
        run.source = run.source or str(sock.getsockname()[0])
        if code == errno.EINPROGRESS and not await _settled(sock, deadline):
            return Hop(ttl, None, None, HopKind.SILENT)
        rtt_ms = (loop.time() - sent) * 1000
        return _answer(sock, ttl, rtt_ms, run.sockaddr[0])
    except OSError as exc:
        return _not_sent(run, ttl, exc)
    finally:
        _close(sock)


def _not_sent(run: _Run, ttl: int, exc: OSError) -> Hop:
    run.local_error = netclass.describe(exc)
    return Hop(ttl, None, None, HopKind.NOT_SENT)


async def _settled(sock: socket.socket, deadline: float) -> bool:
    """Until the connect completes or fails (writable, or an error), or the deadline."""
    loop = asyncio.get_running_loop()
    settled: asyncio.Future[None] = loop.create_future()
    loop.add_writer(sock, _settle, settled)
    try:
        async with asyncio.timeout_at(deadline):
            await settled
    except TimeoutError:
        return False
    finally:
        loop.remove_writer(sock)
    return True


def _settle(settled: asyncio.Future[None]) -> None:
    if not settled.done():  # the writer may fire again before the waiter runs
        settled.set_result(None)


def _answer(sock: socket.socket, ttl: int, rtt_ms: float, destination: str) -> Hop:
    """Name what ended one connect: an ICMP on the error queue, a reset, or a SYN-ACK."""
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    icmp = _queued_icmp(sock)
    if icmp is not None:
        (kind, icmp_type, code), offender = icmp
        return Hop(ttl, offender, rtt_ms, kind, (icmp_type, code))
    if error == 0:
        return Hop(ttl, destination, rtt_ms, HopKind.CONNECTED)
    if error == errno.ECONNREFUSED:
        return Hop(ttl, destination, rtt_ms, HopKind.REFUSED)
    # An error with no ICMP queued (none known to happen): unreachable, from nobody named.
    return Hop(ttl, None, rtt_ms, HopKind.UNREACHABLE)


def _queued_icmp(sock: socket.socket) -> tuple[tuple[HopKind, int, int], str | None] | None:
    """The first ICMP error on the socket's error queue: its meaning and who sent it."""
    if sys.platform != "linux":
        return None  # no error queue (and `trace` skips before it gets here)
    for _ in range(4):  # a TCP connect queues one; bound the loop all the same
        try:
            _, ancillary, _, _ = sock.recvmsg(64, 512, _MSG_ERRQUEUE)
        except (BlockingIOError, InterruptedError):
            return None
        for _level, _kind, data in ancillary:
            found = parse_extended_err(data)
            if found is not None:
                return found
    return None


def parse_extended_err(data: bytes) -> tuple[tuple[HopKind, int, int], str | None] | None:
    """A `struct sock_extended_err` with the offender's sockaddr after it, as (meaning, ICMP
    type, code) and the offender's address; None unless it is an ICMP error."""
    if len(data) < _EXTENDED_ERR.size:
        return None
    _errno, origin, icmp_type, code, _pad, _info, _data = _EXTENDED_ERR.unpack_from(data)
    if origin == _SO_EE_ORIGIN_ICMP:
        exceeded, unreach, codes = _ICMP_TIME_EXCEEDED, _ICMP_UNREACH, _ICMP_CODES
    elif origin == _SO_EE_ORIGIN_ICMP6:
        exceeded, unreach, codes = _ICMP6_TIME_EXCEEDED, _ICMP6_UNREACH, _ICMP6_CODES
    else:
        return None
    if icmp_type == exceeded:
        kind = HopKind.TIME_EXCEEDED
    else:
        kind = codes.get(code, HopKind.UNREACHABLE) if icmp_type == unreach \
            else HopKind.UNREACHABLE
    return (kind, icmp_type, code), _offender(data[_EXTENDED_ERR.size:])


def _offender(raw: bytes) -> str | None:
    """The sockaddr_in / sockaddr_in6 of who sent the ICMP (SO_EE_OFFENDER)."""
    if len(raw) < 2:
        return None
    family = int.from_bytes(raw[:2], sys.byteorder)  # sa_family_t: host order
    if family == socket.AF_INET and len(raw) >= 8:
        return str(ipaddress.IPv4Address(raw[4:8]))
    if family == socket.AF_INET6 and len(raw) >= 24:
        return str(ipaddress.IPv6Address(raw[8:24]))
    return None


def _close(sock: socket.socket) -> None:
    """Close at once: a connected probe is reset, not left to linger or sit in TIME_WAIT."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
