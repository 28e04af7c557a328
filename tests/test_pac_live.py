"""PACs through real components: served over HTTP(S) by the sandbox's PAC server on 127.0.0.1,
read from disk, evaluated by pypac in a process of its own, and (with Debian's squid) the route
a PAC chose carrying a CONNECT tunnel to the sandbox's HTTPS API.

Evaluation only for the API's name: nothing connects to a sheassure.net host, and the PACs here
make no DNS lookup of it (the namespace test makes its own, inside its own namespace).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import certifi
import pytest

from assure_doctor.pac.decide import decide
from assure_doctor.pac.errors import (
    PacError,
    PacEvalError,
    PacEvalTimeout,
    PacFetchError,
    PacFetchTimeout,
    PacTimeout,
)
from assure_doctor.pac.fetch import MAX_PAC_BYTES
from assure_doctor.pac.location import PacLocation, PacSource, from_flag
from assure_doctor.pac.rules import PacDecision, RouteKind
from assure_doctor.sandbox import pki
from assure_doctor.sandbox.pacserver import PacReply, PacServer, script_returning
from assure_doctor.sandbox.stack import HOST, Sandbox, sandbox_ca
from tests import netns
from tests.conftest import FAST, run_cli
from tests.test_proxy_squid import OPEN, squid  # noqa: F401  (the squid fixture)

API_URL = "https://api.uk2.sheassure.net/v1/ping"
# Chooses by name only: evaluating it for the API makes no DNS lookup.
CORPORATE = b"""
function FindProxyForURL(url, host) {
  if (isPlainHostName(host) || dnsDomainIs(host, ".corp.example")) return "DIRECT";
  if (shExpMatch(host, "*.sheassure.net") && url.substring(0, 6) == "https:")
    return "PROXY 127.0.0.1:3128; DIRECT";
  return "DIRECT";
}
"""
LOOP = b"function FindProxyForURL(url, host) { while (true) {} }"


def certifi_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


def run_decide(locations: list[PacLocation], url: str = API_URL, timeout: float = 5.0,
               context: ssl.SSLContext | None = None) -> PacDecision | None:
    return asyncio.run(decide(locations, url, timeout=timeout,
                              ssl_context=context or certifi_context()))


@pytest.fixture
def server() -> Iterator[PacServer]:
    with PacServer() as started:
        yield started


def served(server: PacServer, body: bytes, path: str = "/proxy.pac", **reply: object
           ) -> PacLocation:
    server.set(path, PacReply(body, **reply))  # type: ignore[arg-type]
    return from_flag(server.url(path))


def evaluator_children() -> list[int]:
    """Our own processes still running the PAC evaluator (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == os.getpid() and b"_child.py" in cmdline:
            found.append(int(entry.name))
    return found


# --- served over HTTP, evaluated ----------------------------------------------------------

def test_a_served_pac_decides_the_apis_route(server: PacServer) -> None:
    location = served(server, CORPORATE)
    found = run_decide([location])
    assert found is not None
    assert found.evidence() == {"source": "--pac", "url": server.url(),
                                "rule": "PROXY 127.0.0.1:3128; DIRECT"}
    assert [(r.kind, r.authority) for r in found.usable] == [
        (RouteKind.PROXY, "127.0.0.1:3128"), (RouteKind.DIRECT, None)]
    assert found.usable[0].to_proxy().masked_url == "http://127.0.0.1:3128"
    # The same script sends another host direct: it was run for the URL it was given.
    other = run_decide([location], "https://portal.corp.example/")
    assert other is not None and other.rule == "DIRECT"
    assert [r.path for r in server.requests] == ["/proxy.pac", "/proxy.pac"]
    assert "assure-doctor" in server.requests[0].headers["user-agent"]


def test_a_pac_over_https_is_verified_with_the_ca_bundle(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    leaf = pki.make_leaf(["127.0.0.1"], sandbox_ca(), now - timedelta(days=1),
                         now + timedelta(days=30))
    (tmp_path / "cert.pem").write_bytes(leaf.cert_pem)
    (tmp_path / "key.pem").write_bytes(leaf.key_pem)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    with PacServer(tls=tls) as server:
        location = served(server, CORPORATE)
        with_bundle = certifi_context()
        with_bundle.load_verify_locations(cadata=sandbox_ca().cert_pem.decode())
        found = run_decide([location], context=with_bundle)
        assert found is not None and found.rule == "PROXY 127.0.0.1:3128; DIRECT"
        with pytest.raises(PacFetchError, match="certificate did not verify") as caught:
            run_decide([location])
        assert not isinstance(caught.value, PacTimeout)


def test_redirects_are_followed_a_few_times(server: PacServer) -> None:
    served(server, CORPORATE)
    moved = served(server, b"", "/old.pac", status=302,
                   headers=(("Location", server.url()),))
    found = run_decide([moved])
    assert found is not None and found.rule.startswith("PROXY 127.0.0.1:3128")
    loop = served(server, b"", "/loop.pac", status=302,
                  headers=(("Location", server.url("/loop.pac")),))
    with pytest.raises(PacFetchError, match="redirects"):
        run_decide([loop])


def test_a_missing_pac_is_a_fetch_error_with_the_status(server: PacServer) -> None:
    with pytest.raises(PacFetchError, match="HTTP 404 Not Found") as caught:
        run_decide([from_flag(server.url("/nothing.pac"))])
    assert str(caught.value).startswith("the PAC given with --pac: ")
    assert caught.value.source == "--pac" and caught.value.url == server.url("/nothing.pac")


@pytest.mark.parametrize("length", [True, False])
def test_an_oversized_pac_is_refused(server: PacServer, length: bool) -> None:
    body = b"//" + b"x" * MAX_PAC_BYTES
    with pytest.raises(PacFetchError, match="larger than 1024 KiB"):
        run_decide([served(server, body, length=length)])


def test_a_compressed_pac_is_bounded_after_decompression(server: PacServer) -> None:
    bomb = gzip.compress(b"/" * (8 * MAX_PAC_BYTES))
    assert len(bomb) < MAX_PAC_BYTES // 20
    location = served(server, bomb, headers=(("Content-Encoding", "gzip"),))
    with pytest.raises(PacFetchError, match="larger than 1024 KiB"):
        run_decide([location])
    small = served(server, gzip.compress(CORPORATE), "/small.pac",
                   headers=(("Content-Encoding", "gzip"),))
    found = run_decide([small])
    assert found is not None and found.rule == "PROXY 127.0.0.1:3128; DIRECT"


@pytest.mark.slow
def test_a_slow_pac_server_is_cut_at_the_timeout(server: PacServer) -> None:
    location = served(server, CORPORATE, delay=30)
    start = time.monotonic()
    with pytest.raises(PacFetchTimeout, match=r"within 0\.5 s") as caught:
        run_decide([location], timeout=0.5)
    assert time.monotonic() - start < 3
    assert isinstance(caught.value, PacFetchError) and isinstance(caught.value, PacTimeout)


def test_a_pac_server_that_is_not_there_is_a_fetch_error() -> None:
    with PacServer() as gone:
        url = gone.url()
    with pytest.raises(PacFetchError, match=r"Connection refused \(ECONNREFUSED\)") as caught:
        run_decide([from_flag(url)])
    assert not isinstance(caught.value, PacTimeout)


# --- evaluation failures ------------------------------------------------------------------

@pytest.mark.slow
def test_an_endless_loop_is_cut_at_the_deadline_and_its_process_killed(server: PacServer
                                                                       ) -> None:
    location = served(server, LOOP)
    start = time.monotonic()
    with pytest.raises(PacEvalTimeout, match="did not return within 1 s") as caught:
        run_decide([location], timeout=1.0)
    assert 1.0 <= time.monotonic() - start < 4
    assert isinstance(caught.value, PacEvalError) and isinstance(caught.value, PacTimeout)
    if sys.platform == "linux":
        assert evaluator_children() == []


def test_a_syntax_error_is_an_evaluation_error(server: PacServer) -> None:
    location = served(server, b"function FindProxyForURL(url, host) { return ")
    with pytest.raises(PacEvalError, match=r"not a valid script \(SyntaxError") as caught:
        run_decide([location])
    assert not isinstance(caught.value, PacTimeout)


def test_a_login_page_instead_of_a_pac_says_so(server: PacServer) -> None:
    page = b"<html><head><title>Sign in</title></head><body>Sign in</body></html>"
    location = served(server, page, content_type="text/html; charset=utf-8")
    with pytest.raises(PacEvalError, match="sent text/html; charset=utf-8: a login or error"):
        run_decide([location])


@pytest.mark.parametrize(("script", "why"), [
    (b"var proxy = 'PROXY a:1';", "defines no FindProxyForURL function"),
    (b"function FindProxyForURL(u, h) { if (h != '0.0.0.0') throw new Error('no rule'); "
     b"return 'DIRECT'; }", r"FindProxyForURL failed \(Error: no rule\)"),
    (b"function FindProxyForURL(u, h) { return null; }", "returned null or undefined"),
    (b"function FindProxyForURL(u, h) { return 8080; }", "returned a number"),
    (b"function FindProxyForURL(u, h) { return 'PROXY'; }", r"returned no route \('PROXY'\)"),
    (b"function FindProxyForURL(u, h) { var a = []; while (true) a.push('x'.repeat(1e6)); }",
     "ran out of memory"),
])
def test_scripts_that_give_no_route_say_why(server: PacServer, script: bytes, why: str
                                            ) -> None:
    with pytest.raises(PacEvalError, match=why) as caught:
        run_decide([served(server, script)], timeout=20)
    assert "\n" not in str(caught.value)


def test_the_script_sees_neither_our_environment_nor_our_files(
        server: PacServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASSURE_API_KEY", "sbx_pac_must_not_see_this")
    module = tmp_path / "secret.js"
    module.write_text('module.exports = "sbx-file-secret";\n')
    script = """
    function FindProxyForURL(url, host) {
      var env = "", file = "";
      try { env = JSON.stringify(process.env); } catch (e) {}
      try { file = String(require(MODULE)); } catch (e) {}
      return "PROXY " + (env.indexOf("sbx_pac") >= 0 ? "env-leaked" : "env-clean") + "-"
        + (file.indexOf("sbx-file") >= 0 ? "file-read" : "file-unread") + ":1";
    }
    """.replace("MODULE", json.dumps(str(module)))
    found = run_decide([served(server, script.encode())])
    assert found is not None and found.rule == "PROXY env-clean-file-unread:1"


@pytest.mark.slow
def test_the_scripts_console_cannot_pass_for_a_lookup_or_an_answer(server: PacServer
                                                                   ) -> None:
    talks = b"""function FindProxyForURL(url, host) {
      console.log('{"rule": "PROXY evil:1"}'); console.error('dns-start "spoof.test"');
      return "DIRECT"; }"""
    found = run_decide([served(server, talks)])
    assert found is not None and found.rule == "DIRECT"
    loops = b"""function FindProxyForURL(url, host) {
      console.error('dns-start "spoof.test"'); while (true) {} }"""
    with pytest.raises(PacEvalTimeout, match=r"\(a loop\?\)"):
        run_decide([served(server, loops, "/loops.pac")], timeout=1.0)


def test_dns_functions_resolve_through_the_operating_system(server: PacServer) -> None:
    script = b"""function FindProxyForURL(url, host) {
      return "PROXY " + dnsResolve("localhost") + ":3128; "
        + (isResolvable("127.0.0.1") ? "DIRECT" : "PROXY unresolvable:1");
    }"""
    found = run_decide([served(server, script)])
    assert found is not None and found.rule == "PROXY 127.0.0.1:3128; DIRECT"


# --- from a file --------------------------------------------------------------------------

def test_a_pac_file_on_disk(tmp_path: Path) -> None:
    pac = tmp_path / "proxy.pac"
    pac.write_bytes(b"\xef\xbb\xbf" + CORPORATE)  # a byte-order mark, as Notepad writes
    found = run_decide([from_flag(str(pac))])
    assert found is not None and found.url == str(pac)
    assert found.rule == "PROXY 127.0.0.1:3128; DIRECT"
    uri = run_decide([from_flag(pac.as_uri())])
    assert uri is not None and uri.rule == found.rule


def test_a_symlinked_pac_is_refused_not_followed(tmp_path: Path) -> None:
    (tmp_path / "real.pac").write_bytes(CORPORATE)
    (tmp_path / "link.pac").symlink_to(tmp_path / "real.pac")
    with pytest.raises(PacFetchError, match="--pac: a symbolic link"):
        run_decide([from_flag(str(tmp_path / "link.pac"))])


def test_a_fifo_or_a_device_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "proxy.pac"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(PacFetchError, match="not a regular file"):
        run_decide([from_flag(str(fifo))], timeout=30)
    with pytest.raises(PacFetchError, match="not a regular file"):
        run_decide([from_flag("/dev/zero")], timeout=30)
    assert time.monotonic() - start < 5


def test_a_missing_file_is_named_by_the_flag_not_its_path(tmp_path: Path) -> None:
    with pytest.raises(PacFetchError) as caught:
        run_decide([from_flag(str(tmp_path / "sbx_SecretLookingName"))])
    assert str(caught.value) == "--pac: cannot read (No such file or directory)"


# --- several locations: WPAD, then the configured URL -------------------------------------

def test_wpad_candidates_that_are_not_there_are_skipped(server: PacServer) -> None:
    served(server, CORPORATE, "/wpad.dat")
    missing = PacLocation(PacSource.WPAD, server.url("/missing/wpad.dat"))
    there = PacLocation(PacSource.WPAD, server.url("/wpad.dat"))
    found = run_decide([missing, there])
    assert found is not None and found.source is PacSource.WPAD
    assert found.url == server.url("/wpad.dat")
    assert run_decide([missing]) is None
    assert run_decide([]) is None


def test_a_configured_url_that_fails_is_an_error_naming_it(server: PacServer) -> None:
    missing = PacLocation(PacSource.WPAD, server.url("/missing/wpad.dat"))
    url = server.url("/gone.pac").replace("http://", "http://ops:pac-pw-77@")
    configured = PacLocation(PacSource.WINDOWS, url)
    with pytest.raises(PacFetchError) as caught:
        run_decide([missing, configured])
    message = str(caught.value)
    assert message.startswith("the PAC at http://ops:****@127.0.0.1:")
    assert "Windows AutoConfigURL" in message and "HTTP 404" in message
    assert "pac-pw-77" not in message and caught.value.source == "windows_autoconfig_url"
    assert server.requests[-1].headers["authorization"].startswith("Basic ")


def test_every_failure_is_a_pac_error(server: PacServer) -> None:
    for location in (from_flag(server.url("/nothing.pac")), served(server, b"}{")):
        with pytest.raises(PacError):
            run_decide([location])


# --- the route a PAC chose, through a real squid ------------------------------------------

def test_the_first_route_a_pac_chose_tunnels_through_squid(
        squid: Callable[[str], str], healthy: Sandbox, server: PacServer) -> None:  # noqa: F811
    from assure_doctor.probes.connect import connect
    from assure_doctor.probes.proxy import tunnel

    proxy_url = squid(OPEN)
    port = int(proxy_url.rpartition(":")[2])
    location = served(server, script_returning(
        f"SOCKS5 127.0.0.1:1; PROXY 127.0.0.1:{port}; DIRECT"))
    found = run_decide([location], healthy.url)
    assert found is not None
    first = found.usable[0]
    assert first.authority == f"127.0.0.1:{port}"
    assert found.routes[0].kind is RouteKind.SOCKS5 and not found.routes[0].usable

    async def through() -> tuple[int | None, bytes]:
        """CONNECT through the route, TLS to the API, and a keyless GET of the ping."""
        proxy = first.to_proxy("pac")
        reader, writer = await connect(proxy.host, proxy.port, 5)
        answer = await tunnel((reader, writer), HOST, healthy.port, proxy, 5)
        head = b""
        if answer.status == 200:
            context = certifi_context()
            context.load_verify_locations(cadata=sandbox_ca().cert_pem.decode())
            await writer.start_tls(context, server_hostname=HOST)
            writer.write(f"GET /v1/ping HTTP/1.1\r\nHost: {HOST}\r\n"
                         "Connection: close\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
        return answer.status, head

    status, head = asyncio.run(through())
    assert status == 200 and head.startswith(b"HTTP/1.1 401 ")  # the API asks for its key
    assert [request["path"] for request in healthy.traffic.requests] == ["/v1/ping"]


def test_the_check_goes_through_squid_because_the_pac_said_so(
        squid: Callable[[str], str], healthy: Sandbox, server: PacServer) -> None:  # noqa: F811
    """`check --pac`: the PAC, served over HTTP, sends the API (and only the API) through
    squid after a proxy that is not there; the whole check follows it, one TLS connection."""
    proxy_url = squid(OPEN)
    port = int(proxy_url.rpartition(":")[2])
    # 127.0.0.2 is loopback too, where squid does not listen: refused.
    rule = f"PROXY 127.0.0.2:{port}; PROXY 127.0.0.1:{port}; DIRECT"
    script = ("function FindProxyForURL(url, host) {\n"
              f"  if (host == {json.dumps(HOST)}) return {json.dumps(rule)};\n"
              "  return 'DIRECT';\n}\n").encode()
    location = served(server, script)
    args = [a for a in healthy.check_args() if a != "--no-proxy"]
    run = run_cli("check", *args, *FAST, "--pac", location.text, "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    proxy = run.stage("proxy")
    assert proxy["status"] == "pass" and proxy["evidence"]["connect_status"] == 200
    assert proxy["evidence"]["proxy"] == proxy_url and proxy["evidence"]["source"] == "pac"
    pac = proxy["evidence"]["pac"]
    assert {key: pac[key] for key in ("source", "url", "rule", "chosen")} == {
        "source": "--pac", "url": server.url(), "rule": rule,
        "chosen": f"PROXY 127.0.0.1:{port}"}
    assert [s["route"] for s in pac["skipped"]] == [f"PROXY 127.0.0.2:{port}"]
    assert "refused" in pac["skipped"][0]["reason"].lower()
    assert run.stage("tcp")["evidence"]["address"] == "127.0.0.1"
    assert run.stage("tcp")["evidence"]["port"] == port
    assert healthy.traffic.connections == 1  # one TLS connection to the API, through squid
    assert healthy.traffic.keyed == 1
    assert [r.path for r in server.requests] == ["/proxy.pac"]  # fetched once
    human = run_cli("check", *args, *FAST, "--pac", location.text, "--no-history")
    assert f'returned "{rule}": took PROXY 127.0.0.1:{port}' in human.stdout
    assert f"passed over PROXY 127.0.0.2:{port}: Connection refused" in human.stdout


# --- DNS lookups a PAC makes, in a namespace of our own -----------------------------------

EVALUATE_IN_NAMESPACE = """
import asyncio, json, sys
from assure_doctor.pac.errors import PacError
from assure_doctor.pac.location import PacLocation, PacSource
from assure_doctor.pac.fetch import PacScript
from assure_doctor.pac.evaluate import evaluate
script = sys.stdin.read()
location = PacLocation(PacSource.FLAG, "/ns.pac")
try:
    found = asyncio.run(evaluate(PacScript(location, script, len(script), None, 0),
                                 "https://api.uk2.sheassure.net/v1/ping", timeout=2))
    print(json.dumps({"rule": found.rule}))
except PacError as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
"""
SWALLOW_DNS = """
import socket
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 53))
print("ready", flush=True)
while True:
    sock.recv(4096)
"""


@pytest.mark.slow
def test_pac_dns_follows_the_hosts_file_and_a_silent_server_is_named(tmp_path: Path) -> None:
    netns.require()
    with netns.lab() as lab:
        ns = lab.namespace("pac")
        etc = Path("/etc/netns") / ns
        etc.mkdir(parents=True)
        try:
            (etc / "hosts").write_text("127.0.0.1 localhost\n198.18.7.7 pac-proxy.test\n")
            (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:5\n")
            swallow = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c",
                                        SWALLOW_DNS], stdout=subprocess.PIPE)
            lab.processes.append(swallow)
            assert swallow.stdout is not None and swallow.stdout.readline() == b"ready\n"

            def evaluate_in_namespace(script: str) -> dict[str, str]:
                done = subprocess.run(
                    ["ip", "netns", "exec", ns, sys.executable, "-c", EVALUATE_IN_NAMESPACE],
                    input=script, capture_output=True, text=True, timeout=60,
                    env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
                assert done.returncode == 0, done.stderr
                result: dict[str, str] = json.loads(done.stdout)
                return result

            pinned = evaluate_in_namespace(
                'function FindProxyForURL(u, h) { return "PROXY " + dnsResolve("pac-proxy.test")'
                ' + ":3128"; }')
            assert pinned == {"rule": "PROXY 198.18.7.7:3128"}
            start = time.monotonic()
            silent = evaluate_in_namespace(
                'function FindProxyForURL(u, h) { return isResolvable("slow.pac.test") ? '
                '"DIRECT" : "PROXY 127.0.0.1:1"; }')
            assert time.monotonic() - start < 30
            assert silent["error"] == "PacEvalTimeout"
            assert "waiting for DNS to answer for slow.pac.test" in silent["message"]
        finally:
            for file in etc.iterdir():
                file.unlink()
            etc.rmdir()
