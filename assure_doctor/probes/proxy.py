"""Stage 3 (with a proxy): `CONNECT host:port` through the proxy, and what its answer means.

200 is a tunnel, handed to the tls stage; 407 asks for credentials (we can answer only Basic);
403 and other refusals are the proxy's policy; 502/503/504 mean the proxy cannot reach the API.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from dataclasses import dataclass, replace

from assure_doctor import logs, sanitize
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
    facts = Facts(proxy=proxy.masked_url, proxy_source=proxy.source,
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
                         proxy=proxy.masked_url, proxy_source=proxy.source, error=error))


async def tunnel(stream: Stream, host: str, port: int, proxy: Proxy, timeout: float) -> Answer:
    """Send CONNECT over `stream` and read the answer, bounded in time and size."""
    reader, writer = stream
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}",
             "User-Agent: assure-doctor (proxy check)", "Proxy-Connection: keep-alive"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    log.info("About to CONNECT %s via %s (Basic credentials: %s)", authority, proxy.masked_url,
             "yes" if proxy.authorization else "no")
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = await asyncio.wait_for(_read_head(reader), timeout)
    except TimeoutError:
        return Answer(None, error="no answer in time", kind=ProxyKind.TIMEOUT)
    except asyncio.IncompleteReadError:
        return Answer(None, error="the proxy closed the connection", kind=ProxyKind.CLOSED)
    except asyncio.LimitOverrunError:
        return Answer(None, error=f"an answer head over {HEAD_LIMIT} bytes",
                      kind=ProxyKind.NOT_HTTP)
    except OSError as exc:
        return Answer(None, error=netclass.describe(exc), kind=ProxyKind.CLOSED)
    answer = parse_head(head)
    log.info("CONNECT %s via %s: %s", authority, proxy.masked_url,
             answer.status if answer.status is not None else answer.error)
    if answer.status is None or answer.status == 200:
        return answer
    body = await _read_body(reader, head, min(timeout, _BODY_WAIT))
    title = page_title(body)
    if title is not None:
        log.warning("The proxy's error page: %s", title)
    return Answer(answer.status, answer.reason, answer.schemes, title)


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await reader.read(HEAD_LIMIT + 1 - len(head))
        if not chunk:
            raise asyncio.IncompleteReadError(head, None)
        head += chunk
        if len(head) > HEAD_LIMIT and b"\r\n\r\n" not in head:
            raise asyncio.LimitOverrunError("head too long", len(head))
    return head


async def _read_body(reader: asyncio.StreamReader, head: bytes, wait: float) -> bytes:
    """As much of the error page as arrives within `wait`, at most BODY_LIMIT bytes."""
    body = head.partition(b"\r\n\r\n")[2]
    deadline = time.monotonic() + wait
    while len(body) < BODY_LIMIT and _TITLE.search(body) is None:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            chunk = await asyncio.wait_for(reader.read(BODY_LIMIT - len(body)), left)
        except (TimeoutError, OSError):
            break
        if not chunk:
            break
        body += chunk
    return body[:BODY_LIMIT]


def parse_head(head: bytes) -> Answer:
    """The status, reason and offered auth schemes of a CONNECT answer's head."""
    text = head.partition(b"\r\n\r\n")[0].decode("latin-1")
    start, *fields = text.split("\r\n")
    words = start.split(" ", 2)
    if len(words) < 2 or not words[0].startswith("HTTP/") or not words[1].isdigit():
        return Answer(None, error=f"not an HTTP answer: {sanitize.text(start, 80)}",
                      kind=ProxyKind.NOT_HTTP)
    schemes: list[str] = []
    for line in fields:
        name, _, value = line.partition(":")
        if name.strip().lower() == "proxy-authenticate":
            schemes += [s for s in auth_schemes(value) if s not in schemes]
    reason = sanitize.text(words[2], 80) if len(words) > 2 else ""
    return Answer(int(words[1]), reason, tuple(schemes))


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
