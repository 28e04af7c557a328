"""No exception left where nobody retrieves it.

A failed TLS handshake leaves its error in the stream's close waiter too; when the collector
freed that waiter before its stream, asyncio printed "Future exception was never retrieved"
(seen on the monitor's stderr after the anchor-set handshakes). conftest.py fails any test
that makes asyncio say so, and runs in-process loops in debug mode; these tests drive the
paths that did.
"""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from assure_doctor import trust
from assure_doctor.engine import run_check
from assure_doctor.options import CheckOptions
from assure_doctor.probes import chaincheck, connect, tls
from assure_doctor.proxyconfig import ProxyRules
from assure_doctor.sandbox import pki
from assure_doctor.sandbox.stack import Sandbox
from assure_doctor.target import from_url, parse_resolver


def test_loops_in_tests_run_in_debug_mode() -> None:
    async def debug() -> bool:
        return asyncio.get_running_loop().get_debug()
    assert asyncio.run(debug())


def test_a_failed_handshake_leaves_no_error_behind(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    leaf = pki.make_leaf(["127.0.0.1"], None, now - timedelta(days=1), now + timedelta(days=1))
    (tmp_path / "cert.pem").write_bytes(leaf.cert_pem)
    (tmp_path / "key.pem").write_bytes(leaf.key_pem)
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def run() -> asyncio.Future[None]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=served)
        async with server:
            port = server.sockets[0].getsockname()[1]
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            with pytest.raises(ssl.SSLCertVerificationError):
                await connect.handshake(writer, ssl.create_default_context(), "127.0.0.1", 5)
            # White-box, as no public API tells: the close waiter holds the error, retrieved.
            waiter: asyncio.Future[None] = writer._protocol._get_close_waiter(writer)  # type: ignore[attr-defined]
            return waiter

    waiter = asyncio.run(run())
    assert waiter.done() and not waiter._log_traceback  # type: ignore[attr-defined]


def test_the_anchor_set_handshakes_leave_nothing_unretrieved(
        healthy: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the chain cannot be checked offline (the Windows and macOS stores), each anchor set
    is asked with a handshake of its own: two of three fail by design."""
    monkeypatch.setattr(chaincheck, "store_of_pem", lambda pem: None)
    monkeypatch.setattr(tls, "_TRUST_SEEN", {})
    options = CheckOptions(timeout=5.0, resolvers=(parse_resolver(healthy.resolver),),
                           trust=trust.load(str(healthy.ca_bundle)),
                           proxy=ProxyRules(forced_direct=True))
    for _ in range(3):
        report = asyncio.run(run_check(from_url(healthy.url), options, None))
        stage = next(s for s in report.stages if s.name == "tls")
        assert stage.evidence["trust"] == {"certifi": False, "system": False, "ca_bundle": True}
        tls._TRUST_SEEN.clear()
