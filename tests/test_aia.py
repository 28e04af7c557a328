"""The AIA fetch against hostile HTTP servers on loopback: redirects without end or to where
it must not go, answers too big, too slow, chunked, not HTTP, not a certificate; and the tls
stage falling back to its old diagnosis whenever the fetch does not tell.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from assure_doctor import trust
from assure_doctor.engine import run_check
from assure_doctor.model import StageResult
from assure_doctor.options import CheckOptions
from assure_doctor.probes import aia, certchain
from assure_doctor.probes.stage import Context
from assure_doctor.proxyconfig import ProxyRules
from assure_doctor.sandbox import pki
from assure_doctor.target import from_url

NOW = datetime.now(UTC)
DAY = timedelta(days=1)
Answer = Callable[[str, asyncio.StreamWriter], Awaitable[None]]


@cache
def root() -> pki.Issued:
    return pki.make_ca("AIA test Root")


@cache
def issuing() -> pki.Issued:
    return pki.make_ca("AIA test Issuing CA", root())


def der() -> bytes:
    return issuing().cert.public_bytes(Encoding.DER)


def response(status: str, body: bytes, *fields: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close", *fields]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@asynccontextmanager
async def http_server(answer: Answer) -> AsyncIterator[tuple[int, list[str]]]:
    """A plain-HTTP server on loopback: `answer(path, writer)` for each request; yields its
    port and the paths asked for."""
    paths: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ")[1].decode()
            paths.append(path)
            await answer(path, writer)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], paths
    finally:
        server.close()


def context(timeout: float = 2.0) -> Context:
    options = CheckOptions(timeout=timeout, proxy=ProxyRules(forced_direct=True))
    return Context(from_url("https://api.example.test/v1/ping"), options, None)


def fetch(answer: Answer, path: str = "/ca.crt") -> tuple[list[str], list[object] | str]:
    """What `aia.fetch` gives for a URL on a server answering so: the paths the server was
    asked for, and the certificates or the FetchError's text."""

    async def go() -> tuple[list[str], list[object] | str]:
        async with http_server(answer) as (port, paths):
            try:
                found: list[object] | str = list(
                    await aia.fetch(context(), f"http://127.0.0.1:{port}{path}"))
            except aia.FetchError as exc:
                found = str(exc)
            return paths, found

    return asyncio.run(go())


async def _certificate(_path: str, writer: asyncio.StreamWriter) -> None:
    writer.write(response("200 OK", der(), "Content-Type: application/pkix-cert"))


def test_a_certificate_is_fetched() -> None:
    paths, found = fetch(_certificate)
    assert paths == ["/ca.crt"] and isinstance(found, list) and len(found) == 1


def test_a_chunked_answer_is_read() -> None:
    async def chunked(_path: str, writer: asyncio.StreamWriter) -> None:
        body, rest = der()[:100], der()[100:]
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                     + f"{len(body):x}\r\n".encode() + body + b"\r\n"
                     + f"{len(rest):x};ext=1\r\n".encode() + rest + b"\r\n0\r\n\r\n")

    _, found = fetch(chunked)
    assert isinstance(found, list) and len(found) == 1


def test_an_answer_whose_server_keeps_the_connection_open_is_read_at_its_length() -> None:
    async def lingering(_path: str, writer: asyncio.StreamWriter) -> None:
        writer.write(response("200 OK", der()).replace(b"Connection: close",
                                                       b"Connection: keep-alive"))
        await writer.drain()
        await asyncio.Event().wait()  # never closes

    async def go() -> list[object]:
        async with http_server(lingering) as (port, _):
            async with asyncio.timeout(5):  # far more than reading it takes
                return list(await aia.fetch(context(), f"http://127.0.0.1:{port}/ca.crt"))

    assert len(asyncio.run(go())) == 1


