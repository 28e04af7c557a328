"""Fetch the issuer a server did not send, from the URL its certificate names (AIA caIssuers),
as a browser would, to tell a missing intermediate from an untrusted issuer.

Only the tls stage's failure path calls it, never a healthy check. Everything here is hostile:
the URL came from a certificate the server chose (`certchain.safe_url` vets it), so the fetch
is bounded in time (the caller's deadline), size (64 KiB), redirects (2) and hops (2 missing
certificates), carries no key, and goes the way the check goes: directly (resolved as the dns
stage resolves), or through the proxy that applies to the URL's host (an absolute-form GET
with the proxy's credentials; a CONNECT tunnel for an https URL).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from cryptography import x509

from assure_doctor import http1, logs, sanitize
from assure_doctor.addresses import bracketed
from assure_doctor.probes import certchain, lookup, netclass
from assure_doctor.probes.connect import connect, handshake
from assure_doctor.probes.proxy import tunnel
from assure_doctor.probes.results import Stream, TcpFound
from assure_doctor.probes.stage import Context
from assure_doctor.proxyconfig import Proxy

log = logs.get("tls")
MAX_HEAD = 16 * 1024
MAX_REDIRECTS = 2
MAX_HOPS = 2  # intermediates fetched one above the other
MAX_ADDRESSES = 4  # of the URL's host, tried in turn
_REDIRECTS = {301, 302, 303, 307, 308}


class FetchError(Exception):
    """Why an AIA URL gave no certificate (a short, safe description)."""


@dataclass(frozen=True)
class Issuers:
    """What the caIssuers URLs gave: `url` is the first, named by the sent chain's top
    certificate; `certificates` are every issuer fetched, nearest the leaf first."""

    url: str
    certificates: tuple[x509.Certificate, ...] = ()
    error: str | None = None


async def issuers(ctx: Context, top: x509.Certificate, anchors: certchain.Anchors
                  ) -> Issuers | None:
    """Fetch the issuer of `top`, then its issuer while that is not an anchor's child, up to
    MAX_HOPS; None when `top` names no URL worth fetching. The caller bounds the time."""
    urls = certchain.ca_issuers(top)
    if not urls:
        return None
    first, current = urls[0], top
    found: list[x509.Certificate] = []
    for _ in range(MAX_HOPS):
        url = certchain.ca_issuers(current)[:1]
        if not url:
            break
        try:
            fetched = await fetch(ctx, url[0])
        except FetchError as exc:
            return Issuers(first, tuple(found), str(exc))
        issuer = certchain.issuer_among(current, fetched)
        if issuer is None:
            return Issuers(first, tuple(found), "the certificate there did not issue "
                                                "the one that named it")
        found += [issuer, *(c for c in fetched if c is not issuer)]
        if anchors.issuer_of(issuer) is not None or anchors.holds(issuer):
            break
        current = issuer
    return Issuers(first, tuple(found))


async def fetch(ctx: Context, url: str) -> list[x509.Certificate]:
    """The certificates at `url`, following at most MAX_REDIRECTS redirects; FetchError
    saying why there are none."""
    for _ in range(MAX_REDIRECTS + 1):
        log.info("About to GET %s (the issuer the server did not send; no key)",
                 sanitize.text(url, 200))
        try:
            status, location, body = await get(ctx, url)
        except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
            raise FetchError(f"GET {sanitize.text(url, 200)}: {netclass.describe(exc)}"
                             ) from exc
        log.info("GET %s: HTTP %s, %d bytes", sanitize.text(url, 200), status, len(body))
        if status in _REDIRECTS and location:
            following = _joined(url, location)
            if following is None:
                raise FetchError(f"HTTP {status} to a URL not worth following")
            url = following
            continue
        if status != 200:
            raise FetchError(f"GET {sanitize.text(url, 200)}: HTTP {status}")
        certificates = certchain.fetched_certificates(body)
        if not certificates:
            raise FetchError(f"GET {sanitize.text(url, 200)}: no certificate in the answer")
        return list(certificates)
    raise FetchError(f"more than {MAX_REDIRECTS} redirects")


async def get(ctx: Context, url: str) -> tuple[int, str | None, bytes]:
    """One GET: (status, Location, body), the body at most MAX_FETCHED_BYTES. The HTTP/1.1
    exchange is all here: `Connection: close`, so the answer ends where the stream does."""
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    host, port = parts.hostname or "", parts.port or (443 if https else 80)
    authority = bracketed(host)
    if parts.port:
        authority += f":{parts.port}"
    stream, proxy = await _open(ctx, host, port, https)
    reader, writer = stream
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if proxy is not None and not https:  # absolute form, to the proxy
            target = f"{parts.scheme.lower()}://{authority}{target}"
        fields = [("Host", authority)]
        if proxy is not None and not https and proxy.authorization:
            fields.append(("Proxy-Authorization", proxy.authorization))
        fields += [("User-Agent", "assure-doctor (AIA fetch)"),
                   ("Accept", "application/pkix-cert, application/pkcs7-mime, */*"),
                   ("Accept-Encoding", "identity"), ("Connection", "close")]
        client = http1.Client(reader, writer, MAX_HEAD)
        client.send_request("GET", target, fields)
        await writer.drain()
        try:
            head = await client.response()
        except http1.HttpError:  # a head too long is no certificate's either
            raise EOFError("not an HTTP answer") from None
        try:
            body = await client.body(certchain.MAX_FETCHED_BYTES)
        except http1.TooLarge:
            raise EOFError(f"an answer over {certchain.MAX_FETCHED_BYTES} bytes") from None
        except http1.HttpError:
            raise EOFError("not an HTTP answer") from None
    finally:
        writer.transport.abort()
    return head.status, head.fields.get("location"), body


def _joined(url: str, location: str) -> str | None:
    """Where a redirect points, when it is worth following."""
    try:
        return certchain.safe_url(urljoin(url, location[:certchain.MAX_URL]))
    except ValueError:  # "http://[": not a URL
        return None


async def _open(ctx: Context, host: str, port: int, https: bool
                ) -> tuple[Stream, Proxy | None]:
    """A connection for the URL the way the check goes: direct, or through the proxy that
    applies to this host (tunnelled for https), or the route a PAC chose for the check;
    TLS verified with the check's anchors."""
    timeout = ctx.options.timeout
    proxy = ctx.route_for(host, port).proxy
    if proxy is None:
        stream = await _connect_any(await lookup.addresses(ctx.options, host), port, timeout)
    else:
        known = ctx.found(TcpFound).address if ctx.route.proxy == proxy else None
        stream = await _connect_any(
            [known] if known else await lookup.addresses(ctx.options, proxy.host), proxy.port,
            timeout)
        if https:
            answer = await tunnel(stream, host, port, proxy, timeout)
            if answer.status != 200:
                stream[1].transport.abort()
                raise OSError(f"the proxy answered CONNECT with {answer.status or answer.error}")
    if https:
        await handshake(stream[1], ctx.options.trust.strict, host, timeout)
    return stream, proxy


async def _connect_any(addresses: list[str], port: int, timeout: float) -> Stream:
    error: BaseException = OSError(f"no address to connect to on port {port}")
    for address in addresses[:MAX_ADDRESSES]:
        try:
            return await connect(address, port, timeout)
        except (OSError, TimeoutError) as exc:
            error = exc
    raise error
