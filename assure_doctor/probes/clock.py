"""Stage 4: compare our clock with the server's `Date` header, bounded by the round trip.

It sends no key, so it may run over an unverified connection: a TLS failure is often a wrong
local clock, and this stage is how we tell.

What it measures: the `Date` of the response to its own keyless `GET` of the ping URL, sent
on the connection the tls stage verified (or, after a certificate failure, on a connection
made only to look). The server's time lies in [Date, Date + 1 s) at some moment during the
round trip, so the skew is reported with an uncertainty of 0.5 s + RTT/2. The request is
keep-alive: its response is read whole (bounded) and the connection is handed to the ping,
so a healthy check makes one TCP connection and one TLS handshake. The ping's response
carries a `Date` too; the ping stage reports that second sample, taken the same way, as its
`clock` evidence (this stage's verdict is already given by then).

One deadline (`--timeout`) bounds the whole exchange: connect, request, head and body.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from assure_doctor import http1, httpmsg, logs, sanitize, trust
from assure_doctor.kinds import Condition, Facts
from assure_doctor.model import Outcome, Status
from assure_doctor.probes import netclass, path
from assure_doctor.probes.results import ClockFound, ClockSample, TlsFound
from assure_doctor.probes.stage import Context

NAME = "clock"
log = logs.get(NAME)
HEAD_LIMIT = 65536  # the answer's head
_MAX_BODY_BYTES = 65536  # a bigger keyless answer is not read: the connection is dropped


async def run(ctx: Context) -> Outcome:
    target = ctx.target
    tls = ctx.found(TlsFound)
    verified = tls.verified_with is not None
    context = tls.verified_with or trust.looking()
    fields = [("Host", target.host_header), ("User-Agent", "assure-doctor (clock check, no key)"),
              ("Accept", "*/*"), ("Accept-Encoding", "identity")]
    log.info("About to GET %s to read the server clock (no key sent, %s connection)",
             target.url, "verified" if verified else "unverified")
    stream = tls.connection.take() if tls.connection else None
    deadline = asyncio.get_running_loop().time() + ctx.options.timeout
    try:
        async with asyncio.timeout_at(deadline):
            if stream is None:
                stream = await path.open_tls(ctx, context)  # tunnelled when proxied
            reader, writer = stream
            client = http1.Client(reader, writer, HEAD_LIMIT)
            local_before = time.time()
            client.send_request("GET", target.path, fields)
            await writer.drain()
            head = await client.response()
            local_after = time.time()
    except (OSError, TimeoutError, http1.HttpError) as exc:
        if stream is not None:
            stream[1].transport.abort()
        return _unreachable(netclass.describe(exc) if isinstance(exc, OSError) else
                            "the answer is not HTTP/1.1" if isinstance(exc, http1.Malformed)
                            else "no answer")

    status = head.status
    connection = None
    if verified and await _read_body(client, head, deadline):
        connection = ctx.hand_over(stream)  # verified and idle again: the ping's goes here
    else:
        stream[1].transport.abort()
    date = head.fields.get("date")
    source = f"Date header of GET {target.url} (HTTP {status}, no key)"
    log.info("%s response to the clock check; Date: %s", status,
             sanitize.text(date or "none", 100))
    found = ClockFound(sample(date, local_before, local_after), source, connection=connection)
    if found.sample is None:
        return Outcome(Status.SKIP, "the server sent no usable Date header", found)
    skew, uncertainty = found.sample.skew_seconds, found.sample.uncertainty_seconds
    text = skew_text(skew)
    if abs(skew) - uncertainty > ctx.options.max_skew:
        log.warning("Clock skew: this machine's clock is %s", text)
        return Outcome(Status.WARN, f"this machine's clock is {text} (limit "
                       f"{ctx.options.max_skew:g} s)", found, Condition.CLOCK_SKEW,
                       Facts(skew_text=text))
    return Outcome(Status.PASS, f"clocks agree: skew {skew:+.1f} s (±{uncertainty:.1f} s)",
                   found)


def sample(date: str | None, local_before: float, local_after: float) -> ClockSample | None:
    """The skew a `Date` header shows, given when the request left and its answer came."""
    server = httpmsg.parse_date(date)
    if server is None:
        return None
    rtt = max(local_after - local_before, 0.0)
    # Date has whole seconds: the server's time lies in [Date, Date + 1), taken during the RTT.
    skew = server.timestamp() + 0.5 - (local_before + local_after) / 2
    return ClockSample(skew_seconds=skew, uncertainty_seconds=0.5 + rtt / 2,
                       server_date=server,
                       local_time=datetime.fromtimestamp(local_before, UTC), rtt_ms=rtt * 1000)


async def _read_body(client: http1.Client, head: http1.ResponseHead, deadline: float
                     ) -> bool:
    """Read the body to its end so the connection can carry the next request; False when it
    cannot be reused (no keep-alive, no framing, too big, too slow, malformed)."""
    if head.close_delimited:
        return False
    try:
        async with asyncio.timeout_at(deadline):
            await client.body(_MAX_BODY_BYTES)
    except (OSError, TimeoutError, http1.HttpError):
        return False
    return client.reusable


def skew_text(skew: float) -> str:
    """'3 days 2 h ahead of the API' for skew = server - local (negative: we are ahead)."""
    direction = "ahead of" if skew < 0 else "behind"
    return f"{_duration(abs(skew))} {direction} the API's"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    hours = round(seconds / 3600)
    return f"{hours // 24} days {hours % 24} h"


def _unreachable(error: str) -> Outcome:
    error = sanitize.text(error, 300)
    log.info("Clock check could not reach the server: %s", error)
    return Outcome(Status.SKIP, f"could not read the server's clock: {error}",
                   ClockFound(error=error))
