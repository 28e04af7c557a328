"""The proxy stage against real proxies on loopback, in-process: the sandbox's proxy (a tunnel,
407 for Basic and for NTLM, a policy's 403 page, 502) and proxies that answer as the test
says (503 and 504, silence, a close, no HTTP, a head past its limit, a reset). What each
answer means: the condition, the kind, the summary, the facts the ranking reads, the
evidence; the CONNECT request itself; and the error page read only as far as its title.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from assure_doctor.kinds import Condition, ConnectKind, ProxyKind, ProxyStep
from assure_doctor.model import Outcome, Status
from assure_doctor.options import CheckOptions
from assure_doctor.probes import proxy
from assure_doctor.probes.proxy import auth_schemes, offered_schemes, page_title
from assure_doctor.probes.results import ProxyFound, TcpFound
from assure_doctor.probes.stage import Context
from assure_doctor.proxyconfig import Proxy, ProxyRules
from assure_doctor.proxyconfig import load as load_proxy
from assure_doctor.sandbox import proxyserver
from assure_doctor.sandbox.stack import HOST
from assure_doctor.target import from_url
from tests.stages import TlsServer, context, run, sandbox, stages

URL = f"https://{HOST}/v1/ping"


def found(outcome: Outcome) -> ProxyFound:
    assert isinstance(outcome.found, ProxyFound)
    return outcome.found


def through(proxy_url: str, timeout: float = 1.5) -> Outcome:
    """dns, tcp and the proxy stage of a check of the API through `proxy_url`."""
    ctx = Context(from_url(URL), CheckOptions(timeout=timeout, proxy=load_proxy(
        proxy_url, False, {})), None)
    return run(ctx, "dns", "tcp", "proxy")


def answering(reply: bytes | None, close: bool = False, reset: bool = False) -> TlsServer:
    """A plain-TCP proxy that answers every CONNECT with `reply` (None: never answers)."""
    return TlsServer(None, answer=reply, close=close, reset=reset)


# --- the sandbox's proxy ---------------------------------------------------------------------
def test_an_open_proxy_tunnels_to_the_api_over_the_tcp_stages_connection(
        caplog: pytest.LogCaptureFixture) -> None:
    with sandbox("proxy-open") as api:
        url = api.proxy_url
        assert url is not None and api.proxy is not None
        ctx = context(api, proxy=load_proxy(url, False, {}))

        async def go() -> tuple[Outcome, bool]:
            try:
                outcome = await stages(ctx, "dns", "tcp", "proxy")
                tunnel = ctx.found(ProxyFound).tunnel
                assert tunnel is not None and tunnel.take() is not None  # for the tls stage
                tcp = ctx.found(TcpFound).connection
                return outcome, tcp is not None and tcp.take() is None  # taken by the proxy's
            finally:
                ctx.close_streams()

        with caplog.at_level(logging.INFO, "assure_doctor.proxy"):
            outcome, carried = asyncio.run(go())
        connects = list(api.proxy.log.connects)
    proxy_found = found(outcome)
    assert outcome.status is Status.PASS and outcome.condition is None
    assert outcome.summary.startswith(f"{url} opened a tunnel to {HOST}:{api.port} in ")
    assert outcome.summary == (f"{url} opened a tunnel to {HOST}:{api.port} in "
                               f"{proxy_found.ms:.0f} ms")
    assert (proxy_found.proxy, proxy_found.source, proxy_found.connect_status) == (
        url, "--proxy", 200)
    assert proxy_found.reason == "Connection established" and proxy_found.ms is not None
    assert proxy_found.proxy_authenticate == () and proxy_found.error_page_title is None
    assert connects == [{"method": "CONNECT", "authority": f"{HOST}:{api.port}",
                         "credentials": False}]
    assert carried  # the tcp stage's connection carried the CONNECT
    assert proxy_found.ms < 1000  # a tunnel has no page to wait for
    [said] = [r for r in caplog.records if "(Basic credentials: no)" in r.getMessage()]
    assert said.name == "assure_doctor.proxy"


def test_the_connect_request_names_the_api_and_keeps_the_connection_alive() -> None:
    with answering(b"HTTP/1.1 200 Connection established\r\n\r\n") as server:
        outcome = through(f"http://127.0.0.1:{server.port}")
        head = server.requests[0].decode()
    lines = head.split("\r\n")
    assert lines[0] == f"CONNECT {HOST}:443 HTTP/1.1"
    fields = dict(line.split(": ", 1) for line in lines[1:] if line)
    assert fields == {"Host": f"{HOST}:443", "User-Agent": "assure-doctor (proxy check)",
                      "Proxy-Connection": "keep-alive"}
    assert outcome.status is Status.PASS


def test_an_ipv6_api_address_is_bracketed_in_the_connect() -> None:
    with answering(b"HTTP/1.1 200 OK\r\n\r\n") as server:
        async def go() -> proxy.Answer:
            stream = await asyncio.open_connection("127.0.0.1", server.port)
            try:
                return await proxy.tunnel(stream, "2001:db8::1", 443,
                                          Proxy("127.0.0.1", server.port, "--proxy"), 2.0)
            finally:
                stream[1].transport.abort()

        answer = asyncio.run(go())
        head = server.requests[0].decode()
    assert answer.status == 200
    assert head.startswith("CONNECT [2001:db8::1]:443 HTTP/1.1\r\n")
    assert "\r\nHost: [2001:db8::1]:443\r\n" in head


@pytest.mark.parametrize("credentials", [False, True])
def test_a_proxy_wanting_basic_credentials(credentials: bool,
                                           caplog: pytest.LogCaptureFixture) -> None:
    with sandbox("proxy-auth-basic") as api:
        assert api.proxy_url is not None and api.proxy is not None
        url = api.proxy_url.replace("//", "//someone:wrong@") if credentials else api.proxy_url
        with caplog.at_level(logging.INFO, "assure_doctor.proxy"):
            outcome = run(context(api, proxy=load_proxy(url, False, {})), "dns", "tcp",
                          "proxy")
        sent = api.proxy.log.connects[0]["credentials"]
    masked = url.replace(":wrong@", ":****@")
    shown = f"{masked} answered CONNECT with 407 Proxy Authentication Required"
    assert outcome.status is Status.FAIL
    assert outcome.condition is Condition.PROXY_AUTH_REQUIRED
    assert outcome.summary == f"{shown}: the proxy wants credentials (Basic)" + (
        "; the credentials given were refused" if credentials else "")
    assert outcome.facts == {
        "proxy": masked, "proxy_source": "--proxy", "status_code": 407, "title": "no title",
        "schemes": "Basic", "proxy_authenticate": "Basic", "has_credentials": credentials,
        "kind": ProxyKind.ANSWERABLE}
    assert found(outcome).proxy_authenticate == ("Basic",)
    assert found(outcome).connect_status == 407 and found(outcome).tunnel is None
    assert sent is credentials
    said = "yes" if credentials else "no"
    assert any(f"(Basic credentials: {said})" in r.getMessage() for r in caplog.records)


def test_the_right_basic_credentials_open_the_tunnel() -> None:
    with sandbox("proxy-auth-basic") as api:
        assert api.proxy_url is not None
        url = api.proxy_url.replace("//", f"//{proxyserver.USER}:{proxyserver.PASSWORD}@")
        outcome = run(context(api, proxy=load_proxy(url, False, {})), "dns", "tcp", "proxy")
    assert outcome.status is Status.PASS and found(outcome).connect_status == 200


def test_a_proxy_wanting_only_what_we_cannot_answer() -> None:
    with sandbox("proxy-auth-ntlm") as api:
        assert api.proxy_url is not None
        url = api.proxy_url
        outcome = run(context(api, proxy=load_proxy(url, False, {})), "dns", "tcp", "proxy")
    assert outcome.condition is Condition.PROXY_AUTH_REQUIRED
    assert outcome.summary == (f"{url} answered CONNECT with 407 Proxy Authentication Required:"
                               " the proxy wants credentials (NTLM, Negotiate); assure-doctor"
                               " can answer only Basic")
    assert outcome.facts["kind"] is ProxyKind.UNANSWERABLE
    assert outcome.facts["schemes"] == "NTLM, Negotiate" and not outcome.facts[
        "has_credentials"]


def test_a_407_naming_no_scheme() -> None:
    with answering(b"HTTP/1.1 407 Auth\r\nContent-Length: 0\r\n\r\n") as server:
        outcome = through(f"http://127.0.0.1:{server.port}")
    assert outcome.facts["kind"] is ProxyKind.UNANSWERABLE
    assert outcome.facts["schemes"] == "none named"
    assert outcome.summary.endswith("wants credentials (none named); assure-doctor can answer "
                                    "only Basic")


def test_a_policy_refusal_is_named_with_its_page_title(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    with sandbox("proxy-denied") as api, caplog.at_level(logging.WARNING):
        assert api.proxy_url is not None
        url = api.proxy_url
        outcome = run(context(api, proxy=load_proxy(url, False, {})), "dns", "tcp", "proxy")
    title = f"Access Denied: {HOST} is blocked by the web filter policy"
    assert f"The proxy's error page: {title}" in [r.getMessage() for r in caplog.records]
    assert outcome.status is Status.FAIL and outcome.condition is Condition.PROXY_REFUSED
    assert outcome.summary == f"{url} answered CONNECT with 403 Forbidden ({title})"
    assert outcome.facts["kind"] is ProxyKind.REFUSED and outcome.facts["title"] == title
    assert outcome.facts["status_code"] == 403
    assert found(outcome).error_page_title == title and found(outcome).reason == "Forbidden"


def test_a_refusal_without_a_page_says_no_title() -> None:
    with answering(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope.") as server:
        url = f"http://127.0.0.1:{server.port}"
        outcome = through(url)
    assert outcome.summary == f"{url} answered CONNECT with 403 Forbidden"
    assert outcome.facts["title"] == "no title" and outcome.facts["kind"] is ProxyKind.REFUSED


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_proxy_that_cannot_reach_the_api(status: int) -> None:
    reply = f"HTTP/1.1 {status} Upstream\r\nContent-Length: 0\r\n\r\n".encode()
    with answering(reply) as server:
        url = f"http://127.0.0.1:{server.port}"
        outcome = through(url)
    assert outcome.condition is Condition.PROXY_UPSTREAM_FAILED
    assert outcome.facts["kind"] is ProxyKind.UPSTREAM
    assert outcome.summary == (f"{url} answered CONNECT with {status} Upstream: the proxy "
                               f"cannot reach {HOST}")


def test_the_sandbox_proxy_that_cannot_reach_the_api() -> None:
    with sandbox("proxy-upstream-502") as api:
        assert api.proxy_url is not None
        outcome = run(context(api, proxy=load_proxy(api.proxy_url, False, {})), "dns", "tcp",
                      "proxy")
    assert outcome.condition is Condition.PROXY_UPSTREAM_FAILED
    assert found(outcome).error_page_title == ("ERROR: The requested URL could not be "
                                               "retrieved")


def test_a_silent_proxy_is_named_with_the_wait() -> None:
    with answering(None) as server:
        url = f"http://127.0.0.1:{server.port}"
        outcome = through(url, timeout=0.3)
    assert outcome.condition is Condition.PROXY_UPSTREAM_FAILED
    assert outcome.facts["kind"] is ProxyKind.TIMEOUT
    assert outcome.summary == f"{url} gave no answer to CONNECT within 0.3 s"
    assert found(outcome).error == "no answer in time" and found(outcome).connect_status is None


@pytest.mark.parametrize(("reply", "close", "reset", "kind", "error"), [
    (b"", True, False, ProxyKind.CLOSED, "the proxy closed the connection"),
    (b"SSH-2.0-OpenSSH_9.6\r\nmore\r\n\r\n", False, False, ProxyKind.NOT_HTTP,
     "not an HTTP answer: SSH-2.0-OpenSSH_9.6"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 17000 + b"\r\n\r\n", False, False, ProxyKind.NOT_HTTP,
     "an answer head over 16384 bytes"),
    (None, False, True, ProxyKind.CLOSED, None),  # a reset: the error says which
])
def test_an_answer_that_is_no_proxys_is_named(reply: bytes | None, close: bool, reset: bool,
                                               kind: ProxyKind, error: str | None) -> None:
    with answering(reply, close=close, reset=reset) as server:
        url = f"http://127.0.0.1:{server.port}"
        outcome = through(url)
    said = found(outcome).error
    assert outcome.status is Status.FAIL and outcome.condition is Condition.PROXY_REFUSED
    assert outcome.facts["kind"] is kind
    assert said is not None and (said == error if error else "reset" in said.lower())
    assert outcome.summary == f"{url} did not answer CONNECT like an HTTP proxy: {said}"


def test_a_proxy_that_cannot_be_reached() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: a refusal
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        ctx = Context(from_url(URL), CheckOptions(timeout=1.0, proxy=load_proxy(url, False, {})),
                      None)
        ctx.outcomes["tcp"] = Outcome(Status.PASS, "connected", TcpFound("127.0.0.1"))
        outcome = asyncio.run(proxy.run(ctx))
    error = found(outcome).error
    assert outcome.status is Status.FAIL
    assert outcome.condition is Condition.PROXY_CONNECT_FAILED
    assert error and outcome.summary == f"cannot connect to the proxy {url}: {error}"
    assert outcome.facts == {"kind": ConnectKind.REFUSED, "step": ProxyStep.TCP, "proxy": url,
                             "proxy_source": "--proxy", "error": error}
    assert (found(outcome).proxy, found(outcome).source) == (url, "--proxy")


def test_without_a_proxy_the_stage_has_nothing_to_do() -> None:
    ctx = Context(from_url(URL), CheckOptions(proxy=ProxyRules(forced_direct=True)), None)
    outcome = asyncio.run(proxy.run(ctx))
    assert outcome.status is Status.SKIP
    assert outcome.summary == f"direct: no proxy applies ({ctx.route.reason})"
    assert found(outcome) == ProxyFound(source=ctx.route.source)


# --- the error page ---------------------------------------------------------------------------
def test_the_page_is_read_only_until_its_title() -> None:
    """A page whose title came, but whose body never ends, is not waited for."""
    page = b"<html><title>Blocked</title>"
    reply = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 100000\r\n\r\n" + page
    with answering(reply) as server:
        outcome = through(f"http://127.0.0.1:{server.port}", timeout=3.0)
    assert found(outcome).error_page_title == "Blocked"
    ms = found(outcome).ms
    assert ms is not None and ms < 1500  # not the 2 s an endless body may take


def test_a_page_that_never_ends_is_waited_for_two_seconds_at_most() -> None:
    reply = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 100000\r\n\r\n<html><body>blocked"
    with answering(reply) as server:
        outcome = through(f"http://127.0.0.1:{server.port}", timeout=5.0)
    ms = found(outcome).ms
    assert found(outcome).error_page_title is None
    assert ms is not None and 1900 < ms < 2900


def test_a_page_without_a_title_is_read_to_its_end() -> None:
    reply = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 11\r\n\r\nhello world"
    with answering(reply) as server:
        outcome = through(f"http://127.0.0.1:{server.port}", timeout=3.0)
    assert found(outcome).error_page_title is None
    ms = found(outcome).ms
    assert ms is not None and ms < 1500


@pytest.mark.parametrize(("value", "schemes"), [
    ('Basic realm="a, NTLM b"', ["Basic"]),  # a comma inside quotes separates nothing
    ('Basic realm="a", NTLM', ["Basic", "NTLM"]),
    ('Digest realm="x,y", Negotiate', ["Digest", "Negotiate"]),
])
def test_quoted_commas_separate_no_schemes(value: str, schemes: list[str]) -> None:
    assert auth_schemes(value) == schemes


def test_each_scheme_is_named_once() -> None:
    assert offered_schemes(["NTLM", "Basic realm=x, NTLM", "Negotiate"]) == (
        "NTLM", "Basic", "Negotiate")


def test_a_title_in_bytes_that_are_no_utf8_is_still_read() -> None:
    assert page_title(b"<title>Caf\xe9 blocked</title>") == "Caf\ufffd blocked"
