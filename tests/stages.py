"""Stages run one by one, in-process, against real servers on loopback: what each one found.

The engine runs the same coroutines; calling them here shows a stage's own outcome (summary,
condition, facts, typed result) without the ranking, the deadlines and the path trace around
it. Servers: a `Sandbox` scenario (DNS, HTTPS and faults in a background thread), or the TLS
server below, whose certificate a test can change between two handshakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from assure_doctor import trust
from assure_doctor.apikey import ApiKey
from assure_doctor.model import Outcome, Status
from assure_doctor.options import CheckOptions
from assure_doctor.probes import registry
from assure_doctor.probes.results import TcpFound
from assure_doctor.probes.stage import Context
from assure_doctor.sandbox import pki
from assure_doctor.sandbox.stack import HOST, Sandbox, sandbox_ca, sandbox_intermediate
from assure_doctor.target import from_url, parse_resolver


def options(sandbox: Sandbox, **extra: object) -> CheckOptions:
    """Short waits, the sandbox's resolver and its CA bundle; `extra` replaces fields."""
    made = CheckOptions(timeout=1.5, retry_pause=0.05,
                        resolvers=(parse_resolver(sandbox.resolver),),
                        trust=trust.load(str(sandbox.ca_bundle)))
    return dataclasses.replace(made, **extra)  # type: ignore[arg-type]


def context(sandbox: Sandbox, key: bool = True, url: str | None = None,
            **extra: object) -> Context:
    secret = ApiKey(sandbox.key, "the sandbox key file") if key else None
    return Context(from_url(url or sandbox.url), options(sandbox, **extra), secret)


async def stages(ctx: Context, *names: str) -> Outcome:
    """Run the named stages in order, each over what the ones before found; the last one's
    outcome. The streams stages leave for later ones are the caller's (`ctx.close_streams`)."""
    outcome = None
    for name in names:
        outcome = ctx.outcomes[name] = await registry.probe(name).run(ctx)
    assert outcome is not None
    return outcome


def run(ctx: Context, *names: str) -> Outcome:
    """`stages` in a fresh event loop; every stream left over is closed after."""
    async def go() -> Outcome:
        try:
            return await stages(ctx, *names)
        finally:
            ctx.close_streams()
    return asyncio.run(go())


@contextlib.contextmanager
def sandbox(scenario: str) -> Iterator[Sandbox]:
    with Sandbox(scenario) as started:
        yield started


def leaf(issuer: pki.Issued | None = None, names: tuple[str, ...] = (HOST, "127.0.0.1"),
         ca_issuers: str | None = None) -> pki.Issued:
    """A server certificate for the sandbox's API name, issued by the sandbox's intermediate
    (or `issuer`), valid from a day ago for 60 days more; `ca_issuers`: its AIA URL."""
    now = datetime.now(UTC)
    return pki.make_leaf(list(names), issuer or sandbox_intermediate(), now - timedelta(days=1),
                         now + timedelta(days=60), ca_issuers=ca_issuers)


class TlsServer:
    """A TLS server on 127.0.0.1 in a thread of its own (plain TCP without a certificate):
    it counts the connections it accepts and takes each one's handshake with the certificate
    and chain it is given (`serve` changes them). Without `answer` it answers nothing; with
    it, it keeps each request's head and answers every request with those very bytes, keeping
    the connection open (or closing it after the first, with `close`; with `reset`, it cuts
    the connection with a TCP reset once it answered, if it answers at all)."""

    def __init__(self, certificate: pki.Issued | None, *chain: pki.Issued,
                 answer: bytes | None = None, close: bool = False, reset: bool = False
                 ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="assure-tls-server-"))
        self.connections = 0
        self.answer, self.close, self.reset = answer, close, reset
        # How the next connections are met: "tls" (as above), "stall" (accepted, then not a
        # byte), "plain" (an HTTP answer where the handshake should be).
        self.mode = "tls"
        self.limit: int | None = None  # connections served; later ones are cut at once
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None
        self.port = 0
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER) if certificate else None
        if certificate is not None:
            self.serve(certificate, *chain)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def serve(self, certificate: pki.Issued, *chain: pki.Issued) -> None:
        """Present this certificate (and chain) from the next handshake on."""
        cert_file, key_file = self.dir / "cert.pem", self.dir / "key.pem"
        cert_file.write_bytes(certificate.cert_pem + b"".join(c.cert_pem for c in chain))
        key_file.write_bytes(certificate.key_pem)
        assert self._context is not None, "a plain server has no certificate"
        self._context.load_cert_chain(cert_file, key_file)

    @property
    def bundle(self) -> Path:
        """A CA bundle with the sandbox's root."""
        path = self.dir / "ca.pem"
        path.write_bytes(sandbox_ca().cert_pem)
        return path

    def __enter__(self) -> TlsServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the TLS server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self) -> None:
        loop = self._loop
        loop.set_exception_handler(lambda _loop, _context: None)  # refused handshakes
        server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.run_until_complete(_cancelled(asyncio.all_tasks(loop)))  # open connections
            loop.close()

    def stop_listening(self) -> None:
        """New connections are refused from now on; open ones go on."""
        done = threading.Event()

        def stop() -> None:
            assert self._server is not None
            self._server.close()  # the listening socket only: connections go on (3.11)
            done.set()

        self._loop.call_soon_threadsafe(stop)
        done.wait(5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self._converse(reader, writer)
        except (OSError, TimeoutError, EOFError, asyncio.LimitOverrunError):
            pass  # the client went, or broke the protocol: the conversation is over
        finally:
            writer.transport.abort()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                        ) -> None:
        if self.limit is not None and self.connections > self.limit:
            return
        if self.mode == "plain":  # the ClientHello first, as a plain HTTP server reads it
            await reader.read(1)
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        if self.mode != "tls":
            await reader.read()  # until the client gives up
            return
        if self._context is not None:
            await writer.start_tls(self._context, ssl_handshake_timeout=10)
        while self.answer is not None or self.reset:
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(self.answer or b"")  # in one write: no Nagle stall
            await writer.drain()
            if self.reset:  # a TCP reset, once the answer (if any) is out
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if self.close:
                writer.close()
                await writer.wait_closed()  # all of it sent before the abort
                return
        await reader.read()

def tls_context(port: int, anchors: trust.Trust, timeout: float = 1.5, key: str | None = None,
                **extra: object) -> Context:
    """A check of the API name at 127.0.0.1:`port`, as if the tcp stage had connected there
    (and handed over no connection); `extra` options replace the defaults."""
    made = dataclasses.replace(CheckOptions(timeout=timeout, trust=anchors), **extra)  # type: ignore[arg-type]
    ctx = Context(from_url(f"https://{HOST}:{port}/v1/ping"), made,
                  None if key is None else ApiKey(key, "a test"))
    ctx.outcomes["tcp"] = Outcome(Status.PASS, "connected", TcpFound("127.0.0.1", port))
    return ctx


async def _cancelled(tasks: set[asyncio.Task[object]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
