"""Certificate chains through a real nginx (Debian's package): a server that does not send its
intermediate, one that sends an expired intermediate, and one that sends the whole chain.

nginx runs on free loopback ports with a private prefix and config: one HTTPS server (the API,
answering 401 like the real one without a key) and one plain-HTTP server publishing the issuing
CA's certificate at the URL the leaf names (AIA caIssuers), with `stub_status` to count the
connections it accepted. The API's name is answered by the sandbox's DNS server, so the AIA
fetch resolves it through --resolver too; through squid, squid resolves it from its hosts file.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from assure_doctor.sandbox import dnsserver, pki
from assure_doctor.sandbox.stack import HOST
from tests.conftest import FAST, Run, needs, run_cli
from tests.monitoring import free_port
from tests.test_proxy_squid import AUTH, PASSWORD, USER, squid  # noqa: F401 (the fixture)
from tests.waiting import wait_until

AIA_PATH = "/issuing-ca.crt"
NOW = datetime.now(UTC)
DAY = timedelta(days=1)


@cache
def root() -> pki.Issued:
    return pki.make_ca("nginx test Root CA")


@cache
def issuing() -> pki.Issued:
    return pki.make_ca("nginx test Issuing CA 1", root())


@cache
def expired_issuing() -> pki.Issued:
    return pki.make_ca("nginx test Issuing CA 0", root(), NOW - 400 * DAY, NOW - 10 * DAY)


@dataclass
class Nginx:
    work: Path
    port: int
    aia_port: int

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}/v1/ping"

    @property
    def aia_url(self) -> str:
        return f"http://{HOST}:{self.aia_port}{AIA_PATH}"

    def aia_requests(self) -> int:
        """GETs of the issuing CA's certificate in the access log."""
        log = (self.work / "access.log").read_text()
        return len(re.findall(rf'"GET {re.escape(AIA_PATH)} HTTP/1\.[01]" 200 ', log))

    def accepted(self) -> int:
        """Connections nginx has accepted so far (stub_status), this question's included."""
        connection = http.client.HTTPConnection("127.0.0.1", self.aia_port, timeout=5)
        try:
            connection.request("GET", "/nginx_status")
            text = connection.getresponse().read().decode()
        finally:
            connection.close()
        match = re.search(r"\n\s*(\d+) (\d+) (\d+)", text)
        assert match, text
        return int(match.group(1))


def _config(work: Path, port: int, aia_port: int) -> str:
    temp = " ".join(f"{kind}_temp_path {work}/{kind};"
                    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {work}/access.log;
    {temp}
    types {{ application/pkix-cert crt; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {work}/chain.pem;
        ssl_certificate_key {work}/key.pem;
        default_type application/json;
        location / {{ return 401 '{{"message": "Missing API key"}}'; }}
    }}
    server {{
        listen 127.0.0.1:{aia_port};
        root {work}/pub;
        location = /nginx_status {{ stub_status; }}
    }}
}}
"""


@pytest.fixture
def nginx() -> Iterator[Callable[[Callable[[str], tuple[pki.Issued, bytes]]], Nginx]]:
    """Start nginx serving the certificate (and chain after it) that `serve(aia_url)` makes."""
    binary = needs("nginx", where="/usr/sbin")
    started: list[subprocess.Popen[bytes]] = []
    # Not pytest's tmp_path: run as root, nginx's workers drop to nobody.
    base = Path(tempfile.mkdtemp(prefix="assure-nginx-"))
    base.chmod(0o755)

    def start(serve: Callable[[str], tuple[pki.Issued, bytes]]) -> Nginx:
        work = base / f"nginx{len(started)}"
        (work / "pub").mkdir(parents=True)
        work.chmod(0o755)
        found = Nginx(work, free_port(), free_port())
        leaf, chain = serve(found.aia_url)
        (work / "chain.pem").write_bytes(leaf.cert_pem + chain)
        (work / "key.pem").write_bytes(leaf.key_pem)
        (work / "pub" / AIA_PATH.lstrip("/")).write_bytes(
            issuing().cert.public_bytes(Encoding.DER))
        (work / "nginx.conf").write_text(_config(work, found.port, found.aia_port))
        for path in work.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        with (work / "stderr").open("wb") as stderr:
            process = subprocess.Popen([binary, "-p", str(work), "-c", str(work / "nginx.conf"),
                                        "-e", str(work / "error.log")],
                                       stdout=subprocess.DEVNULL, stderr=stderr,
                                       start_new_session=True)
        started.append(process)

        def listening() -> bool:
            if process.poll() is not None:
                raise AssertionError((work / "error.log").read_text()[-2000:])
            return found.accepted() >= 0

        wait_until(listening, 20, "nginx to listen")
        return found

    yield start
    for process in started:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    shutil.rmtree(base, ignore_errors=True)


class Dns:
    """The sandbox's DNS server, answering HOST with 127.0.0.1, on its own thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        transport, self.server = self.loop.run_until_complete(
            dnsserver.start(dnsserver.Zone(HOST, "answer")))
        self.port = transport.get_extra_info("sockname")[1]
        self.ready.set()
        self.loop.run_forever()
        transport.close()
        self.loop.close()

    @property
    def resolver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def lookups(self, rdtype: str) -> int:
        return sum(1 for name, kind in self.server.queries if name == HOST and kind == rdtype)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def dns() -> Iterator[Dns]:
    server = Dns()
    yield server
    server.stop()


