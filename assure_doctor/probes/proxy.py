"""Stage 3 (with a proxy): `CONNECT host:port` through the proxy, and what its answer means.

200 is a tunnel, handed to the tls stage; 407 asks for credentials (we can answer only Basic);
403 and other refusals are the proxy's policy; 502/503/504 mean the proxy cannot reach the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import time
from dataclasses import dataclass, replace

from assure_doctor import http1, logs, sanitize
from assure_doctor.addresses import host_port
from assure_doctor.kinds import Condition, Facts, ProxyKind, ProxyStep
from assure_doctor.model import Outcome, Status
from assure_doctor.probes import netclass
from assure_doctor.probes.connect import connect
from assure_doctor.probes.results import ProxyFound, Stream, TcpFound
from assure_doctor.probes.stage import Context
from assure_doctor.proxyconfig import Proxy

NAME = "proxy"
log = logs.get(NAME)
HEAD_LIMIT = 16384  # a CONNECT answer's head; more is not an HTTP proxy talking
BODY_LIMIT = 16384  # enough of an error page to find its <title>
MAX_SCHEMES = 20  # Proxy-Authenticate schemes kept in the evidence
_BODY_WAIT = 2.0  # seconds to wait for an error page after its head
_UPSTREAM = {502, 503, 504}
_ANSWERABLE = {"basic"}  # the only scheme our credentials can answer
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Answer:
    """The proxy's answer to CONNECT (status None: no HTTP answer, see `error`)."""

    status: int | None
    reason: str = ""
    schemes: tuple[str, ...] = ()
    title: str | None = None
    error: str | None = None
    kind: ProxyKind | None = None  # why there is no status: timeout, closed, not_http


async def run(ctx: Context) -> Outcome:
    if ctx.route_failure is not None:  # the PAC that names the proxy gave no route
        return ctx.route_failure
    outcome = await _connect(ctx)
    if ctx.pac is not None and isinstance(outcome.found, ProxyFound):
        outcome = replace(outcome, found=replace(outcome.found, pac=ctx.pac))
    return outcome


def skipped(ctx: Context) -> ProxyFound | None:
    """Skipped after an earlier failure, the stage still says how a PAC chose the route."""
    return None if ctx.pac is None else ProxyFound(pac=ctx.pac)


async def _connect(ctx: Context) -> Outcome:
    proxy = ctx.route.proxy
    if proxy is None:
        return Outcome(Status.SKIP, f"direct: no proxy applies ({ctx.route.reason})",
                       ProxyFound(source=ctx.route.source))
    handed = ctx.found(TcpFound).connection
    stream = handed.take() if handed else None
    if stream is None:
        try:
            stream = await connect(ctx.address, proxy.port, ctx.options.timeout)
        except (OSError, TimeoutError) as exc:
            return _unreachable(ctx, proxy, exc)
    start = time.perf_counter()
    answer = await tunnel(stream, ctx.target.host, ctx.target.port, proxy, ctx.options.timeout)
    ms = (time.perf_counter() - start) * 1000
    found = ProxyFound(proxy.masked_url, proxy.source, answer.status, answer.schemes,
                       answer.reason or None, ms, answer.title)
    if answer.status == 200:
        return Outcome(Status.PASS, f"{proxy.masked_url} opened a tunnel to "
                       f"{ctx.target.host}:{ctx.target.port} in {ms:.0f} ms",
                       replace(found, tunnel=ctx.hand_over(stream)))  # tls upgrades it
    stream[1].transport.abort()
    return _failure(ctx, proxy, answer, replace(found, error=answer.error))


def _failure(ctx: Context, proxy: Proxy, answer: Answer, found: ProxyFound) -> Outcome:
    shown = f"{proxy.masked_url} answered CONNECT with {answer.status} {answer.reason}".rstrip()
    facts = Facts(proxy=proxy.masked_url, proxy_source=ctx.proxy_source,
                  status_code=answer.status, title=answer.title or "no title")
    condition: Condition
    if answer.status == 407:
        offered = ", ".join(answer.schemes) or "none named"
        answerable = [s for s in answer.schemes if s.lower() in _ANSWERABLE]
        facts.update(Facts(schemes=offered, proxy_authenticate=offered,
                           has_credentials=proxy.username is not None,
                           kind=ProxyKind.ANSWERABLE if answerable else ProxyKind.UNANSWERABLE))
        summary = f"{shown}: the proxy wants credentials ({offered})"
        if not answerable:
            summary += "; assure-doctor can answer only Basic"
        elif proxy.username is not None:
            summary += "; the credentials given were refused"
        condition = Condition.PROXY_AUTH_REQUIRED
    elif answer.status in _UPSTREAM:
        facts["kind"] = ProxyKind.UPSTREAM
        summary = f"{shown}: the proxy cannot reach {ctx.target.host}"
        condition = Condition.PROXY_UPSTREAM_FAILED
    elif answer.status is not None:
        facts["kind"] = ProxyKind.REFUSED
        summary = shown + (f" ({answer.title})" if answer.title else "")
        condition = Condition.PROXY_REFUSED
    elif answer.kind is ProxyKind.TIMEOUT:
        facts["kind"] = ProxyKind.TIMEOUT
        summary = (f"{proxy.masked_url} gave no answer to CONNECT within "
                   f"{ctx.options.timeout:g} s")
        condition = Condition.PROXY_UPSTREAM_FAILED
    else:
        facts["kind"] = answer.kind or ProxyKind.ERROR
        summary = f"{proxy.masked_url} did not answer CONNECT like an HTTP proxy: {answer.error}"
        condition = Condition.PROXY_REFUSED
    log.warning("Proxy CONNECT failed: %s", summary)
    return Outcome(Status.FAIL, summary, found, condition, facts)


