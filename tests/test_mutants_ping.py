"""The ping stage against real HTTPS on loopback, in-process: the keyed request it sends over
the connection the earlier stages verified (and opens again only when the server closed it),
what each answer means (status, body cut to its bound, headers kept, Location, Retry-After,
the second clock sample), how it retries as the guide says, and what a failure of the
connection or the protocol is named. The guide's status table at its boundaries.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from email.utils import formatdate

import pytest

from assure_doctor import __version__, trust
from assure_doctor.kinds import CertKind, Condition, ConnectKind, HandshakeKind, HttpKind
from assure_doctor.model import Outcome, Status
from assure_doctor.probes.ping import classify
from assure_doctor.probes.results import PingAttempt, PingFound
from assure_doctor.sandbox.stack import HOST, proxy_ca, sandbox_intermediate
from tests.stages import TlsServer, context, leaf, run, sandbox, stages, tls_context

KEY = "k-0123456789abcdef0123456789"
BODY = b'{"message": "Ping successful"}'


def found(outcome: Outcome) -> PingFound:
    assert isinstance(outcome.found, PingFound)
    return outcome.found


def reply(status: str = "200 OK", body: bytes = BODY, *fields: str, length: int | None = None,
          date: bool = True) -> bytes:
    """An HTTP/1.1 answer, dated now unless told, framed by Content-Length (`length`, when
    given, promises more than is sent)."""
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body) if length is None else length}"]
    if date:
        head.append(f"Date: {formatdate(None, usegmt=True)}")
    return ("\r\n".join([*head, *fields]) + "\r\n\r\n").encode() + body


def server(answer: bytes | None, close: bool = False) -> TlsServer:
    return TlsServer(leaf(), sandbox_intermediate(), answer=answer, close=close)


def pinged(api: TlsServer, *names: str, timeout: float = 1.5, **options: object) -> Outcome:
    """The tls stage (verified with the sandbox's root), the named stages, then the ping."""
    ctx = tls_context(api.port, trust.load(str(api.bundle)), timeout, key=KEY, **options)
    return run(ctx, "tls", *names, "ping")


def fields_of(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    return lines[0], [(line.split(": ", 1)[0], line.split(": ", 1)[1]) for line in lines[1:]
                      if line]


# --- a healthy ping ------------------------------------------------------------------------------
def test_a_healthy_ping_goes_over_the_clocks_verified_connection() -> None:
    headers = ("Server: gateway", "Via: 1.1 edge", "Set-Cookie: session=secret",
               "X-Request-Id: r-1", "Content-Type: application/json")
    with server(reply("200 OK", BODY, *headers)) as api:
        outcome = pinged(api, "clock")
        connections, requests = api.connections, list(api.requests)
    ping_found = found(outcome)
    assert outcome.status is Status.PASS and outcome.condition is None
    assert outcome.summary == (f"HTTP 200 in {ping_found.history[0].ms:.0f} ms: ping "
                               "successful")
    assert connections == 1 and len(requests) == 2  # the clock's request, then the ping's
    line, sent = fields_of(requests[1])
    assert line == "GET /v1/ping HTTP/1.1"
    assert sent == [("Host", f"{HOST}:{api.port}"), ("User-Agent", f"assure-doctor/{__version__}"),
                    ("Accept", "application/json"), ("Accept-Encoding", "identity"),
                    ("x-api-key", KEY)]
    assert (ping_found.status_code, ping_found.attempts, ping_found.response_body) == (
        200, 1, BODY.decode())
    assert ping_found.history == (PingAttempt(200, None, ping_found.history[0].ms, None),)
    assert ping_found.history[0].ms > 0 and ping_found.address == "127.0.0.1"
    assert (ping_found.reused, ping_found.opened) == (1, 0)
    assert ping_found.location is None and ping_found.retry_after is None
    assert ping_found.error is None
    kept = dict(ping_found.headers)
    assert [name for name, _ in ping_found.headers] == [
        "content-length", "date", "server", "via", "x-request-id", "content-type"]
    assert kept["server"] == "gateway" and kept["via"] == "1.1 edge"
    sample = ping_found.clock
    assert sample is not None and abs(sample.skew_seconds) < 2
    assert 0 < sample.rtt_ms < 1500  # from the request's start to the head's arrival


def test_without_the_clock_the_ping_takes_the_tls_stages_connection() -> None:
    with server(reply()) as api:
        outcome = pinged(api)
        connections = api.connections
    assert outcome.status is Status.PASS and connections == 1
    assert (found(outcome).reused, found(outcome).opened) == (1, 0)


def test_a_connection_the_server_closed_is_opened_again() -> None:
    """The clock's answer said Connection: close: the ping opens a verified one of its own."""
    with server(reply("200 OK", BODY, "Connection: close"), close=True) as api:
        outcome = pinged(api, "clock")
        connections = api.connections
    assert outcome.status is Status.PASS and connections == 2
    assert (found(outcome).reused, found(outcome).opened) == (0, 1)


def test_no_date_no_second_clock_sample() -> None:
    with server(reply(date=False)) as api:
        outcome = pinged(api)
    assert outcome.status is Status.PASS and found(outcome).clock is None


def test_no_ping_sends_nothing() -> None:
    with server(reply()) as api:
        outcome = pinged(api, no_ping=True)
        requests = list(api.requests)
    assert outcome.status is Status.SKIP and requests == []
    assert outcome.summary == "not run (--no-ping): no request carrying the key was sent"
    assert found(outcome) == PingFound()


def test_the_key_goes_only_over_a_verified_connection() -> None:
    with server(reply()) as api:
        ctx = tls_context(api.port, trust.NO_BUNDLE, key=KEY)  # the tls stage fails

        async def go() -> None:
            try:
                await stages(ctx, "tls", "ping")
            finally:
                ctx.close_streams()

        with pytest.raises(RuntimeError, match="a key and a verified connection"):
            asyncio.run(go())
        ctx = tls_context(api.port, trust.load(str(api.bundle)))  # verified, but no key
        with pytest.raises(RuntimeError, match="a key and a verified connection"):
            asyncio.run(go())
        requests = list(api.requests)
    assert requests == []


# --- what the answer was ------------------------------------------------------------------------
def test_a_big_body_is_cut_and_says_so() -> None:
    body = b"x" * 50_000
    with server(reply("500 Internal Server Error", body)) as api:
        outcome = pinged(api, retries=0)
    text = found(outcome).response_body
    assert text is not None and re.fullmatch(r"x{2048} \[cut: \d+ bytes read, first 2048 kept\]",
                                             text)
    assert outcome.facts["response_body"] == text[:300]


def test_a_body_that_stops_coming_is_kept_as_far_as_it_came() -> None:
    with server(reply("200 OK", b'{"message": "Ping', length=1000)) as api:
        outcome = pinged(api, timeout=0.5)
    text = found(outcome).response_body
    assert outcome.status is Status.PASS  # the status came, and tells
    assert text is not None and text.startswith('{"message": "Ping [cut: ')


def test_a_body_cut_by_the_servers_close_is_kept_as_far_as_it_came() -> None:
    with TlsServer(leaf(), sandbox_intermediate(), answer=reply(
            "200 OK", b'{"message": "Ping', length=1000), close=True) as api:
        outcome = pinged(api, retries=0)
    text = found(outcome).response_body
    assert outcome.status is Status.PASS
    assert text is not None and text.startswith('{"message": "Ping [cut: ')


def test_a_redirect_names_where_to(caplog: pytest.LogCaptureFixture) -> None:
    with server(reply("302 Found", b"", "Location: https://login.example/portal",
                      "Location: /second")) as api, caplog.at_level(logging.WARNING):
        outcome = pinged(api, retries=0)
    ping_found = found(outcome)
    assert ping_found.location == "https://login.example/portal, /second"
    assert outcome.condition is Condition.HTTP_REDIRECT
    assert outcome.summary == "HTTP 302 in 1 attempt → https://login.example/portal, /second"
    assert outcome.facts["location"] == ping_found.location
    assert outcome.facts["location_host"] == "other"
    assert outcome.facts["response_body"] == "(empty)"
    [failed] = [r for r in caplog.records if "Failed GET" in r.getMessage()]
    assert failed.name == "assure_doctor.ping"
    assert failed.getMessage().endswith("response body (empty); request body: none")


def test_throttling_is_retried_after_the_apis_word_not_ours() -> None:
    with server(reply("429 Too Many Requests", b"{}", "Retry-After: 0")) as api:
        start = time.monotonic()
        outcome = pinged(api, retries=1, retry_pause=30.0)
        took = time.monotonic() - start
    assert took < 10  # the API said 0 s: our 30 s pause is not taken
    assert found(outcome).attempts == 2 and found(outcome).retry_after == 0
    assert outcome.condition is Condition.HTTP_THROTTLED
    assert outcome.summary == "HTTP 429 after 2 attempts (Retry-After 0 s)"
    assert outcome.facts["retry_after"] == "0"


@pytest.mark.parametrize(("retry_after", "limit", "attempts"), [
    ("5", 4.0, 1),  # beyond --max-retry-after: not retried
    ("0", 0.0, 2),  # at it: retried
])
def test_a_retry_after_beyond_the_limit_is_not_waited_for(retry_after: str, limit: float,
                                                         attempts: int) -> None:
    with server(reply("503 Service Unavailable", b"", f"Retry-After: {retry_after}")) as api:
        outcome = pinged(api, retries=1, max_retry_after=limit)
    assert found(outcome).attempts == attempts
    assert found(outcome).retry_after == float(retry_after)


@pytest.mark.parametrize(("retries", "alert"), [(1, False), (2, True)])
def test_every_attempt_is_made_and_three_failures_alert_the_operators(
        retries: int, alert: bool, caplog: pytest.LogCaptureFixture) -> None:
    with server(reply("500 Internal Server Error", b"oops")) as api, \
            caplog.at_level(logging.ERROR, "assure_doctor.ping"):
        outcome = pinged(api, retries=retries, retry_pause=0.0)
        keyed = sum(b"x-api-key" in r for r in api.requests)
    assert keyed == retries + 1 and found(outcome).attempts == retries + 1
    assert [a.status_code for a in found(outcome).history] == [500] * (retries + 1)
    assert outcome.status is Status.FAIL and outcome.condition is Condition.HTTP_SERVER_ERROR
    assert outcome.summary == f"HTTP 500 after {retries + 1} attempts"
    assert outcome.facts["retry_after"] == "a few" and outcome.facts["status_code"] == 500
    alerts = [r for r in caplog.records if r.getMessage().startswith("ALERT")]
    assert len(alerts) == (1 if alert else 0)


def test_a_failure_then_success_is_a_warning_naming_the_first_failure() -> None:
    with sandbox("http-503-flaky") as api:
        outcome = run(context(api), "dns", "tcp", "tls", "clock", "ping")
        keyed = api.traffic.keyed
    assert keyed == 2
    assert outcome.status is Status.WARN
    assert outcome.condition is Condition.HTTP_SERVER_ERROR
    assert outcome.summary == "HTTP 200 after 2 attempts; earlier: HTTP 503"
    assert outcome.facts["kind"] is HttpKind.GATEWAY and outcome.facts["status_code"] == 503
    assert outcome.facts["response_body"].startswith('{"message": "Service Unavailable')
    assert [a.status_code for a in found(outcome).history] == [503, 200]


def test_a_method_refused_and_an_unknown_status() -> None:
    with sandbox("http-418") as api:
        outcome = run(context(api, retries=0), "dns", "tcp", "tls", "ping")
    assert outcome.condition is Condition.HTTP_UNEXPECTED
    assert outcome.summary == "HTTP 418 in 1 attempt"


# --- when no answer comes ------------------------------------------------------------------------
def test_no_answer_in_time_is_a_read_timeout() -> None:
    with server(None) as api:
        outcome = pinged(api, timeout=0.4, retries=0)
    assert outcome.condition is Condition.HTTP_TIMEOUT
    assert found(outcome).error == "ReadTimeout: no answer in time"
    assert outcome.summary == "ReadTimeout: no answer in time in 1 attempt"
    assert outcome.facts["error"] == "ReadTimeout: no answer in time"
    assert found(outcome).status_code is None
    assert found(outcome).history == (PingAttempt(None, "ReadTimeout: no answer in time",
                                                  found(outcome).history[0].ms, None),)


def between(api: TlsServer, change: str, timeout: float = 1.5) -> Outcome:
    """The tls stage, then the server's connection cut and `change` made (a mode, or "gone"),
    then the ping, which must open a connection of its own."""
    ctx = tls_context(api.port, trust.load(str(api.bundle)), timeout, key=KEY, retries=0)
    ctx.outcomes["tls"] = run(ctx, "tls")  # its connection is closed after it
    if change == "gone":
        api.stop_listening()
    elif change == "untrusted":
        api.serve(leaf(issuer=proxy_ca()))
    else:
        api.mode = change
    return run(ctx, "ping")


def test_a_new_connection_that_does_not_come_is_a_connect_timeout() -> None:
    with server(reply()) as api:
        outcome = between(api, "stall", timeout=0.4)
    assert outcome.condition is Condition.CONNECT_TIMEOUT
    assert outcome.facts["kind"] is ConnectKind.TIMEOUT
    assert found(outcome).error == "ConnectTimeout: no connection in time"


def test_a_new_connection_refused_is_a_connect_failure() -> None:
    with server(reply()) as api:
        outcome = between(api, "gone")
        connections = api.connections
    assert outcome.condition is Condition.CONNECT_FAILED
    assert outcome.facts["kind"] is ConnectKind.REFUSED
    assert (found(outcome).error or "").startswith("ConnectError: ")
    assert connections == 1  # no second try behind our back


def test_a_new_connection_that_speaks_no_tls_is_a_handshake_failure() -> None:
    with server(reply()) as api:
        outcome = between(api, "plain")
        connections = api.connections
    assert outcome.condition is Condition.TLS_HANDSHAKE_FAILED
    assert outcome.facts["kind"] is HandshakeKind.NOT_TLS
    assert (found(outcome).error or "").startswith("ConnectError: ")
    assert connections == 2  # the tls stage's, and one new one: httpcore does not retry


def test_a_new_connection_whose_certificate_fails_is_a_certificate_error() -> None:
    with server(reply()) as api:
        outcome = between(api, "untrusted")
    assert outcome.condition is Condition.TLS_CERTIFICATE_ERROR
    assert outcome.facts["kind"] is CertKind.UNKNOWN_ISSUER
    assert (found(outcome).error or "").startswith("ConnectError: ")


@pytest.mark.parametrize("answer", [b"garbage that is no HTTP\r\n\r\n", None])
def test_a_broken_answer_is_a_disconnect(answer: bytes | None) -> None:
    """No HTTP, or a reset where the answer should be."""
    with TlsServer(leaf(), sandbox_intermediate(), answer=answer,
                   reset=answer is None) as api:
        outcome = pinged(api, retries=0)
    assert outcome.condition is Condition.HTTP_UNEXPECTED
    assert outcome.facts["kind"] is HttpKind.DISCONNECT
    assert found(outcome).error


# --- the guide's status table ---------------------------------------------------------------------
@pytest.mark.parametrize(("status", "condition", "kind"), [
    (299, None, None), (300, Condition.HTTP_REDIRECT, None),
    (399, Condition.HTTP_REDIRECT, None), (405, Condition.HTTP_UNEXPECTED, HttpKind.METHOD),
    (499, Condition.HTTP_UNEXPECTED, None), (500, Condition.HTTP_SERVER_ERROR, None),
    (501, Condition.HTTP_SERVER_ERROR, None), (502, Condition.HTTP_SERVER_ERROR, HttpKind.GATEWAY),
    (503, Condition.HTTP_SERVER_ERROR, HttpKind.GATEWAY),
    (504, Condition.HTTP_SERVER_ERROR, HttpKind.GATEWAY),
    (505, Condition.HTTP_SERVER_ERROR, None), (599, Condition.HTTP_SERVER_ERROR, None),
    (600, Condition.HTTP_UNEXPECTED, None),
])
def test_statuses_at_the_edges_of_their_ranges(status: int, condition: Condition | None,
                                               kind: HttpKind | None) -> None:
    got, facts = classify(status, "", None, HOST)
    assert got is condition and facts.get("kind") is kind


@pytest.mark.parametrize(("body", "kind"), [
    ('{"message": "Missing API key"}', HttpKind.KEY_MISSING_REPORTED),
    ('{"message": "key not valid for this stack"}', HttpKind.WRONG_STACK_REPORTED),
    ('{"message": "Invalid API key"}', None),
])
@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_is_unauthorized_whatever_the_body(status: int, body: str,
                                                         kind: HttpKind | None) -> None:
    got, facts = classify(status, body, None, HOST)
    assert got is Condition.HTTP_UNAUTHORIZED and facts.get("kind") is kind