def test_a_relative_redirect_is_followed() -> None:
    async def moved(path: str, writer: asyncio.StreamWriter) -> None:
        if path == "/old":
            writer.write(response("301 Moved", b"", "Location: /ca.crt"))
        else:
            await _certificate(path, writer)

    paths, found = fetch(moved, "/old")
    assert paths == ["/old", "/ca.crt"] and isinstance(found, list)


def test_redirects_are_followed_twice_at_most() -> None:
    async def loop(path: str, writer: asyncio.StreamWriter) -> None:
        writer.write(response("302 Found", b"", f"Location: {path}x"))

    paths, found = fetch(loop)
    assert paths == ["/ca.crt", "/ca.crtx", "/ca.crtxx"]
    assert isinstance(found, str) and "redirects" in found


@pytest.mark.parametrize("location", ["ldap://ldap.example/cn=CA", "http://u:p@127.0.0.1/x",
                                      "file:///etc/passwd", "http://[", "http://a b/"])
def test_a_redirect_to_where_it_must_not_go_is_not_followed(location: str) -> None:
    async def away(_path: str, writer: asyncio.StreamWriter) -> None:
        writer.write(response("302 Found", b"", f"Location: {location}"))

    paths, found = fetch(away)
    assert paths == ["/ca.crt"] and isinstance(found, str) and "not worth following" in found


