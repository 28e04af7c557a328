"""The API side of the sandbox: HTTPS /v1/ping, and the TCP-level faults around it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate

from assure_doctor import httpmsg
from assure_doctor.sandbox.scenarios import Reply, Scenario

PING_PATH = "/v1/ping"
_READ_LIMIT = 65536
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Traffic:
    """What the API side saw, for tests: requests, and keys that arrived."""

    requests: list[dict[str, object]] = field(default_factory=list)
    keyed: int = 0  # requests that carried an x-api-key header
    connections: int = 0  # TLS connections accepted (handshake done)


class PingApi:
    """Answers like the Customer API's /v1/ping: keyless → 401, right key → the scenario."""

    def __init__(self, scenario: Scenario, key: str) -> None:
        self.scenario = scenario
        self.key = key
        self.traffic = Traffic()
        # Called once, after the first answer was written (a scenario's change).
        self.after_first_answer: Callable[[], None] | None = None

    def now(self) -> float:
        return time.time() + self.scenario.clock_offset

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Requests on one connection, kept alive as the real API's gateway does."""
        self.traffic.connections += 1
        keep = True
        while keep:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            except (OSError, TimeoutError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError):
                break
            start, headers = httpmsg.split_head(head)
            method, path = [*start, "", ""][:2]
            key = headers.get("x-api-key")
            self.traffic.requests.append({"method": method, "path": path,
                                          "keyed": key is not None, "at": time.monotonic()})
            reply = self._reply(method, path, key)
            keep = not reply.delay and "close" not in headers.get("connection", "").lower()
            try:
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                writer.write(self._encode(reply, keep))  # one write: no Nagle stall
                await writer.drain()
            except OSError:
                break
            change, self.after_first_answer = self.after_first_answer, None
            if change is not None:
                change()
        writer.transport.abort()

    def _reply(self, method: str, path: str, key: str | None) -> Reply:
        if key is None:
            return Reply(401, '{"message": "Missing API key: send it in the x-api-key header"}')
        self.traffic.keyed += 1
        if key != self.key:
            return Reply(401, '{"message": "Invalid API key"}')
        if path.split("?")[0] != PING_PATH:
            return Reply(404, json.dumps({"message": f"Not Found: no method at {path[:100]}"}))
        if method != "GET":
            return Reply(405, '{"message": "Method Not Allowed"}')
        return self.scenario.reply.for_request(self.traffic.keyed)

    def _encode(self, reply: Reply, keep: bool) -> bytes:
        body = reply.body.encode()
        headers = {
            "Date": formatdate(self.now(), usegmt=True),
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            "Connection": "keep-alive" if keep else "close",
            **reply.headers,
        }
        head = f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return head.encode() + b"\r\n" + body


_REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 400: "Bad Request",
            401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            418: "I'm a teapot", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}


async def _stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept, read, never answer: a handshake held by deep packet inspection."""
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(reader.read(), 120)
    writer.transport.abort()


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the ClientHello, then cut the connection with a TCP reset."""
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(reader.read(1), 10)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _reset_at_accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                           ) -> None:
    """Accept, then cut the connection with a TCP reset at once, before any byte: a
    middlebox (or an overloaded server) that takes connections it will not serve."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer in plain HTTP whatever arrives: a TLS client sees 'wrong version number'."""
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(reader.read(_READ_LIMIT), 10)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
    writer.close()


@dataclass
class Listening:
    """The API side's port and what must be closed to stop it."""

    port: int
    ipv6: bool
    servers: list[asyncio.Server] = field(default_factory=list)
    sockets: list[socket.socket] = field(default_factory=list)

    def close(self) -> None:
        for server in self.servers:
            server.close()
        for sock in self.sockets:
            sock.close()


async def listen(kind: str, api: PingApi, tls: ssl.SSLContext) -> Listening:
    """Start the API side for a scenario's `server` kind on loopback (HTTPS on ::1 too, where
    the machine has IPv6)."""
    if kind == "refuse":
        # Bound but not listening: the port is reserved and every SYN gets a reset.
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        return Listening(sock.getsockname()[1], False, sockets=[sock])
    if kind == "blackhole":
        # Backlog 0 and one unaccepted connection fill the queue: Linux drops later SYNs.
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(0)
        filler = socket.create_connection(sock.getsockname())
        return Listening(sock.getsockname()[1], False, sockets=[sock, filler])
    if kind == "ipv6_blackhole":
        # HTTPS on IPv4; on ::1 the same port drops SYNs (a full backlog): IPv6 half broken.
        listening = await listen("https", api, tls)
        for server in listening.servers[1:]:
            server.close()
        del listening.servers[1:]
        sock6 = socket.socket(socket.AF_INET6)
        try:
            sock6.bind(("::1", listening.port))
        except OSError:
            sock6.close()
            listening.ipv6 = False
            return listening
        sock6.listen(0)
        listening.sockets += [sock6, socket.create_connection(("::1", listening.port))]
        listening.ipv6 = True
        return listening
    handlers: dict[str, tuple[Handler, ssl.SSLContext | None]] = {
        "https": (api.handle, tls), "stall": (_stall, None), "reset": (_reset, None),
        "reset_at_accept": (_reset_at_accept, None), "plain": (_plain, None),
    }
    handler, context = handlers[kind]
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=context,
                                        ssl_handshake_timeout=10 if context else None)
    port = server.sockets[0].getsockname()[1]
    listening = Listening(port, False, servers=[server])
    if kind == "https":
        try:
            server6 = await asyncio.start_server(handler, "::1", port, ssl=context,
                                                 ssl_handshake_timeout=10)
        except OSError:
            return listening
        listening.servers.append(server6)
        listening.ipv6 = True
    return listening


class IssuerFiles:
    """The plain-HTTP server a CA publishes its certificates on (the URL in its leaves'
    Authority Information Access): GET of a known path answers the DER certificate."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (OSError, TimeoutError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            writer.transport.abort()
            return
        start, _ = httpmsg.split_head(head)
        path = [*start, "", ""][1]
        self.requests.append(path)
        body = self.files.get(path)
        status = "200 OK" if body is not None else "404 Not Found"
        body = body if body is not None else b"not here\n"
        kind = "application/pkix-cert" if status.startswith("200") else "text/plain"
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: "
                     f"{len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()
