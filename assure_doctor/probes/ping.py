"""Stage 5: the authenticated `GET /v1/ping`, retried as the guide says.

The only stage that sends the key, and only over a connection the tls stage verified (with
the context that verified it), to the address the earlier stages vetted, with the real host
name for SNI and Host. The request is framed by the one HTTP/1.1 codec (`http1`) on the
stream the earlier stages verified (`keyed`), kept between attempts while the server allows.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from assure_doctor import __version__, http1, httpmsg, logs, sanitize
from assure_doctor.apikey import ApiKey
from assure_doctor.kinds import CertKind, Condition, ConnectKind, Facts, HttpKind
from assure_doctor.model import Outcome, Status
from assure_doctor.probes import certinfo, clock, netclass, path
from assure_doctor.probes.keyed import KeyedConnection, NotConnected
from assure_doctor.probes.results import (
    ClockFound,
    PingAttempt,
    PingFound,
    Stream,
    TlsFound,
)
from assure_doctor.probes.stage import Context

NAME = "ping"
log = logs.get(NAME)
BODY_LIMIT = 2048  # bytes of a response body kept for evidence; reading stops soon after
HEAD_LIMIT = 65536  # the answer's head
LOCATION_LIMIT = 500
ERROR_LIMIT = 300
REASON = "authenticated connectivity ping"
# Response headers kept for support (never Set-Cookie or Location, which may carry tokens).
HEADER_ALLOW = frozenset({
    "date", "server", "content-type", "content-length", "retry-after", "via", "x-cache",
    "x-request-id", "x-amzn-requestid", "x-amz-cf-id", "x-amz-cf-pop", "cf-ray",
    "x-served-by"})
HEADERS_KEPT = 20
HEADER_LIMIT = 200


@dataclass(frozen=True)
class Answer:
    """One attempt: an HTTP status, or an error that stopped it; and what it means."""

    ms: float
    status_code: int | None = None
    body: str | None = None
    location: str | None = None
    retry_after: float | None = None
    error: str | None = None
    condition: Condition | None = None
    facts: Facts = field(default_factory=lambda: Facts())
    date: str | None = None  # the response's Date header, and when its head arrived
    sent_at: float = 0.0
    date_at: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()  # the allow-listed ones, sanitised

    @property
    def ok(self) -> bool:
        return self.condition is None

    @property
    def outcome_text(self) -> str:
        return f"HTTP {self.status_code}" if self.status_code is not None else str(self.error)

    def attempt(self) -> PingAttempt:
        return PingAttempt(self.status_code, self.error, self.ms, self.retry_after)


async def run(ctx: Context) -> Outcome:
    if ctx.options.no_ping:
        return Outcome(Status.SKIP, "not run (--no-ping): no request carrying the key was sent",
                       PingFound())
    tls = ctx.found(TlsFound)
    if ctx.key is None or tls.verified_with is None:
        # The engine runs this stage only with a key, after a verified handshake.
        raise RuntimeError("the ping needs a key and a verified connection")
    answers: list[Answer] = []
    connection = _connection(ctx, tls.verified_with)
    try:
        for number in range(1, ctx.options.attempts + 1):
            answer = await _attempt(ctx, connection, ctx.key, number)
            answers.append(answer)
            if answer.ok or number == ctx.options.attempts:
                break
            pause = ctx.options.retry_pause
            if answer.retry_after is not None:
                if answer.retry_after > ctx.options.max_retry_after:
                    log.warning("Retry-After %.0f s is beyond --max-retry-after %.0f s: "
                                "not retrying", answer.retry_after, ctx.options.max_retry_after)
                    break
                pause = answer.retry_after  # the API's word overrides ours
            log.info("Pausing for %.1f seconds. Retry count %d for %s", pause, number, REASON)
            await asyncio.sleep(pause)
    finally:
        connection.release()
    return _outcome(ctx, answers, connection)


def _connection(ctx: Context, verified_with: ssl.SSLContext) -> KeyedConnection:
    """The clock stage's keep-alive connection first (or the tls stage's, when the clock did
    not run); a fresh verified one, to the same address, only when the server closed it.
    Through a proxy the handed-over stream is the tunnel, and a fresh one is a new tunnel."""

    def opener() -> Awaitable[Stream]:
        return path.open_tls(ctx, verified_with)

    handed = None
    for connection in (ctx.found(ClockFound).connection, ctx.found(TlsFound).connection):
        handed = handed or (connection.take() if connection else None)
    return KeyedConnection(handed, opener, verified_with, ctx.target.host)


async def _attempt(ctx: Context, connection: KeyedConnection, key: ApiKey, number: int
                   ) -> Answer:
    """One keyed GET within one deadline for the whole exchange: connect, head and body."""
    target = ctx.target
    log.info("About to GET %s (reason: %s, attempt %d/%d, address %s); request body: none",
             target.url, REASON, number, ctx.options.attempts, ctx.address)
    start, sent_at = time.perf_counter(), time.time()
    stream: Stream | None = None
    head: http1.ResponseHead | None = None
    sample = httpmsg.BodySample(BODY_LIMIT, None)
    cut = False
    headers_at = 0.0
    connection.connecting = False
    try:
        async with asyncio.timeout(ctx.options.timeout):
            stream = await connection.stream()
            client = http1.Client(*stream, HEAD_LIMIT)
            # The key goes straight into the request: no variable of ours holds it.
            client.send_request("GET", target.path, _fields(ctx, key))
            await stream[1].drain()
            head = await client.response()
            headers_at = time.time()
            sample = httpmsg.BodySample(BODY_LIMIT, head.fields.get("content-encoding"))
            while (chunk := await client.chunk()) is not None:
                if sample.feed(chunk):
                    cut = True  # enough for evidence: stop reading, drop the connection
                    break
    except TimeoutError:
        if head is None:
            _drop(stream)
            return _failed(target.url, _deadline(connection.connecting, start))
        cut = True  # the head came, the body did not finish in time: keep what came
    except NotConnected as exc:
        return _failed(target.url, _not_connected(exc, _ms(start)))
    except (OSError, http1.HttpError) as exc:
        if head is None:
            _drop(stream)
            return _failed(target.url, _from_error(exc, _ms(start)))
        cut = True
    ms = _ms(start)
    assert stream is not None and head is not None  # a head was read from a stream
    if cut or not client.reusable:
        _drop(stream)
    else:
        connection.keep(stream)
    return _answer(ctx, head, sample, cut, ms, (sent_at, headers_at))


def _drop(stream: Stream | None) -> None:
    if stream is not None:
        stream[1].transport.abort()


def _fields(ctx: Context, key: ApiKey) -> list[tuple[str, str]]:
    return [("Host", ctx.target.host_header), ("User-Agent", f"assure-doctor/{__version__}"),
            ("Accept", "application/json"), ("Accept-Encoding", "identity"),
            ("x-api-key", key.reveal())]


def _answer(ctx: Context, head: http1.ResponseHead, sample: httpmsg.BodySample, cut: bool,
            ms: float, times: tuple[float, float]) -> Answer:
    """What a response means; `times` are when the request went and when its head came."""
    target = ctx.target
    raw_location = head.fields.get("location")
    body = sanitize.text(sample.text(), BODY_LIMIT)
    if cut:
        body += f" [cut: {sample.raw_bytes} bytes read, first {len(sample.data)} kept]"
    condition, facts = classify(head.status, sample.text(), raw_location, target.host)
    answer = Answer(ms=ms, status_code=head.status, body=body,
                    location=None if raw_location is None else sanitize.text(raw_location,
                                                                             LOCATION_LIMIT),
                    retry_after=retry_after_seconds(head.fields.get("retry-after")),
                    condition=condition, facts=facts,
                    date=head.fields.get("date"), sent_at=times[0], date_at=times[1],
                    headers=_kept_headers(head.fields))
    if answer.ok:
        log.info("%d response in %.0f ms: ping successful", head.status, ms)
    else:
        log.warning("%d response in %.0f ms. Failed GET %s; response body %s; request body: none",
                    head.status, ms, target.url, body or "(empty)")
    return answer


def _kept_headers(fields: http1.Fields) -> tuple[tuple[str, str], ...]:
    return tuple((name, sanitize.text(value, HEADER_LIMIT))
                 for name, value in fields.items if name in HEADER_ALLOW)[:HEADERS_KEPT]


def _failed(url: str, answer: Answer) -> Answer:
    log.warning("GET %s failed after %.0f ms: %s; request body: none", url, answer.ms,
                answer.error)
    return answer


def _deadline(connecting: bool, start: float) -> Answer:
    """The attempt's deadline passed before a response head arrived."""
    if connecting:
        return Answer(_ms(start), error="ConnectTimeout: no connection in time",
                      condition=Condition.CONNECT_TIMEOUT, facts=Facts(kind=ConnectKind.TIMEOUT))
    return Answer(_ms(start), error="ReadTimeout: no answer in time",
                  condition=Condition.HTTP_TIMEOUT)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def classify(status: int, body: str, location: str | None, host: str
             ) -> tuple[Condition | None, Facts]:
    """The guide's condition for an HTTP status, and the facts that rank its causes."""
    lowered = body.lower()
    if 200 <= status < 300:
        return None, Facts()
    if 300 <= status < 400:
        location_host = httpmsg.location_host(location) or host.lower()
        return Condition.HTTP_REDIRECT, Facts(
            location_host="same" if location_host == host.lower() else "other")
    if status == 400:
        return Condition.HTTP_BAD_REQUEST, Facts()
    if status == 403 and "missing authentication token" in lowered:
        # API gateways answer an unknown route this way, whatever the key.
        return Condition.HTTP_NOT_FOUND, Facts()
    if status in (401, 403):
        if "missing" in lowered or "no api key" in lowered:
            return Condition.HTTP_UNAUTHORIZED, Facts(kind=HttpKind.KEY_MISSING_REPORTED)
        if "stack" in lowered:
            return Condition.HTTP_UNAUTHORIZED, Facts(kind=HttpKind.WRONG_STACK_REPORTED)
        return Condition.HTTP_UNAUTHORIZED, Facts()
    if status == 404:
        return Condition.HTTP_NOT_FOUND, Facts()
    if status == 405:
        return Condition.HTTP_UNEXPECTED, Facts(kind=HttpKind.METHOD)
    if status == 429:
        return Condition.HTTP_THROTTLED, Facts()
    if 500 <= status < 600:
        gateway = status in (502, 503, 504)
        return Condition.HTTP_SERVER_ERROR, Facts(kind=HttpKind.GATEWAY) if gateway else Facts()
    return Condition.HTTP_UNEXPECTED, Facts()


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds from now (delta-seconds or an HTTP date); None when unusable."""
    return httpmsg.retry_after(value, datetime.now(UTC))


def _not_connected(exc: NotConnected, ms: float) -> Answer:
    """No verified connection for the attempt: the most specific condition its cause shows."""
    root = _root_cause(exc)
    error = sanitize.text(f"ConnectError: {netclass.describe(root) if root else exc}",
                          ERROR_LIMIT)
    if isinstance(root, ssl.SSLCertVerificationError):
        kind: CertKind = certinfo.verify_kind(root.verify_code)
        return Answer(ms, error=error, condition=Condition.TLS_CERTIFICATE_ERROR,
                      facts=Facts(kind=kind))
    if isinstance(root, ssl.SSLError):
        return Answer(ms, error=error, condition=Condition.TLS_HANDSHAKE_FAILED,
                      facts=Facts(kind=netclass.handshake_kind(root)))
    connect = netclass.connect_kind(root) if root else ConnectKind.ERROR
    return Answer(ms, error=error, condition=netclass.connect_condition(connect),
                  facts=Facts(kind=connect))


def _from_error(exc: OSError | http1.HttpError, ms: float) -> Answer:
    """The exchange broke before a response head: a reset, a hang-up, or an answer that is
    not HTTP (described in our words: an HttpError never carries what the peer sent)."""
    described = str(exc) if isinstance(exc, http1.HttpError) else netclass.describe(exc)
    return Answer(ms, error=sanitize.text(f"{type(exc).__name__}: {described}", ERROR_LIMIT),
                  condition=Condition.HTTP_UNEXPECTED, facts=Facts(kind=HttpKind.DISCONNECT))


def _root_cause(exc: BaseException) -> BaseException | None:
    seen = exc.__cause__ or exc.__context__
    root = None
    while seen is not None:
        root = seen
        seen = seen.__cause__ or seen.__context__
    return root


def _outcome(ctx: Context, answers: list[Answer], connection: KeyedConnection
             ) -> Outcome:
    last = answers[-1]
    dated = next((a for a in reversed(answers) if a.date is not None), None)
    found = PingFound(
        status_code=last.status_code, attempts=len(answers), response_body=last.body,
        history=tuple(answer.attempt() for answer in answers), address=ctx.address,
        # Connections this stage used: reused from the earlier stages, and newly opened.
        reused=connection.reused, opened=connection.opened,
        clock=None if dated is None else clock.sample(dated.date, dated.sent_at,
                                                      dated.date_at),
        location=last.location, retry_after=last.retry_after, error=last.error,
        headers=last.headers)
    tries = f"after {len(answers)} attempts" if len(answers) > 1 else "in 1 attempt"
    if last.condition is None:
        first_failure = next((a for a in answers if a.condition is not None), None)
        if first_failure is None or first_failure.condition is None:
            return Outcome(Status.PASS, f"HTTP {last.status_code} in {last.ms:.0f} ms: "
                           "ping successful", found)
        return Outcome(Status.WARN, f"HTTP {last.status_code} {tries}; earlier: "
                       f"{first_failure.outcome_text}", found, first_failure.condition,
                       _facts(first_failure))
    if len(answers) >= 3:
        # The guide: after three failed attempts, alert the operators.
        log.error("ALERT: %s failed %d times in a row (%s); operators should investigate",
                  ctx.target.url, len(answers), last.outcome_text)
    summary = f"{last.outcome_text} {tries}"
    if last.location:
        summary += f" → {last.location}"
    if last.retry_after is not None:
        summary += f" (Retry-After {last.retry_after:g} s)"
    return Outcome(Status.FAIL, summary, found, last.condition, _facts(last))


def _facts(answer: Answer) -> Facts:
    facts = Facts(**answer.facts)
    facts.update(Facts(
        status_code=answer.status_code,
        location=answer.location,
        retry_after=f"{answer.retry_after:g}" if answer.retry_after is not None else "a few",
        response_body=(answer.body or "(empty)")[:300],
        error=answer.error))
    return facts