@pytest.mark.parametrize(("data", "said"), [
    (response("404 Not Found", b"nope"), "HTTP 404"),
    (response("200 OK", b"<html>a portal</html>"), "no certificate"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP answer"),
    (b"", "not an HTTP answer"),
    (response("200 OK", b"x" * (200 * 1024)), "over 65536 bytes"),
    (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20000 + b"\r\n", "not an HTTP answer"),
])
def test_answers_that_are_no_certificate(data: bytes, said: str) -> None:
    async def send(_path: str, writer: asyncio.StreamWriter) -> None:
        writer.write(data)

    _, found = fetch(send)
    assert isinstance(found, str) and said in found, found


def test_an_endless_answer_is_cut_at_the_bound() -> None:
    sent = []

    async def endless(_path: str, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        for _ in range(4096):  # 64 MiB if nobody stopped reading
            writer.write(b"\x00" * 16384)
            await writer.drain()
            sent.append(1)

    start = time.monotonic()
    _, found = fetch(endless)
    assert isinstance(found, str) and "over" in found
    assert len(sent) < 4096 and time.monotonic() - start < 10


def _hops(*published: str) -> aia.Issuers | None:
    """Root -> A -> B -> leaf, the leaf naming B's URL (/b.crt) and B naming A's (/a.crt):
    what `issuers` finds when only the `published` paths are served."""
    bodies: dict[str, bytes] = {}

    async def publish(path: str, writer: asyncio.StreamWriter) -> None:
        body = bodies.get(path) if path in published else None
        writer.write(response("200 OK", body) if body else response("404 Not Found", b""))

    async def go() -> aia.Issuers | None:
        async with http_server(publish) as (port, _):
            base = f"http://127.0.0.1:{port}"
            a = pki.make_ca("Hop A", root(), ca_issuers=f"{base}/root.crt")
            b = pki.make_ca("Hop B", a, ca_issuers=f"{base}/a.crt")
            leaf = pki.make_leaf(["127.0.0.1"], b, NOW - DAY, NOW + DAY, f"{base}/b.crt")
            bodies.update({"/a.crt": a.cert.public_bytes(Encoding.DER),
                           "/b.crt": b.cert.public_bytes(Encoding.DER)})
            anchors = certchain.Anchors.of([root().cert])
            return await aia.issuers(context(), leaf.cert, anchors)

    return asyncio.run(go())


def test_two_missing_intermediates_are_fetched_one_above_the_other() -> None:
    found = _hops("/a.crt", "/b.crt")
    assert found is not None and found.error is None
    assert [c.subject.rfc4514_string() for c in found.certificates] == [
        "CN=Hop B,O=assure-doctor sandbox", "CN=Hop A,O=assure-doctor sandbox"]


def test_a_second_hop_that_fails_keeps_what_the_first_found() -> None:
    found = _hops("/b.crt")
    assert found is not None and found.error is not None and "HTTP 404" in found.error
    assert [c.subject.rfc4514_string() for c in found.certificates] == [
        "CN=Hop B,O=assure-doctor sandbox"]


# --- through the tls stage: a fetch that does not tell leaves the old diagnosis ------------
def _leaf_only_server(aia_url: str, tmp: Path) -> ssl.SSLContext:
    leaf = pki.make_leaf(["127.0.0.1"], issuing(), NOW - DAY, NOW + 30 * DAY, aia_url)
    (tmp / "leaf.pem").write_bytes(leaf.cert_pem)
    (tmp / "leaf.key").write_bytes(leaf.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "leaf.pem", tmp / "leaf.key")
    return context


def _tls_stage(answer: Answer, tmp: Path, bundle: bytes, timeout: float = 1.0
               ) -> tuple[StageResult, list[str]]:
    (tmp / "bundle.pem").write_bytes(bundle)

    async def go() -> tuple[StageResult, list[str]]:
        async with http_server(answer) as (aia_port, paths):
            tls = _leaf_only_server(f"http://127.0.0.1:{aia_port}/ca.crt", tmp)

            async def keyless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                              ) -> None:
                writer.close()

            api = await asyncio.start_server(keyless, "127.0.0.1", 0, ssl=tls)
            port = api.sockets[0].getsockname()[1]
            options = CheckOptions(timeout=timeout, no_ping=True,
                                   proxy=ProxyRules(forced_direct=True),
                                   trust=trust.load(str(tmp / "bundle.pem")))
            try:
                report = await run_check(from_url(f"https://127.0.0.1:{port}/v1/ping"),
                                         options, None)
            finally:
                api.close()
            return next(s for s in report.stages if s.name == "tls"), paths

    return asyncio.run(go())


def test_the_tls_stage_names_the_missing_intermediate(tmp_path: Path) -> None:
    stage, paths = _tls_stage(_certificate, tmp_path, root().cert_pem)
    assert stage.condition == "tls_certificate_error" and stage.causes[0].id == "platform"
    assert stage.evidence["missing_intermediate"].startswith("CN=AIA test Issuing CA")
    assert paths == ["/ca.crt"]


@pytest.mark.slow
def test_a_slow_aia_server_leaves_the_old_diagnosis_in_time(tmp_path: Path) -> None:
    async def stalls(_path: str, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()  # never answers; the fetch's deadline ends it

    start = time.monotonic()
    stage, paths = _tls_stage(stalls, tmp_path, root().cert_pem, timeout=1.0)
    assert time.monotonic() - start < 4  # one --timeout for the fetch, plus the handshakes
    assert stage.causes[0].id == "tls_interception"
    assert stage.evidence["aia_error"] == "timed out" and paths == ["/ca.crt"]
    assert "missing_intermediate" not in stage.evidence


def test_a_certificate_that_did_not_issue_the_leaf_leaves_the_old_diagnosis(tmp_path: Path
                                                                             ) -> None:
    async def other(_path: str, writer: asyncio.StreamWriter) -> None:
        writer.write(response("200 OK", root().cert.public_bytes(Encoding.DER)))

    stage, _ = _tls_stage(other, tmp_path, root().cert_pem)
    assert stage.causes[0].id == "tls_interception"
    assert "did not issue" in stage.evidence["aia_error"]


def test_an_intermediate_of_a_root_nobody_trusts_leaves_the_old_diagnosis(tmp_path: Path
                                                                           ) -> None:
    stage, paths = _tls_stage(_certificate, tmp_path, pki.make_ca("Unrelated Root").cert_pem)
    assert paths == ["/ca.crt"]
    assert stage.causes[0].id == "tls_interception"
    assert "does not verify either" in stage.evidence["aia_error"]
    assert [c["problem"] for c in stage.evidence["chain"]] == ["untrusted"]
