"""The sandbox's forward proxy: answers CONNECT like a corporate proxy would, on loopback.

Whatever host a client asks for, the tunnel only ever leads to the sandbox's own API port on
127.0.0.1: the sandbox never opens a connection anywhere else.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from dataclasses import dataclass, field

from assure_doctor import httpmsg
from assure_doctor.sandbox.scenarios import PROXY_KINDS

USER, PASSWORD = "sandbox-user", "sandbox-proxy-pass"
_READ_LIMIT = 16384
_DENY_PAGE = ("<html><head><title>Access Denied: {host} is blocked by the web filter policy"
              "</title></head><body>Category: Uncategorised. Contact your IT helpdesk."
              "</body></html>")
_UPSTREAM_PAGE = ("<html><head><title>ERROR: The requested URL could not be retrieved</title>"
                  "</head><body>Unable to determine IP address from host name {host}"
                  "</body></html>")


@dataclass
class ProxyLog:
    """What the proxy saw, for tests: each CONNECT and whether it carried credentials."""

    connects: list[dict[str, object]] = field(default_factory=list)


class SandboxProxy:
    """One scenario's proxy: `kind` is one of PROXY_KINDS."""

    def __init__(self, kind: str, api_port: int, intercept: ssl.SSLContext | None = None
                 ) -> None:
        if kind not in PROXY_KINDS:
            raise ValueError(f"proxy kind {kind!r} is not one of {PROXY_KINDS}")
        self.kind = kind
        self.api_port = api_port
        self.intercept = intercept
        self.log = ProxyLog()
        pair = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        self._expected = f"Basic {pair}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.transport.abort()
            return
        start, headers = httpmsg.split_head(head)
        method, authority = [*start, "", ""][:2]
        credentials = headers.get("proxy-authorization")
        self.log.connects.append({"method": method, "authority": authority,
                                  "credentials": credentials is not None})
        host = authority.rsplit(":", 1)[0]
        try:
            if method != "CONNECT":
                await _answer(writer, 405, "Method Not Allowed", "")
            elif self.kind == "basic" and credentials != self._expected:
                await _answer(writer, 407, "Proxy Authentication Required", "",
                              [("Proxy-Authenticate", 'Basic realm="sandbox proxy"')])
            elif self.kind == "ntlm":
                await _answer(writer, 407, "Proxy Authentication Required", "",
                              [("Proxy-Authenticate", "NTLM"),
                               ("Proxy-Authenticate", "Negotiate")])
            elif self.kind == "deny":
                await _answer(writer, 403, "Forbidden", _DENY_PAGE.format(host=host))
            elif self.kind == "upstream":
                await _answer(writer, 502, "Bad Gateway", _UPSTREAM_PAGE.format(host=host))
            else:
                await self._tunnel(reader, writer, host)
                return
        except OSError:
            pass
        writer.close()

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      host: str) -> None:
        """200, then bytes both ways to the API; `intercept` terminates TLS on the way."""
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.api_port)
        except OSError:
            await _answer(writer, 502, "Bad Gateway", _UPSTREAM_PAGE.format(host=host))
            writer.close()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            if self.intercept is not None:
                # Our certificate to the client, a TLS client of our own to the API.
                await writer.start_tls(self.intercept, ssl_handshake_timeout=10)
                await up_writer.start_tls(_upstream_context(), server_hostname=host,
                                          ssl_handshake_timeout=10)
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        except (OSError, TimeoutError, ssl.SSLError):
            pass
        finally:
            up_writer.transport.abort()
            writer.transport.abort()


def _upstream_context() -> ssl.SSLContext:
    # The proxy's own client side: an inspecting proxy trusts what it is told to.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, TimeoutError):
        while chunk := await asyncio.wait_for(source.read(_READ_LIMIT), 120):
            sink.write(chunk)
            await sink.drain()
    with contextlib.suppress(OSError, RuntimeError):
        if sink.can_write_eof():
            sink.write_eof()


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str, body: str,
                  headers: list[tuple[str, str]] | None = None) -> None:
    data = body.encode()
    lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: text/html",
             f"Content-Length: {len(data)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
    await writer.drain()
