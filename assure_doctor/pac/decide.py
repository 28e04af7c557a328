"""The PAC decision for one URL: the first location that can be fetched, evaluated."""

from __future__ import annotations

import ssl
from collections.abc import Sequence

from assure_doctor import logs
from assure_doctor.pac.errors import PacFetchError
from assure_doctor.pac.location import PacLocation
from assure_doctor.pac.rules import PacDecision

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
