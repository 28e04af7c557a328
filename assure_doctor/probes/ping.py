"""Stage 5: the authenticated `GET /v1/ping`, retried as the guide says.

The only stage that sends the key, and only over the verified TLS context, to the address the
earlier stages vetted, with the real host name for SNI and Host.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpcore
import httpx

from assure_doctor import __version__, httpmsg, logs, sanitize
from assure_doctor.apikey import ApiKey
from assure_doctor.kinds import Condition, Facts
from assure_doctor.model import Outcome, Status
from assure_doctor.probes import Context, Stream, certinfo, clock, netclass, path
from assure_doctor.probes.stream_backend import HandOverBackend

NAME = "ping"
log = logs.get(NAME)
BODY_LIMIT = 2048  # bytes of a response body kept for evidence; reading stops soon after
LOCATION_LIMIT = 500
ERROR_LIMIT = 300
REASON = "authenticated connectivity ping"


@dataclass(frozen=True)
class Answer:
    """One attempt: an HTTP status, or an error that stopped it; and what it means."""

    ms: float
    status_code: int | None = None
    body: str | None = None
    location: str | None = None
    retry_after: float | None = None
    error: str | None = None
    condition: str | None = None
    facts: Facts = field(default_factory=lambda: Facts())
    date: str | None = None  # the response's Date header, and when its head arrived
    sent_at: float = 0.0
    date_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.condition is None

    @property
    def outcome_text(self) -> str:
        return f"HTTP {self.status_code}" if self.status_code is not None else str(self.error)

    def to_dict(self) -> dict[str, Any]:
        return {"status_code": self.status_code, "error": self.error, "ms": round(self.ms, 1),
                "retry_after": self.retry_after}


async def run(ctx: Context) -> Outcome:
    if ctx.options.no_ping:
        return Outcome(Status.SKIP, "not run (--no-ping): no request carrying the key was sent",
                       {"status_code": None, "attempts": 0, "response_body": None})
    if ctx.key is None:
        facts: Facts = {"kind": "no_key"}
        return Outcome(Status.FAIL, "no API key: set ASSURE_API_KEY or use --api-key-file "
                       "(or --no-ping)", {"status_code": None, "attempts": 0,
                                          "response_body": None, "key_present": False},
                       Condition.HTTP_UNAUTHORIZED, facts)

    answers: list[Answer] = []
    backend = _backend(ctx)
    try:
        async with _client(ctx, backend) as client:
            for number in range(1, ctx.options.attempts + 1):
                answer = await _attempt(ctx, client, backend, number)
                answers.append(answer)
                if answer.ok or number == ctx.options.attempts:
                    break
                pause = ctx.options.retry_pause
                if answer.retry_after is not None:
                    if answer.retry_after > ctx.options.max_retry_after:
                        log.warning("Retry-After %.0f s is beyond --max-retry-after %.0f s: "
                                    "not retrying", answer.retry_after,
                                    ctx.options.max_retry_after)
                        break
                    pause = answer.retry_after  # the API's word overrides ours
                log.info("Pausing for %.1f seconds. Retry count %d for %s", pause, number,
                         REASON)
                await asyncio.sleep(pause)
    finally:
        backend.release()
    return _outcome(ctx, answers, backend)


def _backend(ctx: Context) -> HandOverBackend:
    """The clock stage's keep-alive connection first (or the tls stage's, when the clock did
    not run); a fresh verified one, to the same address, only when the server closed it.
    Through a proxy the handed-over stream is the tunnel, and a fresh one is a new tunnel."""
    target = ctx.target

    def opener() -> Awaitable[Stream]:
        return path.open_tls(ctx, ctx.verify_context)

    handed = ctx.take("clock") or ctx.take("tls")
    return HandOverBackend(handed, opener, ctx.verify_context, target.host)


def _client(ctx: Context, backend: HandOverBackend) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(verify=ctx.verify_context, http2=False, retries=0)
    # httpx takes no network backend, so its pool is replaced by one over ours; the
    # transport still maps httpcore's errors to httpx's.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ctx.verify_context, max_connections=1, http1=True, http2=False,
        network_backend=backend)
    return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(ctx.options.timeout),
                             follow_redirects=False, trust_env=False)


async def _attempt(ctx: Context, client: httpx.AsyncClient, backend: HandOverBackend,
                   number: int) -> Answer:
    """One keyed GET within one deadline for the whole exchange: connect, head and body."""
    target = ctx.target
    log.info("About to GET %s (reason: %s, attempt %d/%d, address %s); request body: none",
             target.url, REASON, number, ctx.options.attempts, ctx.address)
    start, sent_at = time.perf_counter(), time.time()
    response: httpx.Response | None = None
    sample = httpmsg.BodySample(BODY_LIMIT, None)
    cut = False
    headers_at = 0.0
    backend.connecting = False
    try:
        async with asyncio.timeout(ctx.options.timeout):
            async with client.stream("GET", target.url, headers=_headers(ctx),
                                     auth=_KeyAuth(ctx.key)) as response:
                headers_at = time.time()
                sample = httpmsg.BodySample(BODY_LIMIT,
                                            response.headers.get("content-encoding"))
                async for chunk in response.aiter_raw():
                    if sample.feed(chunk):
                        cut = True  # enough for evidence: stop reading, drop the connection
                        break
    except TimeoutError:
        if response is None:
            return _failed(target.url, _deadline(backend.connecting, start))
        cut = True  # the head came, the body did not finish in time: keep what came
    except httpx.HTTPError as exc:
        if response is None:
            return _failed(target.url, _from_error(exc, _ms(start)))
        cut = True
    ms = _ms(start)
    return _answer(ctx, response, sample, cut, ms, (sent_at, headers_at))


def _headers(ctx: Context) -> dict[str, str]:
    return {"Host": ctx.target.host_header, "User-Agent": f"assure-doctor/{__version__}",
            "Accept": "application/json", "Accept-Encoding": "identity"}


class _KeyAuth(httpx.Auth):
    """Adds `x-api-key` as the request leaves, so the key sits in no dict of ours that a
    traceback with locals could print (httpx's Request repr shows no headers)."""

    def __init__(self, key: ApiKey | None) -> None:
        self._key = key  # ApiKey's repr is masked

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["x-api-key"] = self._key.reveal() if self._key else ""
        yield request


def _answer(ctx: Context, response: httpx.Response, sample: httpmsg.BodySample, cut: bool,
            ms: float, times: tuple[float, float]) -> Answer:
    """What a response means; `times` are when the request went and when its head came."""
    target = ctx.target
    raw_location = response.headers.get("location")
    body = sanitize.text(sample.text(), BODY_LIMIT)
    if cut:
        body += f" [cut: {sample.raw_bytes} bytes read, first {len(sample.data)} kept]"
    condition, facts = classify(response.status_code, sample.text(), raw_location, target.host)
    answer = Answer(ms=ms, status_code=response.status_code, body=body,
                    location=None if raw_location is None else sanitize.text(raw_location,
                                                                             LOCATION_LIMIT),
                    retry_after=retry_after_seconds(response.headers.get("retry-after")),
                    condition=condition, facts=facts,
                    date=response.headers.get("date"), sent_at=times[0], date_at=times[1])
    if answer.ok:
        log.info("%d response in %.0f ms: ping successful", response.status_code, ms)
    else:
        log.warning("%d response in %.0f ms. Failed GET %s; response body %s; request body: none",
                    response.status_code, ms, target.url, body or "(empty)")
    return answer


def _failed(url: str, answer: Answer) -> Answer:
    log.warning("GET %s failed after %.0f ms: %s; request body: none", url, answer.ms,
                answer.error)
    return answer


def _deadline(connecting: bool, start: float) -> Answer:
    """The attempt's deadline passed before a response head arrived."""
    if connecting:
        return Answer(_ms(start), error="ConnectTimeout: no connection in time",
                      condition="connect_timeout", facts={"kind": "timeout"})
    return Answer(_ms(start), error="ReadTimeout: no answer in time", condition="http_timeout",
                  facts={"kind": "read"})


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def classify(status: int, body: str, location: str | None, host: str
             ) -> tuple[str | None, Facts]:
    """The guide's condition for an HTTP status, and the facts that rank its causes."""
    lowered = body.lower()
    if 200 <= status < 300:
        return None, {}
    if 300 <= status < 400:
        location_host = httpmsg.location_host(location) or host.lower()
        return "http_redirect", {"location_host": "same" if location_host == host.lower()
                                 else "other"}
    if status == 400:
        return "http_bad_request", {}
    if status == 403 and "missing authentication token" in lowered:
        # API gateways answer an unknown route this way, whatever the key.
        return "http_not_found", {"kind": "unknown_route"}
    if status in (401, 403):
        if "missing" in lowered or "no api key" in lowered:
            return "http_unauthorized", {"kind": "key_missing_reported"}
        if "stack" in lowered:
            return "http_unauthorized", {"kind": "wrong_stack_reported"}
        return "http_unauthorized", {"kind": "rejected"}
    if status == 404:
        return "http_not_found", {}
    if status == 405:
        return "http_unexpected", {"kind": "method"}
    if status == 429:
        return "http_throttled", {}
    if 500 <= status < 600:
        return "http_server_error", {"kind": "gateway" if status in (502, 503, 504) else "api"}
    return "http_unexpected", {}


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds from now (delta-seconds or an HTTP date); None when unusable."""
    return httpmsg.retry_after(value, datetime.now(UTC))


def _from_error(exc: httpx.HTTPError, ms: float) -> Answer:
    """Map an httpx error, through its chain of causes, to the most specific condition."""
    root = _root_cause(exc)
    if isinstance(exc, httpx.TimeoutException):
        error = f"{type(exc).__name__}: no answer in time"
    else:
        # Protocol errors quote what the server sent: sanitised like any outside text.
        error = sanitize.text(f"{type(exc).__name__}: {netclass.describe(root) if root else exc}",
                              ERROR_LIMIT)
    if isinstance(root, ssl.SSLCertVerificationError):
        return Answer(ms, error=error, condition="tls_certificate_error",
                      facts={"kind": certinfo.verify_kind(root.verify_code)})
    if isinstance(exc, httpx.ConnectTimeout):
        return Answer(ms, error=error, condition="connect_timeout", facts={"kind": "timeout"})
    if isinstance(exc, httpx.ConnectError):
        if isinstance(root, ssl.SSLError):
            return Answer(ms, error=error, condition="tls_handshake_failed",
                          facts={"kind": netclass.handshake_kind(root)})
        kind = netclass.connect_kind(root) if root else "error"
        return Answer(ms, error=error, condition=netclass.connect_condition(kind),
                      facts={"kind": kind})
    if isinstance(exc, httpx.TimeoutException):
        return Answer(ms, error=error, condition="http_timeout", facts={"kind": "read"})
    return Answer(ms, error=error, condition="http_unexpected", facts={"kind": "disconnect"})


def _root_cause(exc: BaseException) -> BaseException | None:
    seen = exc.__cause__ or exc.__context__
    root = None
    while seen is not None:
        root = seen
        seen = seen.__cause__ or seen.__context__
    return root


def _outcome(ctx: Context, answers: list[Answer], backend: HandOverBackend) -> Outcome:
    last = answers[-1]
    evidence: dict[str, Any] = {
        "status_code": last.status_code,
        "attempts": len(answers),
        "response_body": last.body,
        "history": [answer.to_dict() for answer in answers],
        "address": ctx.address,
        # Connections this stage used: reused from the earlier stages, and newly opened.
        "connections": {"reused": backend.reused, "opened": backend.opened},
    }
    dated = next((a for a in reversed(answers) if a.date is not None), None)
    if dated is not None:
        sample = clock.sample(dated.date, dated.sent_at, dated.date_at)
        if sample is not None:
            evidence["clock"] = sample
    if last.location is not None:
        evidence["location"] = last.location
    if last.retry_after is not None:
        evidence["retry_after"] = last.retry_after
    if last.error is not None:
        evidence["error"] = last.error
    tries = f"after {len(answers)} attempts" if len(answers) > 1 else "in 1 attempt"
    if last.ok:
        first_failure = next((a for a in answers if not a.ok), None)
        if first_failure is None:
            return Outcome(Status.PASS, f"HTTP {last.status_code} in {last.ms:.0f} ms: "
                           "ping successful", evidence)
        return Outcome(Status.WARN, f"HTTP {last.status_code} {tries}; earlier: "
                       f"{first_failure.outcome_text}", evidence,
                       Condition(first_failure.condition or ""), _facts(ctx, first_failure))
    if len(answers) >= 3:
        # The guide: after three failed attempts, alert the operators.
        log.error("ALERT: %s failed %d times in a row (%s); operators should investigate",
                  ctx.target.url, len(answers), last.outcome_text)
    summary = f"{last.outcome_text} {tries}"
    if last.location:
        summary += f" → {last.location}"
    if last.retry_after is not None:
        summary += f" (Retry-After {last.retry_after:g} s)"
    return Outcome(Status.FAIL, summary, evidence, Condition(last.condition or ""),
                   _facts(ctx, last))


def _facts(ctx: Context, answer: Answer) -> Facts:
    return {
        **answer.facts,
        "status_code": answer.status_code,
        "location": answer.location,
        "retry_after": f"{answer.retry_after:g}" if answer.retry_after is not None else "a few",
        "response_body": (answer.body or "(empty)")[:300],
        "error": answer.error,
    }