def _unreachable(ctx: Context, proxy: Proxy, exc: BaseException) -> Outcome:
    error = netclass.describe(exc)
    return Outcome(Status.FAIL, f"cannot connect to the proxy {proxy.masked_url}: {error}",
                   ProxyFound(proxy.masked_url, proxy.source, error=error),
                   Condition.PROXY_CONNECT_FAILED,
                   Facts(kind=netclass.connect_kind(exc), step=ProxyStep.TCP,
                         proxy=proxy.masked_url, proxy_source=ctx.proxy_source, error=error))


async def tunnel(stream: Stream, host: str, port: int, proxy: Proxy, timeout: float) -> Answer:
    """Send CONNECT over `stream` and read the answer, bounded in time and size."""
    reader, writer = stream
    authority = host_port(host, port)
    fields = [("Host", authority), ("User-Agent", "assure-doctor (proxy check)"),
              ("Proxy-Connection", "keep-alive")]
    if proxy.authorization:
        fields.append(("Proxy-Authorization", proxy.authorization))
    log.info("About to CONNECT %s via %s (Basic credentials: %s)", authority, proxy.masked_url,
             "yes" if proxy.authorization else "no")
    client = http1.Client(reader, writer, HEAD_LIMIT)
    try:
        client.send_request("CONNECT", authority, fields)
        head = await asyncio.wait_for(client.response(), timeout)
    except TimeoutError:
        return Answer(None, error="no answer in time", kind=ProxyKind.TIMEOUT)
    except http1.Closed:
        return Answer(None, error="the proxy closed the connection", kind=ProxyKind.CLOSED)
    except http1.TooLarge:
        return Answer(None, error=f"an answer head over {HEAD_LIMIT} bytes",
                      kind=ProxyKind.NOT_HTTP)
    except http1.Malformed:
        first = client.sample.split(b"\r\n", 1)[0].decode("latin-1")
        return Answer(None, error=f"not an HTTP answer: {sanitize.text(first, 80)}",
                      kind=ProxyKind.NOT_HTTP)
    except OSError as exc:
        return Answer(None, error=netclass.describe(exc), kind=ProxyKind.CLOSED)
    answer = Answer(head.status, sanitize.text(head.reason, 80),
                    offered_schemes(head.fields.all("proxy-authenticate")))
    log.info("CONNECT %s via %s: %s", authority, proxy.masked_url, answer.status)
    if answer.status == 200:
        return answer
    body = await _error_page(client, min(timeout, _BODY_WAIT))
    title = page_title(body)
    if title is not None:
        log.warning("The proxy's error page: %s", title)
    return Answer(answer.status, answer.reason, answer.schemes, title)


async def _error_page(client: http1.Client, wait: float) -> bytes:
    """As much of the error page as arrives within `wait`, at most BODY_LIMIT bytes."""
    body = b""
    with contextlib.suppress(TimeoutError, OSError, http1.HttpError):
        async with asyncio.timeout(wait):
            while len(body) < BODY_LIMIT and _TITLE.search(body) is None:
                piece = await client.chunk()
                if piece is None:
                    break
                body += piece
    return body[:BODY_LIMIT]


def offered_schemes(values: list[str]) -> tuple[str, ...]:
    """The distinct schemes of the Proxy-Authenticate fields, at most MAX_SCHEMES (a proxy
    may list thousands; the evidence keeps what a person can read)."""
    schemes: list[str] = []
    for value in values:
        for scheme in auth_schemes(value):
            if scheme not in schemes:
                schemes.append(scheme)
                if len(schemes) == MAX_SCHEMES:
                    return tuple(schemes)
    return tuple(schemes)


def auth_schemes(value: str) -> list[str]:
    """The scheme names in one Proxy-Authenticate value (`Basic realm="a, b", NTLM`)."""
    parts, current, quoted = [], "", False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    schemes = []
    for part in parts:
        first = part.strip().split(" ", 1)[0]
        if first and "=" not in first and re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", first):
            schemes.append(sanitize.text(first, 40))
    return schemes


def page_title(body: bytes) -> str | None:
    """The error page's <title>, unescaped, whitespace collapsed and sanitised."""
    found = _TITLE.search(body)
    if found is None:
        return None
    title = " ".join(html.unescape(found.group(1).decode("utf-8", "replace")).split())
    return sanitize.text(title, 120) or None
