"""An httpcore network backend that hands httpx the connection the tls stage verified.

The ping runs httpx, but a fresh connection would cost a second TCP and TLS handshake. This
backend's `connect_tcp` ignores the host it is given: it returns the verified stream the
earlier stages handed over, and only when there is none, or the server has closed it, opens a
new one with the same opener (same address, SNI and verifying context). Either way the key
travels only over a connection verified with the check's context: a handed-over stream whose
TLS was set up with any other context is refused.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore

from assure_doctor.probes.results import Stream

Opener = Callable[[], Awaitable[Stream]]


class StreamAdapter(httpcore.AsyncNetworkStream):
    """An asyncio (reader, writer) pair that already speaks TLS, as httpcore wants it."""

    def __init__(self, stream: Stream, verify_context: ssl.SSLContext) -> None:
        self._reader, self._writer = stream
        self._verify_context = verify_context

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return await asyncio.wait_for(self._reader.read(max_bytes), timeout)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout("no data in time") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self._writer.write(buffer)
            await asyncio.wait_for(self._writer.drain(), timeout)
        except TimeoutError as exc:
            raise httpcore.WriteTimeout("could not send in time") from exc
        except (OSError, ssl.SSLError, RuntimeError) as exc:  # RuntimeError: transport closed
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        # No close_notify exchange: a hostile server could hold it open forever.
        self._writer.transport.abort()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        """Already verified (see `verified`); httpcore's own upgrade is not needed."""
        if ssl_context is not self._verify_context:
            raise httpcore.ConnectError("the ping must use the check's verifying context")
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # Idle and readable means the server closed it (EOF) or sent what nobody asked.
            return self._reader.at_eof() or self._writer.transport.is_closing()
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        return self._writer.get_extra_info(info)  # ssl_object, socket


def verified(stream: Stream, context: ssl.SSLContext, server_hostname: str) -> bool:
    """Whether a stream is open and its TLS was verified with `context` for that name."""
    reader, writer = stream
    ssl_object = writer.get_extra_info("ssl_object")
    return (ssl_object is not None and ssl_object.context is context
            and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
            and ssl_object.server_hostname == server_hostname
            and not reader.at_eof() and not writer.transport.is_closing())


class HandOverBackend(httpcore.AsyncNetworkBackend):
    """`connect_tcp` gives the handed-over stream first, then fresh ones from `opener`."""

    def __init__(self, first: Stream | None, opener: Opener, verify_context: ssl.SSLContext,
                 server_hostname: str) -> None:
        self._first = first
        self._opener = opener
        self._context = verify_context
        self._hostname = server_hostname
        self.connecting = False  # True while a new connection is being opened
        self.reused = 0
        self.opened = 0

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        first, self._first = self._first, None
        if first is not None and verified(first, self._context, self._hostname):
            self.reused += 1
            return StreamAdapter(first, self._context)
        if first is not None:
            first[1].transport.abort()
        self.connecting = True  # stays True if the attempt's deadline cancels us here
        try:
            stream = await self._opener()
        except TimeoutError as exc:
            self.connecting = False
            raise httpcore.ConnectTimeout("no connection in time") from exc
        except (OSError, ssl.SSLError) as exc:
            self.connecting = False
            raise httpcore.ConnectError(str(exc)) from exc
        self.connecting = False
        if not verified(stream, self._context, self._hostname):
            stream[1].transport.abort()
            raise httpcore.ConnectError("the new connection is not verified")
        self.opened += 1
        return StreamAdapter(stream, self._context)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("the ping never uses a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def release(self) -> None:
        """Close a handed-over stream that no request used."""
        if self._first is not None:
            self._first[1].transport.abort()
            self._first = None
