"""The one HTTP/1.1 codec (`http1`, h11 underneath): total and bounded over hostile bytes.

Properties (hypothesis) feed any bytes to the client and server sides through a real
asyncio StreamReader: every outcome is a head, a body within its cap, or an `HttpError`, and a
head never exceeds its limit however it arrives. Then the proxy stage's CONNECT answers go
through it over real loopback sockets: a superscript status is no status (not a crash), and
5,000 offered schemes are cut to a readable few.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assure_doctor import http1
from assure_doctor.kinds import ProxyKind
from assure_doctor.probes import proxy
from assure_doctor.proxyconfig import Proxy

fast = settings(max_examples=150, deadline=None)
LIMIT = 512


class Collected:
    """The writing half of a stream, for the codec's unit tests: keeps what was written."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        return None


def reader_of(chunks: list[bytes]) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    return reader


async def respond(chunks: list[bytes], method: str = "GET", cap: int = 1024
                  ) -> tuple[http1.ResponseHead, bytes, bool]:
    client = http1.Client(reader_of(chunks), Collected(), LIMIT)  # type: ignore[arg-type]
    client.send_request(method, "/v1/ping", [("Host", "api.x")])
    head = await client.response()
    body = await client.body(cap)
    return head, body, client.reusable


def outcome(chunks: list[bytes], **kwargs: Any) -> object:
    """The codec's answer, or the HttpError it raised (anything else fails the test)."""
    async def run() -> object:
        try:
            return await respond(chunks, **kwargs)
        except http1.HttpError as exc:
            return exc
    return asyncio.run(run())


# --- any bytes ------------------------------------------------------------------------------
@fast
@given(st.lists(st.binary(max_size=300), max_size=6))
def test_any_bytes_are_a_response_or_an_http_error(chunks: list[bytes]) -> None:
    found = outcome(chunks)
    if not isinstance(found, http1.HttpError):
        head, body, _ = found  # type: ignore[misc]
        assert 100 <= head.status <= 999 and len(body) <= 1024


HEADISH = st.lists(st.sampled_from([b"HTTP/1.1 200 OK\r\n", b"Content-Length: 3\r\n",
                                    b"Transfer-Encoding: chunked\r\n", b"X: y\r\n",
                                    b"Connection: close\r\n", b"\r\n", b"3\r\nabc\r\n",
                                    b"0\r\n\r\n", b"abc", b"HTTP/1.1 100 Continue\r\n"]),
                   max_size=12).map(b"".join)


@fast
@given(HEADISH, st.integers(1, 64))
def test_http_like_bytes_in_any_pieces(data: bytes, size: int) -> None:
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    found = outcome(chunks)
    assert isinstance(found, (http1.HttpError, tuple))


@fast
@given(st.integers(0, 3 * LIMIT), st.integers(1, 700))
def test_a_head_never_exceeds_its_limit_however_it_arrives(padding: int, size: int) -> None:
    data = b"HTTP/1.1 200 OK\r\nX: " + b"a" * padding + b"\r\nContent-Length: 0\r\n\r\n"
    head_length = data.index(b"\r\n\r\n") + 4
    found = outcome([data[i:i + size] for i in range(0, len(data), size)])
    if head_length > LIMIT + 1:
        assert isinstance(found, http1.TooLarge) and found.status == 431
    elif head_length <= LIMIT:
        assert isinstance(found, tuple)


@fast
@given(st.integers(100, 599).filter(lambda s: s not in (101,) and s >= 200),
       st.lists(st.tuples(st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True),
                          st.from_regex(r"[!-~]([ !-~]{0,30}[!-~])?", fullmatch=True)),
                max_size=5),
       st.binary(max_size=300), st.booleans())
def test_well_formed_responses_round_trip(status: int, fields: list[tuple[str, str]],
                                          body: bytes, chunked: bool) -> None:
    fields = [(n, v) for n, v in fields
              if n.lower() not in ("content-length", "transfer-encoding", "connection")]
    lines = [f"HTTP/1.1 {status} Reason", *(f"{n}: {v}" for n, v in fields)]
    if status in (204, 304):
        body, framing = b"", b""
    elif chunked:
        lines.append("Transfer-Encoding: chunked")
        framing = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    else:
        lines.append(f"Content-Length: {len(body)}")
        framing = body
    found = outcome([("\r\n".join(lines) + "\r\n\r\n").encode() + framing])
    assert isinstance(found, tuple), found
    head, got, reusable = found
    assert (head.status, head.reason, got, reusable) == (status, "Reason", body, True)
    for name, value in fields:
        assert value in head.fields.all(name.lower())


@pytest.mark.parametrize(("raw", "error"), [
    (b"HTTP/1.1 \xb2\xb2\xb2 OK\r\n\r\n", http1.Malformed),  # superscript digits
    (b"HTTP/1.1 \xd9\xa3\xd9\xa3\xd9\xa3 OK\r\n\r\n", http1.Malformed),  # Arabic-Indic, UTF-8
    (b"HTTP/1.1 200 OK\r\nContent-Length: \xc2\xb2\r\n\r\n", http1.Malformed),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1_0\r\n\r\n", http1.Malformed),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", http1.Malformed),
    (b"HTTP/2 200\r\n\r\n", http1.Malformed),
    (b"\x16\x03\x01\x00\x05hello", http1.Malformed),  # TLS: no HTTP at all
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", http1.Closed),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\xb2\r\nab\r\n0\r\n\r\n",
     http1.Malformed),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000, http1.TooLarge),
    (b"HTTP/1.1 100 Continue\r\n\r\n" * 20 + b"HTTP/1.1 200 OK\r\n\r\n", http1.Malformed),
])
def test_hostile_responses_are_named_errors(raw: bytes, error: type[Exception]) -> None:
    assert isinstance(outcome([raw]), error)


