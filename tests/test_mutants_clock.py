"""The clock stage against real HTTPS on loopback, in-process: the skew a `Date` header shows
within its round trip, the warning past --max-skew, the keyless request it sends, the
connection it hands to the ping only when it was verified and is idle again, and what it says
when it cannot read the server's clock. The wording of durations, at its boundaries.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any

import pytest

from assure_doctor import trust
from assure_doctor.kinds import Condition
from assure_doctor.model import Outcome, Status
from assure_doctor.probes import clock
from assure_doctor.probes.clock import sample, skew_text
from assure_doctor.probes.results import ClockFound
from assure_doctor.sandbox.stack import HOST, sandbox_intermediate
from tests.stages import TlsServer, context, leaf, run, sandbox, stages, tls_context

URL = f"https://{HOST}"


def found(outcome: Outcome) -> ClockFound:
    assert isinstance(outcome.found, ClockFound)
    return outcome.found


def answer(status: str = "401 Unauthorized", date: str | None = "now", body: bytes = b"{}",
           framing: str = "length") -> bytes:
    """An HTTP/1.1 answer: dated now (or `date`), framed by Content-Length, or by the close."""
    fields = []
    if date is not None:
        fields.append(f"Date: {formatdate(None, usegmt=True) if date == 'now' else date}")
    if framing == "length":
        fields.append(f"Content-Length: {len(body)}")
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{f}\r\n" for f in fields) + "\r\n"
    return head.encode() + body


def clock_over(server: TlsServer, verified: bool = True, timeout: float = 1.5
               ) -> tuple[Outcome, bool]:
    """The tls stage (verifying with the sandbox's root, or failing to: then the clock
    looks over a connection of its own), then the clock stage; whether a connection was
    left for the ping, and it still carries a request."""
    anchors = trust.load(str(server.bundle)) if verified else trust.NO_BUNDLE
    ctx = tls_context(server.port, anchors, timeout)

    async def go() -> tuple[Outcome, bool]:
        try:
            outcome = await stages(ctx, "tls", "clock")
            handed = found(outcome).connection
            stream = handed.take() if handed else None
            if stream is None:
                return outcome, False
            reader, writer = stream
            writer.write(f"GET /v1/ping HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            return outcome, (await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)
                             ).startswith(b"HTTP/1.1 ")
        finally:
            ctx.close_streams()

    return asyncio.run(go())


# --- the sample -------------------------------------------------------------------------------
def test_the_skew_is_taken_at_the_middle_of_the_round_trip_and_half_a_second_into_the_date(
        ) -> None:
    date = "Sun, 06 Nov 1994 08:49:37 GMT"
    server = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC).timestamp()
    taken = sample(date, server - 10, server - 8)
    assert taken is not None
    assert taken.skew_seconds == 9.5  # [Date, Date + 1) against the middle of the 2 s
    assert taken.uncertainty_seconds == 1.5 and taken.rtt_ms == 2000
    assert taken.server_date == datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)
    assert taken.local_time == datetime.fromtimestamp(server - 10, UTC)


def test_a_clock_stepped_back_during_the_round_trip_is_no_negative_round_trip() -> None:
    date = "Sun, 06 Nov 1994 08:49:37 GMT"
    server = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC).timestamp()
    taken = sample(date, server, server - 4)
    assert taken is not None
    assert taken.rtt_ms == 0 and taken.uncertainty_seconds == 0.5
    assert taken.skew_seconds == 2.5


@pytest.mark.parametrize(("skew", "text"), [
    (0.0, "0.0 s behind the API's"),
    (0.5, "0.5 s behind the API's"),
    (-0.5, "0.5 s ahead of the API's"),
    (119.9, "119.9 s behind the API's"),
    (120, "2 min behind the API's"),
    (7199, "120 min behind the API's"),
    (7200, "2.0 h behind the API's"),
    (10800, "3.0 h behind the API's"),
    (2 * 86400 - 1, "48.0 h behind the API's"),
    (-2 * 86400, "2 days 0 h ahead of the API's"),
    (100.51 * 3600, "4 days 5 h behind the API's"),  # 100.51 h rounds to 101
])
def test_durations_are_worded_at_their_boundaries(skew: float, text: str) -> None:
    assert skew_text(skew) == text


# --- the stage --------------------------------------------------------------------------------
def test_a_healthy_clock_agrees_and_its_connection_goes_on_to_the_ping() -> None:
    with sandbox("healthy") as api:
        ctx = context(api)

        async def go() -> tuple[Outcome, int]:
            try:
                outcome = await stages(ctx, "dns", "tcp", "tls", "clock")
                handed = found(outcome).connection
                assert handed is not None
                return outcome, len(api.traffic.requests)
            finally:
                ctx.close_streams()

        outcome, requests = asyncio.run(go())
        seen = api.traffic.requests[0]
        connections = api.traffic.connections
    taken = found(outcome).sample
    assert outcome.status is Status.PASS and outcome.condition is None
    assert taken is not None and abs(taken.skew_seconds) < 1.5
    assert outcome.summary == (f"clocks agree: skew {taken.skew_seconds:+.1f} s "
                               f"(±{taken.uncertainty_seconds:.1f} s)")
    assert found(outcome).source == f"Date header of GET {api.url} (HTTP 401, no key)"
    assert requests == 1 and connections == 1  # over the tls stage's verified connection
    assert (seen["method"], seen["path"], seen["keyed"]) == ("GET", "/v1/ping", False)


def test_the_request_is_a_keyless_get_asking_for_no_encoding() -> None:
    with TlsServer(leaf(), sandbox_intermediate(), answer=answer()) as server:
        outcome, _ = clock_over(server)
        head = server.requests[0]
    lines = head.decode().split("\r\n")
    assert lines[0] == "GET /v1/ping HTTP/1.1"
    fields = {line.split(": ", 1)[0].lower(): line.split(": ", 1)[1] for line in lines[1:]
              if line}
    assert fields["host"] == f"{HOST}:{server.port}"
    assert fields["accept-encoding"] == "identity" and fields["accept"] == "*/*"
    assert fields["user-agent"] == "assure-doctor (clock check, no key)"
    assert "x-api-key" not in fields
    assert outcome.status is Status.PASS


def test_a_clock_past_the_limit_is_a_warning_naming_the_skew() -> None:
    with sandbox("clock-skew-small") as api:  # the server's clock 90 s ahead of ours
        outcome = run(context(api), "dns", "tcp", "tls", "clock")
    taken = found(outcome).sample
    assert taken is not None and 88 < taken.skew_seconds < 92
    assert outcome.status is Status.WARN and outcome.condition is Condition.CLOCK_SKEW
    text = skew_text(taken.skew_seconds)
    assert outcome.facts["skew_text"] == text and text.endswith("s behind the API's")
    assert outcome.summary == f"this machine's clock is {text} (limit 10 s)"


@pytest.mark.parametrize(("limit", "status"), [(88.0, Status.WARN), (95.0, Status.PASS)])
def test_the_limit_allows_for_the_uncertainty(limit: float, status: Status) -> None:
    with sandbox("clock-skew-small") as api:
        outcome = run(context(api, max_skew=limit), "dns", "tcp", "tls", "clock")
    assert outcome.status is status


def test_a_skew_exactly_at_the_limit_is_within_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """|skew| - uncertainty equal to --max-skew (10 s) is no warning: our clock stands still
    (an injected time) 10.5 s behind a Date, so the skew is 10.5 s and the uncertainty 0.5 s."""
    date = "Sun, 06 Nov 1994 08:49:37 GMT"
    server_time = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC).timestamp()
    with TlsServer(leaf(), sandbox_intermediate(), answer=answer(date=date)) as server:
        ctx = tls_context(server.port, trust.load(str(server.bundle)))
        ctx.outcomes["tls"] = run(ctx, "tls")
        monkeypatch.setattr(time, "time", lambda: server_time - 10)  # the clock stage's too
        outcome = run(ctx, "clock")
    taken = found(outcome).sample
    assert taken is not None and (taken.skew_seconds, taken.uncertainty_seconds) == (10.5, 0.5)
    assert outcome.status is Status.PASS


def test_no_date_header_skips_with_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    with TlsServer(leaf(), sandbox_intermediate(), answer=answer(date=None)) as server, \
            caplog.at_level(logging.INFO, "assure_doctor.clock"):
        outcome, reused = clock_over(server)
    assert any(r.getMessage() == "401 response to the clock check; Date: none"
               for r in caplog.records)
    assert outcome.status is Status.SKIP
    assert outcome.summary == "the server sent no usable Date header"
    assert found(outcome).sample is None and reused  # the connection is fine for the ping


def test_a_verified_keep_alive_answer_leaves_its_connection_for_the_ping(
        caplog: pytest.LogCaptureFixture) -> None:
    with TlsServer(leaf(), sandbox_intermediate(), answer=answer()) as server, \
            caplog.at_level(logging.INFO, "assure_doctor.clock"):
        outcome, reused = clock_over(server)
        connections = server.connections
    assert outcome.status is Status.PASS and reused and connections == 1
    [said] = [r for r in caplog.records if "no key sent, verified connection" in r.getMessage()]
    assert said.name == "assure_doctor.clock"


@pytest.mark.parametrize("body", [b"x" * 65536, b""])
def test_a_body_within_64_kib_is_read_to_its_end(body: bytes) -> None:
    with TlsServer(leaf(), sandbox_intermediate(), answer=answer(body=body)) as server:
        _, reused = clock_over(server)
    assert reused


@pytest.mark.parametrize(("reply", "why"), [
    ({"body": b"x" * 65537}, "a bigger body is not read"),
    ({"framing": "close"}, "a body that runs to the close"),
    ({"status": "200 OK\r\nConnection: close"}, "the server closes after it"),
])
def test_an_answer_that_leaves_no_idle_connection_is_not_handed_on(
        reply: dict[str, Any], why: str) -> None:
    with TlsServer(leaf(), sandbox_intermediate(), answer=answer(**reply)) as server:
        outcome, reused = clock_over(server)
    assert outcome.status is Status.PASS, why
    assert not reused and found(outcome).connection is None, why


def test_a_body_that_runs_to_the_close_is_not_waited_for() -> None:
    """Its connection cannot carry the ping's request anyway."""
    with TlsServer(leaf(), sandbox_intermediate(), answer=answer(framing="close")) as server:
        start = time.monotonic()
        outcome, reused = clock_over(server, timeout=5.0)
        took = time.monotonic() - start
    assert outcome.status is Status.PASS and not reused
    assert took < 2.5  # not the 5 s the server would keep it open for


