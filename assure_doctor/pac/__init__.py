"""Proxy auto-configuration (PAC): which proxy the integration's HTTP stack would take.

    location  where a PAC is: `from_flag("--pac" value)`, `PacLocation`, `PacSource`
    system    the system's PAC settings: `read()` → `SystemPac` (Windows, macOS; none on Linux)
    settings  the pure readers behind `system` (registry values, scutil output, WPAD URLs)
    fetch     `fetch(location, timeout=, ssl_context=)` → `PacScript`, bounded in time and size
    evaluate  `evaluate(script, url, timeout=)` → `PacDecision`, in a process killed at the
              deadline
    rules     `PacDecision`, `PacRoute`, `RouteKind`, `parse_rule`: the returned string, read
    errors    `PacError` → `PacFetchError`, `PacEvalError` (and their `...Timeout`s)

`decide` does it all for one URL: the first location that can be fetched is evaluated. Only
the light modules are imported here; httpx and the evaluator load when used.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

from assure_doctor import logs
from assure_doctor.pac.errors import (
    PacError,
    PacEvalError,
    PacEvalTimeout,
    PacFetchError,
    PacFetchTimeout,
    PacTimeout,
)
from assure_doctor.pac.location import PacLocation, PacSource, from_flag
from assure_doctor.pac.rules import PacDecision, PacRoute, RouteKind

__all__ = ["PacDecision", "PacError", "PacEvalError", "PacEvalTimeout", "PacFetchError",
           "PacFetchTimeout", "PacLocation", "PacRoute", "PacSource", "PacTimeout",
           "RouteKind", "decide", "from_flag"]
log = logs.get("pac")


async def decide(locations: Sequence[PacLocation], url: str, *, timeout: float,
                 ssl_context: ssl.SSLContext) -> PacDecision | None:
    """What the first PAC among `locations` that can be fetched decides for `url`.

    Locations are tried in order. A WPAD candidate that cannot be fetched is skipped, as
    discovery does; any other location that cannot be fetched raises PacFetchError. None:
    no location (or only WPAD candidates, none there): no PAC applies. Fetching and evaluating
    are each bounded by `timeout`.
    """
    from assure_doctor.pac.evaluate import evaluate
    from assure_doctor.pac.fetch import fetch

    for location in locations:
        try:
            script = await fetch(location, timeout=timeout, ssl_context=ssl_context)
        except PacFetchError as exc:
            if not location.optional:
                raise
            log.info("No PAC from %s: %s", location.shown, exc)
            continue
        return await evaluate(script, url, timeout=timeout)
    return None
