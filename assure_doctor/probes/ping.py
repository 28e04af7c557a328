"""Stage 5: the authenticated `GET /v1/ping`, retried as the guide says.

The only stage that sends the key, and only over the verified TLS context, to the address the
earlier stages vetted, with the real host name for SNI and Host.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from assure_doctor import __version__, httpmsg, logs, redact
from assure_doctor.kinds import Condition, Facts
from assure_doctor.model import Outcome, Status
from assure_doctor.probes import Context, certinfo, netclass

NAME = "ping"
log = logs.get(NAME)
BODY_LIMIT = 2048
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
    async with _client(ctx) as client:
        for number in range(1, ctx.options.attempts + 1):
            answer = await _attempt(ctx, client, number)
            answers.append(answer)
            if answer.ok or number == ctx.options.attempts:
                break
            pause = ctx.options.retry_pause
            if answer.retry_after is not None:
                if answer.retry_after > ctx.options.max_retry_after:
                    log.warning("Retry-After %.0f s is beyond --max-retry-after %.0f s: not "
                                "retrying", answer.retry_after, ctx.options.max_retry_after)
                    break
                pause = answer.retry_after  # the API's word overrides ours
            log.info("Pausing for %.1f seconds. Retry count %d for %s", pause, number, REASON)
            await asyncio.sleep(pause)
    return _outcome(ctx, answers)


def _client(ctx: Context) -> httpx.AsyncClient:
    timeout = httpx.Timeout(ctx.options.timeout)
    return httpx.AsyncClient(verify=ctx.verify_context, timeout=timeout, follow_redirects=False,
                             trust_env=False, http2=False)


async def _attempt(ctx: Context, client: httpx.AsyncClient, number: int) -> Answer:
    target = ctx.target
    address = f"[{ctx.address}]" if ":" in ctx.address else ctx.address
    pinned = f"https://{address}:{target.port}{target.path}"
    headers = {"Host": target.host_header, "User-Agent": f"assure-doctor/{__version__}",
               "Accept": "application/json", "x-api-key": ctx.key.reveal() if ctx.key else ""}
    log.info("About to GET %s (reason: %s, attempt %d/%d, address %s); request body: none",
             target.url, REASON, number, ctx.options.attempts, ctx.address)
    start = time.perf_counter()
    try:
        response = await client.get(pinned, headers=headers,
                                    extensions={"sni_hostname": target.host})
    except httpx.HTTPError as exc:
        answer = _from_error(exc, (time.perf_counter() - start) * 1000)
        log.warning("GET %s failed after %.0f ms: %s; request body: none", target.url, answer.ms,
                    answer.error)
        return answer
    ms = (time.perf_counter() - start) * 1000
    body = redact.scrub(response.text[:BODY_LIMIT])
    condition, facts = classify(response.status_code, body, response.headers.get("location"),
                                target.host)
    answer = Answer(ms=ms, status_code=response.status_code, body=body,
                    location=response.headers.get("location"),
                    retry_after=retry_after_seconds(response.headers.get("retry-after")),
                    condition=condition, facts=facts)
    if answer.ok:
        log.info("%d response in %.0f ms: ping successful", response.status_code, ms)
    else:
        log.warning("%d response in %.0f ms. Failed GET %s; response body %s; request body: none",
                    response.status_code, ms, target.url, body or "(empty)")
    return answer


def classify(status: int, body: str, location: str | None, host: str
             ) -> tuple[str | None, Facts]:
    """The guide's condition for an HTTP status, and the facts that rank its causes."""
    lowered = body.lower()
    if 200 <= status < 300:
        return None, {}
    if 300 <= status < 400:
        location_host = (urlsplit(location).hostname or host) if location else host
        return "http_redirect", {"location_host": "same" if location_host == host else "other"}
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
    """Retry-After as seconds from now (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    when = httpmsg.parse_date(value)
    if when is None:
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _from_error(exc: httpx.HTTPError, ms: float) -> Answer:
    """Map an httpx error, through its chain of causes, to the most specific condition."""
    root = _root_cause(exc)
    if isinstance(exc, httpx.TimeoutException):
        error = f"{type(exc).__name__}: no answer in time"
    else:
        error = f"{type(exc).__name__}: {netclass.describe(root) if root else exc}"
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


def _outcome(ctx: Context, answers: list[Answer]) -> Outcome:
    last = answers[-1]
    evidence: dict[str, Any] = {
        "status_code": last.status_code,
        "attempts": len(answers),
        "response_body": last.body,
        "history": [answer.to_dict() for answer in answers],
        "address": ctx.address,
    }
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
