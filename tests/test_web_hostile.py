"""The exporter of a real monitor process fed malformed requests over real sockets: each is
answered (400, 401, 413, 431) or dropped within the head timeout, and the exporter stays up.

Before, `Content-Length: ²` and `Authorization: Basic \\xff\\xfe` raised unhandled exceptions
in the exporter, before the auth check.
"""

from __future__ import annotations

import base64
import socket
import time
from pathlib import Path

import bcrypt
import pytest

from assure_doctor.monitor.web import HEAD_TIMEOUT
from tests.test_web import web

pytestmark = pytest.mark.slow  # each test starts the monitor and waits out its head timeout

ARGS = ["--url", "https://127.0.0.1:9/v1/ping", "--no-ping", "--interval", "3600"]
PASSWORD = "right-password"


def exchange(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send `data`, then read until the server closes (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)


def basic(user: bytes, password: bytes) -> bytes:
    return b"Basic " + base64.b64encode(user + b":" + password)


MALFORMED = [
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: \xc2\xb2\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: \xd9\xa3\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1_0\r\n\r\n", 400),
    (b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 413),
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431),
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\nBad\x00Name: 1\r\n\r\n", 400),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)), 400),  # TLS hello
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked, x\r\n\r\n", 501),
    (b"GET \xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", 400),
]
UNAUTHORISED = [
    b"Basic \xff\xfe",
    b"Basic " + "é".encode("latin-1"),
    basic(b"alice", b"x" * 100),  # over bcrypt's 72 bytes: bcrypt itself would raise
    basic(b"\xff\xfe", b"\xff"),  # not UTF-8 inside
    basic(b"nobody", PASSWORD.encode()),
    b"Basic " + b"A" * 4000,
    b"Bearer x",
]


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:100]
    return int(answer[9:12])


def test_malformed_requests_are_answered_and_the_exporter_stays_up(tmp_path: Path) -> None:
    config = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    config.write_text(f"basic_auth_users:\n  alice: '{hashed}'\n")
    with web([*ARGS, "--web.config.file", str(config)], tmp_path,
             auth=("alice", PASSWORD)) as monitor:
        for request, status in MALFORMED:
            answer = exchange(monitor.port, request)
            assert status_of(answer) == status, (request[:60], answer[:200])
            assert b"Connection: close" in answer
        for authorization in UNAUTHORISED:
            answer = exchange(monitor.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                              b"Connection: close\r\nAuthorization: " + authorization
                              + b"\r\n\r\n")
            assert status_of(answer) == 401, (authorization[:40], answer[:200])
        assert monitor.get("/-/healthy") == (200, "Healthy\n")
        assert monitor.get("/metrics")[0] == 200
    errors = monitor.stop()
    assert "Traceback" not in errors and "Unhandled exception" not in errors, errors[-2000:]


def test_a_dribbled_head_is_dropped_within_the_head_timeout(tmp_path: Path) -> None:
    with web(ARGS, tmp_path) as monitor, socket.create_connection(
            ("127.0.0.1", monitor.port), timeout=HEAD_TIMEOUT + 5) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        try:
            rest = sock.recv(100)  # the server closes: nothing is ever answered
        except ConnectionResetError:
            rest = b""
        took = time.monotonic() - start
        assert rest == b""
        assert HEAD_TIMEOUT - 0.5 < took < HEAD_TIMEOUT + 3
        assert monitor.get("/-/healthy")[0] == 200


@pytest.mark.parametrize("pieces", [[b"GET /-/healthy HTTP/1.1\r\n", b"Host: x\r\n",
                                     b"Connection: close\r\n\r\n"]])
def test_a_head_in_pieces_within_the_timeout_is_answered(tmp_path: Path,
                                                         pieces: list[bytes]) -> None:
    with web(ARGS, tmp_path) as monitor, socket.create_connection(
            ("127.0.0.1", monitor.port), timeout=10) as sock:
        for piece in pieces:
            sock.sendall(piece)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        assert status_of(answer) == 200 and answer.endswith(b"Healthy\n")
