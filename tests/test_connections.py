"""One connection, one handshake: the clock's keyless request and the keyed ping share the
connection the tls stage verified; a new one is opened only when the server closed it."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

import pytest

from assure_doctor import trust
from assure_doctor.probes import connect, keyed
from assure_doctor.sandbox.stack import HOST, Sandbox
from tests.conftest import run_cli
from tests.hostile import HostileServer, head, sends

pytestmark = pytest.mark.slow  # whole checks against the sandbox and hostile servers


def test_a_healthy_check_makes_one_tls_connection(healthy: Sandbox) -> None:
    run = run_cli("check", *healthy.check_args(), "--json")
    assert run.returncode == 0, run.stdout
    assert healthy.traffic.connections == 1
    assert [r["keyed"] for r in healthy.traffic.requests] == [False, True]
    ping = run.stage("ping")["evidence"]
    assert ping["connections"] == {"reused": 1, "opened": 0}
    assert abs(ping["clock"]["skew_seconds"]) < 2  # the ping's Date, a second clock sample


def test_retries_reuse_the_connection_too(sandbox_factory: Callable[[str], Sandbox]) -> None:
    sandbox = sandbox_factory("http-503-flaky")
    run = run_cli("check", *sandbox.check_args(), "--retry-pause", "0.05", "--json")
    assert run.stage("ping")["status"] == "warn"
    assert sandbox.traffic.connections == 1 and sandbox.traffic.keyed == 2


def test_a_closed_connection_is_replaced_by_a_verified_one() -> None:
    closing = sends(head("401 Unauthorized", {"Connection": "close"}, b"{}"))
    with HostileServer(keyless=closing) as server:
        run = run_cli("check", *server.check_args(), "--json")
        assert run.returncode == 0, run.stdout
        assert server.seen.connections == 2 and server.seen.keyed == 1
        assert run.stage("ping")["evidence"]["connections"] == {"reused": 0, "opened": 1}


def test_only_a_stream_verified_with_the_checks_context_carries_the_key(healthy: Sandbox
                                                                        ) -> None:
    verifying = trust.load(str(healthy.ca_bundle)).strict

    async def opened(context: ssl.SSLContext) -> bool:
        stream = await connect.open_tls("127.0.0.1", healthy.port, 5, context, HOST)
        try:
            return keyed.verified(stream, verifying, HOST)
        finally:
            stream[1].transport.abort()

    assert asyncio.run(opened(verifying)) is True
    assert asyncio.run(opened(trust.looking())) is False


def test_a_healthy_proxied_check_makes_one_tunnel(sandbox_factory: Callable[[str], Sandbox]
                                                  ) -> None:
    """Through a proxy the verified stream is the tunnel: the clock and the ping reuse it."""
    sandbox = sandbox_factory("proxy-open")
    run = run_cli("check", *sandbox.check_args(), "--json")
    assert run.returncode == 0, run.stdout
    assert run.stage("proxy")["status"] == "pass"
    assert sandbox.traffic.connections == 1 and sandbox.traffic.keyed == 1
    assert run.stage("ping")["evidence"]["connections"] == {"reused": 1, "opened": 0}