def _ca_bundle(tmp_path: Path) -> str:
    bundle = tmp_path / "root.pem"
    bundle.write_bytes(root().cert_pem)
    return str(bundle)


def _leaf(issuer: pki.Issued, aia_url: str) -> pki.Issued:
    return pki.make_leaf([HOST, "127.0.0.1"], issuer, NOW - 30 * DAY, NOW + 60 * DAY, aia_url)


def _check(server: Nginx, dns: Dns, tmp_path: Path, *extra: str) -> Run:
    run = run_cli("check", "--url", server.url, "--resolver", dns.resolver, "--ca-bundle",
                  _ca_bundle(tmp_path), "--no-ping", *FAST, *extra)
    assert "Traceback" not in run.stderr, run.stderr
    return run


def _tls(run: Run) -> dict[str, Any]:
    return run.stage("tls")


def test_a_leaf_sent_alone_is_a_missing_intermediate_fetched_once(
        nginx: Callable[..., Nginx], dns: Dns, tmp_path: Path) -> None:
    server = nginx(lambda aia: (_leaf(issuing(), aia), b""))
    run = _check(server, dns, tmp_path, "--no-proxy", "--json")
    tls = _tls(run)
    assert run.returncode == 1
    assert tls["status"] == "fail" and tls["condition"] == "tls_certificate_error", tls
    assert [c["id"] for c in tls["causes"]] == ["platform", "tls_interception"]
    evidence = tls["evidence"]
    assert evidence["missing_intermediate"].startswith("CN=nginx test Issuing CA 1")
    assert evidence["aia_url"] == server.aia_url
    assert [link["problem"] for link in evidence["chain"]] == ["missing_issuer"]
    assert evidence["chain"][0]["subject"].startswith(f"CN={HOST}")
    assert "nginx test Issuing CA 1" in tls["causes"][0]["advice"]
    assert server.aia_requests() == 1
    assert dns.lookups("A") == 2  # the dns stage's, then the AIA fetch's: via --resolver

    human = _check(server, dns, tmp_path, "--no-proxy")
    assert "ISSUER NOT SENT" in human.stdout and "missing_intermediate: CN=nginx" in human.stdout


def test_an_expired_intermediate_is_the_platforms_not_the_clocks(
        nginx: Callable[..., Nginx], dns: Dns, tmp_path: Path) -> None:
    server = nginx(lambda aia: (_leaf(expired_issuing(), aia), expired_issuing().cert_pem))
    run = _check(server, dns, tmp_path, "--no-proxy", "--json")
    tls = _tls(run)
    assert tls["condition"] == "tls_certificate_error"
    assert [c["id"] for c in tls["causes"]] == ["platform", "clock", "config"]
    assert [link["problem"] for link in tls["evidence"]["chain"]] == [None, "expired"]
    advice = tls["causes"][0]["advice"]
    assert "intermediate certificate CN=nginx test Issuing CA 0" in advice
    assert f"{(NOW - 10 * DAY):%Y-%m-%d}" in advice  # its window
    assert "Issuing CA 0" in tls["summary"]
    assert server.aia_requests() == 0


def test_a_full_chain_passes_with_one_connection_and_no_aia_fetch(
        nginx: Callable[..., Nginx], dns: Dns, tmp_path: Path) -> None:
    server = nginx(lambda aia: (_leaf(issuing(), aia), issuing().cert_pem))
    before = server.accepted()
    run = _check(server, dns, tmp_path, "--no-proxy", "--json")
    after = server.accepted()
    assert run.returncode == 0, run.stdout
    tls = _tls(run)
    assert tls["status"] == "pass"
    assert [link["problem"] for link in tls["evidence"]["chain"]] == [None, None]
    assert after - before == 2  # the check's one connection, and the second stub_status
    assert server.aia_requests() == 0


def test_the_aia_fetch_goes_through_the_proxy_with_its_credentials(
        nginx: Callable[..., Nginx], dns: Dns, tmp_path: Path,
        squid: Callable[[str], str]) -> None:  # noqa: F811 (the fixture)
    server = nginx(lambda aia: (_leaf(issuing(), aia), b""))
    proxy = squid(AUTH).replace("http://", f"http://{USER}:{PASSWORD}@")
    run = _check(server, dns, tmp_path, "--proxy", proxy, "--json")
    assert PASSWORD not in run.stdout + run.stderr
    assert run.stage("proxy")["status"] == "pass"
    tls = _tls(run)
    assert tls["condition"] == "tls_certificate_error", tls
    assert tls["causes"][0]["id"] == "platform"
    assert tls["evidence"]["aia_url"] == server.aia_url
    assert server.aia_requests() == 1
    assert dns.lookups("A") == 1  # the dns stage only: squid resolved the AIA host
    port = proxy.rsplit(":", 1)[1]
    work = next(conf.parent for conf in Path(tempfile.gettempdir()).glob(
        "assure-squid-*/squid*/squid.conf") if f"http_port 127.0.0.1:{port}\n" in conf.read_text())
    assert f"GET {server.aia_url}" in (work / "access.log").read_text()
