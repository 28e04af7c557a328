"""The bounded HTTP server in-process: malformed and oversized heads, slow clients, and the
connection cap evicting idle clients so that a scrape always gets in."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator

import pytest

from assure_doctor.errors import InputError
from assure_doctor.monitor import web
from assure_doctor.monitor.web import Request, Response, WebServer, parse_listen
from assure_doctor.monitor.webconfig import WebConfigFile


async def _hello(request: Request) -> Response:
    return Response(200, f"{request.method} {request.path} {request.query}".encode())


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebServer]:
    monkeypatch.setattr(web, "HEAD_TIMEOUT", 0.5)
    instance = WebServer("127.0.0.1:0", _hello, WebConfigFile(None), max_connections=3)
    instance.start()
    yield instance
    instance.stop()


def _exchange(port: int, data: bytes, timeout: float = 3) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_a_request_is_answered_and_closed_on_request(server: WebServer) -> None:
    answer = _exchange(server.port, b"GET /metrics?a=1 HTTP/1.1\r\nHost: x\r\n"
                       b"Connection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"GET /metrics {'a': ['1']}")
    assert b"Connection: close" in answer


@pytest.mark.parametrize("head", [
    b"NONSENSE\r\n\r\n", b"GET /x HTTP/1.9\r\nHost: x\r\n\r\n",
    b"GET http://elsewhere/ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", b"GET / HTTP/1.1\r\n Folded: x\r\n\r\n",
])
def test_malformed_heads_get_a_400(server: WebServer, head: bytes) -> None:
    assert _exchange(server.port, head).startswith(b"HTTP/1.1 400 ")


def test_bodies_are_bounded(server: WebServer) -> None:
    answer = _exchange(server.port, b"POST / HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: 99999999\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_an_oversized_head_is_refused_and_closed(server: WebServer) -> None:
    answer = _exchange(server.port, b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ") and b"Connection: close" in answer


@pytest.mark.slow
def test_a_dribbled_head_is_dropped_after_the_head_timeout(server: WebServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        start = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\n")
        try:
            # A header line every 0.1 s, until the server hangs up (the socket turns readable).
            while time.monotonic() - start < 5 and not select.select([sock], [], [], 0.1)[0]:
                sock.sendall(b"X-Slow: 1\r\n")
        except OSError:
            pass  # reset once dropped
        try:
            rest = sock.recv(100)
        except ConnectionResetError:
            rest = b""
        assert rest == b""
        assert time.monotonic() - start < 2.5


def test_the_cap_evicts_the_oldest_idle_client_so_a_scrape_gets_in(server: WebServer
                                                                   ) -> None:
    # Accepted and admitted in the order they connect (the listen queue is first in, first
    # out), so the scrape below comes after all three.
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=3) for _ in range(3)]
    try:
        answer = _exchange(server.port, b"GET /metrics HTTP/1.0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 OK")
        try:
            evicted = idle[0].recv(10)
        except ConnectionResetError:
            evicted = b""
        assert evicted == b""  # the oldest idle one was closed to make room
    finally:
        for sock in idle:
            sock.close()


def test_listen_addresses_are_checked() -> None:
    assert parse_listen(":10459") == ("0.0.0.0", 10459)
    assert parse_listen("[::1]:80") == ("::1", 80)
    for bad in ("nope", "host:", "host:99999", "host:x"):
        with pytest.raises(InputError, match=r"--web\.listen-address"):
            parse_listen(bad)
