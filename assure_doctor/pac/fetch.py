"""Fetch a PAC: over http(s), or from a local file, bounded in time and size.

A URL is fetched directly (never through a proxy, as Windows and macOS fetch theirs), resolved
by the operating system, verified against the `ssl.SSLContext` the check uses, following at
most a few redirects, and read to at most `MAX_PAC_BYTES` (after decompression) within
`timeout` seconds in all. A file is read with `localfile.read_regular`: regular files only, no
waiting on a FIFO, no symbolic link followed.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assure_doctor import localfile, logs, numbers, sanitize
from assure_doctor.errors import InputError
from assure_doctor.pac.errors import PacFetchError, PacFetchTimeout
from assure_doctor.pac.location import (
    File,
    LocationError,
    PacLocation,
    PacSource,
    Url,
    from_flag,
)

if TYPE_CHECKING:
    import httpx

log = logs.get("pac")
MAX_PAC_BYTES = localfile.MIB  # real PAC files are a few KiB; Windows refuses over 1 MiB too
MAX_REDIRECTS = 5
BODY_SHOWN = 300  # characters of an error page's body in the log
_HEADERS = {"User-Agent": "assure-doctor (PAC fetch)",
            "Accept": "application/x-ns-proxy-autoconfig, application/javascript, */*"}


@dataclass(frozen=True)
class PacScript:
    """A fetched PAC: its text and where it came from."""

    location: PacLocation
    text: str = field(repr=False)
    size: int
    content_type: str | None
    ms: float


def _error(location: PacLocation, what: str, timeout: bool = False) -> PacFetchError:
    kind = PacFetchTimeout if timeout else PacFetchError
    return kind(f"{location.named}: {what}", source=location.source.value,
                url=location.shown, reason=what)


async def fetch(location: PacLocation, *, timeout: float, ssl_context: ssl.SSLContext,
                limit: int = MAX_PAC_BYTES) -> PacScript:
    """The PAC at `location`; PacFetchError (PacFetchTimeout) when it cannot be had."""
    start = time.perf_counter()
    try:
        target = location.target()
    except LocationError as exc:
        raise _error(location, str(exc)) from None
    if isinstance(target, File):
        data, content_type = await _read_file(location, target, limit), None
    else:
        data, content_type = await _get(location, target, timeout, ssl_context, limit)
    ms = (time.perf_counter() - start) * 1000
    return PacScript(location, decode(data), len(data), content_type, ms)


def given(text: str, name: str = "--pac") -> PacLocation:
    """The PAC `--pac URL_OR_FILE` names, refused at the edge (InputError naming `name`, never
    the value) when it is no http(s) URL or path, or a file that cannot be read: bad input,
    not a finding. A URL is fetched only when a check runs."""
    location = from_flag(text, name)
    target = location.target()
    if isinstance(target, File):
        localfile.read_regular(target.path, MAX_PAC_BYTES, name, follow_symlinks=False)
    return location


def decode(data: bytes) -> str:
    """A PAC's text: UTF-8 (a byte-order mark dropped), else Latin-1, which never fails."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


async def _read_file(location: PacLocation, target: File, limit: int) -> bytes:
    what = "--pac" if location.source is PacSource.FLAG else location.named
    try:
        return await asyncio.to_thread(localfile.read_regular, target.path, limit, what,
                                       follow_symlinks=False)
    except InputError as exc:
        raise PacFetchError(str(exc), source=location.source.value,
                            url=location.shown, reason=str(exc).removeprefix(f"{what}: ")
                            ) from None


async def _get(location: PacLocation, target: Url, timeout: float,
               ssl_context: ssl.SSLContext, limit: int) -> tuple[bytes, str | None]:
    import httpx

    log.info("About to GET %s (the PAC from %s)", target.shown, location.source.describe)
    start = time.perf_counter()
    try:
        async with asyncio.timeout(timeout), httpx.AsyncClient(
                verify=ssl_context, trust_env=False, follow_redirects=True,
                max_redirects=MAX_REDIRECTS, timeout=timeout, headers=_HEADERS) as client, \
                client.stream("GET", target.url) as response:
            if response.status_code != 200:
                await _refused(location, target, response)
            body = await _body(location, response, limit)
            content_type = response.headers.get("content-type")
    except TimeoutError:
        log.warning("GET %s: no complete answer within %g s", target.shown, timeout)
        raise _error(location, f"no complete answer within {timeout:g} s", True) from None
    except httpx.TimeoutException as exc:
        log.warning("GET %s: %s", target.shown, type(exc).__name__)
        raise _error(location, f"no answer within {timeout:g} s", True) from None
    except httpx.TooManyRedirects:
        raise _error(location, f"more than {MAX_REDIRECTS} redirects") from None
    except httpx.HTTPError as exc:
        reason = _describe(exc)
        log.warning("GET %s failed: %s", target.shown, reason)
        raise _error(location, reason) from None
    log.info("GET %s: HTTP 200, %d bytes in %.0f ms", target.shown, len(body),
             (time.perf_counter() - start) * 1000)
    return body, sanitize.text(content_type, 100) if content_type else None


async def _refused(location: PacLocation, target: Url, response: httpx.Response) -> None:
    """Log the error page's start and raise for a status other than 200."""
    page = b""
    async for chunk in response.aiter_bytes():
        page += chunk
        if len(page) >= 4 * BODY_SHOWN:
            break
    status = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    log.warning("GET %s: %s; body: %s", target.shown, sanitize.text(status, 80),
                sanitize.text(page.decode("utf-8", "replace"), BODY_SHOWN))
    raise _error(location, sanitize.text(status, 80))


async def _body(location: PacLocation, response: httpx.Response, limit: int) -> bytes:
    declared = numbers.whole(response.headers.get("content-length", ""), 0, 10**18)
    if declared is not None and declared > limit:
        raise _error(location, f"larger than {limit // 1024} KiB ({declared} bytes)")
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():  # decompressed: a gzip bomb stops here too
        total += len(chunk)
        if total > limit:
            raise _error(location, f"larger than {limit // 1024} KiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _describe(exc: BaseException) -> str:
    """The most specific reason in an httpx error's chain, one line: the socket's or TLS's
    error when there is one, else httpx's own words."""
    import socket

    from assure_doctor.probes import netclass

    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    low = next((error for error in reversed(chain) if isinstance(error, OSError)), None)
    if isinstance(low, ssl.SSLCertVerificationError):
        reason = f"the certificate did not verify ({low.verify_message or low.reason})"
    elif isinstance(low, socket.gaierror):
        reason = f"the host name does not resolve ({low.strerror or 'no address'})"
    elif low is not None:
        reason = netclass.describe(low)
    else:
        reason = next((str(error) for error in chain if str(error).strip()),
                      type(exc).__name__)
    return sanitize.text(reason, 160)
