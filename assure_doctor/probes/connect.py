"""Open (and close) a TCP connection, timing it and naming how it failed. Shared by stages."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time

from assure_doctor.probes import netclass
from assure_doctor.probes.results import Attempt, Stream

CLOSE_WAIT = 1.0  # asyncio closes a failed handshake's stream within a few loop turns


async def connect(address: str, port: int, timeout: float) -> Stream:
    """A TCP connection within `timeout`."""
    return await asyncio.wait_for(asyncio.open_connection(address, port), timeout)


async def handshake(writer: asyncio.StreamWriter, context: ssl.SSLContext, server_hostname: str,
                    timeout: float) -> None:
    """Upgrade a connection to TLS within `timeout`; the connection is aborted on failure."""
    try:
        await asyncio.wait_for(writer.start_tls(context, server_hostname=server_hostname),
                               timeout)
    except ssl.SSLError:
        writer.transport.abort()
        await _closed(writer)
        raise
    except BaseException:
        writer.transport.abort()
        raise


async def _closed(writer: asyncio.StreamWriter) -> None:
    """Let asyncio finish closing a stream whose handshake failed, and take the error it also
    leaves in the stream's close waiter. Only wait_closed() retrieves it; left there, the
    waiter and the error's traceback form a cycle, and if the collector frees the waiter
    first, asyncio logs "Future exception was never retrieved" (the anchor-set handshakes
    fail by design, several at once)."""
    with contextlib.suppress(Exception):  # that error again, or the bound: nothing to add
        await asyncio.wait_for(writer.wait_closed(), CLOSE_WAIT)


async def open_tls(address: str, port: int, timeout: float, context: ssl.SSLContext,
                   server_hostname: str) -> Stream:
    """TCP connect, then the TLS handshake, each within `timeout`."""
    reader, writer = await connect(address, port, timeout)
    await handshake(writer, context, server_hostname, timeout)
    return reader, writer


async def attempt(address: str, port: int, timeout: float) -> Attempt:
    """Connect once and close again; never raises for network errors."""
    start = time.perf_counter()
    try:
        stream = await connect(address, port, timeout)
    except (OSError, TimeoutError) as exc:
        return Attempt(address, port, _ms(start), netclass.connect_kind(exc),
                       netclass.describe(exc))
    stream[1].transport.abort()
    return Attempt(address, port, _ms(start))


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000
