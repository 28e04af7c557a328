"""Stage 4: compare our clock with the server's `Date` header, bounded by the round trip.

It sends no key, so it may run over an unverified connection: a TLS failure is often a wrong
local clock, and this stage is how we tell.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from datetime import UTC, datetime
from typing import Any

from assure_doctor import httpmsg, logs
from assure_doctor.kinds import Condition, Facts
from assure_doctor.model import Outcome, Status
from assure_doctor.probes import Context, netclass, tlsctx
from assure_doctor.probes.connect import open_tls

NAME = "clock"
log = logs.get(NAME)
_MAX_HEADER_BYTES = 65536


async def run(ctx: Context) -> Outcome:
    target = ctx.target
    verified = bool(ctx.evidence("tls").get("verified"))
    context = ctx.verify_context if verified else tlsctx.looking()
    request = (
        f"GET {target.path} HTTP/1.1\r\nHost: {target.host_header}\r\n"
        "User-Agent: assure-doctor (clock check, no key)\r\nAccept: */*\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    log.info("About to GET %s to read the server clock (no key sent, %s connection)",
             target.url, "verified" if verified else "unverified")
    stream = ctx.take("tls")
    if stream is None:
        try:
            stream = await open_tls(ctx.address, target.port, ctx.options.timeout, context,
                                    target.host)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            return _unreachable(netclass.describe(exc))
    reader, writer = stream
    try:
        local_before = time.time()
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ctx.options.timeout)
        local_after = time.time()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        return _unreachable(netclass.describe(exc) if isinstance(exc, OSError) else "no answer")
    finally:
        writer.transport.abort()

    start, headers = httpmsg.split_head(head[:_MAX_HEADER_BYTES])
    status = int(start[1]) if len(start) > 1 and start[1].isdigit() else None
    source = f"Date header of GET {target.url} (HTTP {status}, no key)"
    log.info("%s response to the clock check; Date: %s", status, headers.get("date", "none"))
    server = httpmsg.parse_date(headers.get("date"))
    if server is None:
        return Outcome(Status.SKIP, "the server sent no usable Date header",
                       {"source": source, "skew_seconds": None})
    rtt = local_after - local_before
    # Date has whole seconds: the server's time lies in [Date, Date + 1), taken during the RTT.
    skew = server.timestamp() + 0.5 - (local_before + local_after) / 2
    uncertainty = 0.5 + rtt / 2
    evidence: dict[str, Any] = {
        "skew_seconds": round(skew, 3),
        "uncertainty_seconds": round(uncertainty, 3),
        "source": source,
        "server_date": server.isoformat(),
        "local_time": datetime.fromtimestamp(local_before, UTC).isoformat(timespec="milliseconds"),
        "rtt_ms": round(rtt * 1000, 1),
    }
    text = skew_text(skew)
    if abs(skew) - uncertainty > ctx.options.max_skew:
        facts: Facts = {"kind": "ahead" if skew < 0 else "behind", "skew_text": text}
        log.warning("Clock skew: this machine's clock is %s", text)
        return Outcome(Status.WARN, f"this machine's clock is {text} (limit "
                       f"{ctx.options.max_skew:g} s)", evidence, Condition.CLOCK_SKEW, facts)
    return Outcome(Status.PASS, f"clocks agree: skew {skew:+.1f} s (±{uncertainty:.1f} s)",
                   evidence)


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
    log.info("Clock check could not reach the server: %s", error)
    return Outcome(Status.SKIP, f"could not read the server's clock: {error}",
                   {"skew_seconds": None, "source": None, "error": error})