@pytest.mark.parametrize(("raw", "reusable"), [
    (b"HTTP/1.1 401 No\r\nContent-Length: 2\r\n\r\n{}", True),
    (b"HTTP/1.1 401 No\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-T: 1\r\n\r\n", True),
    (b"HTTP/1.1 401 No\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", False),
    (b"HTTP/1.0 401 No\r\nContent-Length: 2\r\n\r\n{}", False),
    (b"HTTP/1.1 401 No\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n", False),  # unasked
])
def test_reuse_needs_keep_alive_and_nothing_unasked_for(raw: bytes, reusable: bool) -> None:
    found = outcome([raw])
    assert isinstance(found, tuple) and found[2] is reusable


def test_a_body_running_to_the_close_is_said_to() -> None:
    async def run() -> http1.ResponseHead:
        client = http1.Client(reader_of([b"HTTP/1.1 200 OK\r\n\r\nabc"]), Collected(),  # type: ignore[arg-type]
                              LIMIT)
        client.send_request("GET", "/", [("Host", "x")])
        return await client.response()
    assert asyncio.run(run()).close_delimited


# --- the server side ------------------------------------------------------------------------
async def serve(chunks: list[bytes]) -> tuple[http1.RequestHead, bytes]:
    server = http1.Server(reader_of(chunks), Collected(), LIMIT)  # type: ignore[arg-type]
    head = await server.request()
    return head, await server.body(1024)


def request_outcome(chunks: list[bytes]) -> object:
    async def run() -> object:
        try:
            return await serve(chunks)
        except http1.HttpError as exc:
            return exc
    return asyncio.run(run())


@fast
@given(st.lists(st.binary(max_size=300), max_size=6))
def test_any_bytes_are_a_request_or_an_http_error(chunks: list[bytes]) -> None:
    found = request_outcome(chunks)
    if not isinstance(found, http1.HttpError):
        head, body = found  # type: ignore[misc]
        assert head.method and len(body) <= 1024


@pytest.mark.parametrize(("raw", "status"), [
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \xc2\xb2\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 2000 + b"\r\n\r\n", 431),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000, 413),
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
])
def test_hostile_requests_name_their_answer(raw: bytes, status: int) -> None:
    found = request_outcome([raw])
    assert isinstance(found, http1.HttpError) and found.status == status


def test_basic_auth_with_invalid_bytes_is_a_field_like_any_other() -> None:
    found = request_outcome([b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \xff\xfe\r\n\r\n"])
    assert isinstance(found, tuple)
    assert found[0].fields.get("authorization") == "Basic \xff\xfe"  # Latin-1 text, as sent


# --- the proxy's CONNECT answer, over loopback ----------------------------------------------
async def connect_answer(raw: bytes) -> proxy.Answer:
    """What `tunnel` makes of a proxy that answers CONNECT with `raw`, then closes."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(raw)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        stream = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await proxy.tunnel(stream, "api.uk2.sheassure.net", 443,
                                      Proxy("127.0.0.1", port, "--proxy"), 3.0)
        finally:
            stream[1].transport.abort()


def test_connect_answers_are_read_by_the_codec() -> None:
    answer = asyncio.run(connect_answer(
        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n"
        b"Proxy-Authenticate: NTLM\r\nProxy-Authenticate: Negotiate\r\n"
        b"proxy-authenticate: Basic realm=\"a, b\", NTLM\r\n\r\n"))
    assert answer.status == 407 and answer.schemes == ("NTLM", "Negotiate", "Basic")
    assert asyncio.run(connect_answer(b"HTTP/1.0 200 Connection established\r\n\r\n")
                       ).status == 200
    garbage = asyncio.run(connect_answer(b"\x16\x03\x01\x00 hello\r\n\r\n"))
    assert garbage.status is None and garbage.kind is ProxyKind.NOT_HTTP


def test_a_superscript_status_is_not_http_not_a_crash() -> None:
    answer = asyncio.run(connect_answer(b"HTTP/1.1 \xb2\r\n\r\n"))
    assert answer.status is None and answer.kind is ProxyKind.NOT_HTTP
    assert answer.error == "not an HTTP answer: HTTP/1.1 ²"  # the line, as Latin-1 text


def test_five_thousand_schemes_are_cut_to_a_readable_few() -> None:
    token = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    names = [a + b for a in token for b in token][:5000]  # 14,999 bytes: within the head limit
    schemes = ",".join(names)
    answer = asyncio.run(connect_answer(
        b"HTTP/1.1 407 Auth\r\nContent-Length: 0\r\nProxy-Authenticate: "
        + schemes.encode() + b"\r\n\r\n"))
    assert answer.status == 407
    assert answer.schemes == tuple(names[:proxy.MAX_SCHEMES])


def test_an_error_page_title_is_read_within_its_caps() -> None:
    page = b"<html><title>Blocked \x1b[31mby policy</title>" + b"x" * 100000
    answer = asyncio.run(connect_answer(
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: " + str(len(page)).encode() + b"\r\n\r\n"
        + page))
    assert answer.status == 403 and answer.title == "Blocked \\x1b[31mby policy"