def test_an_unverified_connection_is_only_looked_over_and_never_handed_on(
        caplog: pytest.LogCaptureFixture) -> None:
    """After a certificate failure the clock makes a connection of its own, to look."""
    with TlsServer(leaf(), sandbox_intermediate(), answer=answer()) as server, \
            caplog.at_level(logging.INFO, "assure_doctor.clock"):
        outcome, reused = clock_over(server, verified=False)
        connections = server.connections
    assert outcome.status is Status.PASS and found(outcome).sample is not None
    assert not reused and found(outcome).connection is None
    # the tls stage's (refused), the machine's store's (refused), its look at the
    # certificate, the clock's
    assert connections == 4
    assert any("no key sent, unverified connection" in r.getMessage() for r in caplog.records)


def test_a_server_that_is_gone_skips_naming_the_error() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: a refusal
        ctx = tls_context(closed.getsockname()[1], trust.NO_BUNDLE)
        outcome = asyncio.run(clock.run(ctx))
    error = found(outcome).error
    assert outcome.status is Status.SKIP and error and "refused" in error.lower()
    assert outcome.summary == f"could not read the server's clock: {error}"


@pytest.mark.parametrize(("reply", "close", "error"), [
    (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", False, "the answer is not HTTP/1.1"),
    (b"", True, "no answer"),  # closed without a word
    (None, False, "timed out"),
])
def test_an_answer_that_is_no_http_or_none_skips_saying_so(
        reply: bytes | None, close: bool, error: str) -> None:
    with TlsServer(leaf(), sandbox_intermediate(), answer=reply, close=close) as server:
        outcome, reused = clock_over(server, timeout=0.5)
    assert outcome.status is Status.SKIP and not reused
    assert found(outcome).error == error
    assert outcome.summary == f"could not read the server's clock: {error}"
