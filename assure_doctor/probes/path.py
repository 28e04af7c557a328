"""A fresh connection to the API the way the check reaches it: directly, or through a new
CONNECT tunnel when a proxy applies. Stages that need a second connection use this."""

from __future__ import annotations

import asyncio
import socket
import ssl

from assure_doctor.probes.connect import handshake
from assure_doctor.probes.proxy import tunnel
from assure_doctor.probes.results import Stream
from assure_doctor.probes.stage import Context


class TunnelRefused(OSError):
    """The proxy did not open a tunnel for a second connection (it did for the first)."""


async def open_stream(ctx: Context, mss: int | None = None) -> Stream:
    """TCP to the address the tcp stage vetted, tunnelled when a proxy applies.

    `mss` sets TCP_MAXSEG before connecting: small segments get through a path MTU black hole.
    """
    timeout = ctx.options.timeout
    stream = await asyncio.wait_for(_connect(ctx.address, ctx.dial_port, mss), timeout)
    proxy = ctx.route.proxy
    if proxy is None:
        return stream
    answer = await tunnel(stream, ctx.target.host, ctx.target.port, proxy, timeout)
    if answer.status != 200:
        stream[1].transport.abort()
        raise TunnelRefused(f"the proxy answered CONNECT with {answer.status or answer.error}")
    return stream


async def open_tls(ctx: Context, context: ssl.SSLContext, mss: int | None = None) -> Stream:
    """`open_stream`, then the TLS handshake with the API's name, each within the timeout."""
    stream = await open_stream(ctx, mss)
    await handshake(stream[1], context, ctx.target.host, ctx.options.timeout)
    return stream


async def _connect(address: str, port: int, mss: int | None) -> Stream:
    if mss is None:
        return await asyncio.open_connection(address, port)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (address, port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)
