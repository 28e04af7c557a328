"""One customer's daily quota, shared by every site's monitor through Prometheus as the ledger.

Each monitor exports what its state directory (its "spender") has spent today per key
(`assure_ping_key_spent{key_id, day, spender}`). Before a ping, a monitor with `--ledger` asks
that Prometheus for every spender's spend of the same key today, and pings only while

    others (as the ledger sees them) + own spend (exact, from the local budget) + this ping
    <= --customer-budget

Its own spend is read locally, not from the ledger, so only the other sites' latest pings can
be missing from the sum: at most what they reserve within one scrape interval plus one
rendering of /metrics. When the ledger cannot be asked, the local --ping-budget alone applies,
and `assure_ledger_up` says so. The local, file-locked budget stays the hard cap either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import secrets
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from assure_doctor import logs, numbers, sanitize
from assure_doctor.monitor import fleet
from assure_doctor.monitor.config import MonitorConfig

SERIES = "assure_ping_key_spent"
QUERY_PATH = "/api/v1/query"
TIMEOUT = 3.0  # seconds for the whole query: a slow ledger must not hold the ping for long
MAX_BODY = 256 * 1024  # one row per spender of this key: a few hundred bytes each
MAX_ROWS = 1000
MAX_DEPTH = 8  # an instant-query answer nests 5 deep ({data: {result: [{value: [...]}]}})
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")
SPENDER_FILE = "spender-id"
_SPENDER = re.compile(r"[0-9a-f]{16}")
log = logs.get("ledger")


class LedgerError(Exception):
    """The ledger could not be asked, or its answer was not one we can trust."""


@dataclass(frozen=True)
class LedgerView:
    """The last ledger decision, for the metrics."""

    up: bool
    spent: int  # the customer's spend today as this monitor counts it (others + own)
    budget: int  # --customer-budget


@dataclass(frozen=True)
class Cap:
    """How many key-carrying requests today may reach, and why."""

    daily: int
    view: LedgerView
    customer: bool  # True when the customer budget, not the local one, is the tighter cap


def spender_id(state_dir: Path) -> str:
    """This state directory's id in the ledger, kept beside the budget so that a restart (or a
    second process on the same budget file) is the same spender, never counted twice."""
    path = state_dir / SPENDER_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        with path.open("rb") as handle:
            text = handle.read(64).decode("ascii", "replace").strip()
        if _SPENDER.fullmatch(text):
            return text
        log.warning("%s is malformed; choosing a new spender id", path)
        path.unlink()
    fresh = secrets.token_hex(8)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its id
        return spender_id(state_dir)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(fresh + "\n")
    return fresh


def fleet_ledger(config: MonitorConfig) -> tuple[str, Ledger | None]:
    """This monitor's spender id, and its ledger when --ledger is given."""
    spender = spender_id(config.state_dir)
    settings = fleet.ledger(config.ledger_url, config.customer_budget)
    if settings is None:
        return spender, None
    url, budget = settings
    return spender, Ledger(url, budget, spender)


class Ledger:
    """Asks one Prometheus for the other spenders' spend of a key today."""

    def __init__(self, url: str, customer_budget: int, spender: str,
                 timeout: float = TIMEOUT) -> None:
        self.url = url
        self.customer_budget = customer_budget
        self.spender = spender
        self.timeout = timeout
        self._tls = ssl.create_default_context()  # the system's anchors, loaded once
        self._up: bool | None = None  # the last query's outcome, to log changes only

    async def cap(self, key_id: str, day: str, local_daily: int, own_spent: int) -> Cap:
        """Today's cap for this key: the customer budget less the others' spend, never above
        the local budget; the local budget alone when the ledger cannot be asked."""
        try:
            others = await self.others_spent(key_id, day)
        except LedgerError as exc:
            if self._up is not False:
                log.warning("ALERT: the ledger %s cannot be asked (%s); until it can, only "
                            "this monitor's own --ping-budget %d limits its pings", self.url,
                            exc, local_daily)
            self._up = False
            return Cap(local_daily, LedgerView(False, own_spent, self.customer_budget), False)
        if self._up is False:
            log.warning("The ledger %s answers again: the customer budget %d applies",
                        self.url, self.customer_budget)
        self._up = True
        customer = max(0, self.customer_budget - others)
        view = LedgerView(True, others + own_spent, self.customer_budget)
        return Cap(min(local_daily, customer), view, customer < local_daily)

    async def others_spent(self, key_id: str, day: str) -> int:
        """The sum, over every spender but this one, of its latest spend of the key today:
        last_over_time keeps a monitor that stopped (its series no longer scraped) counted
        all day, and `max by (spender)` counts a spender once however often it is scraped."""
        # The key id is hex and the day digits and dashes: nothing to escape in the query.
        query = (f'max by (spender) (last_over_time({SERIES}{{key_id="{key_id}",day="{day}"}}'
                 f"[1d]))")
        body = await self._get(query)
        try:
            rows = parse_answer(body)
        except LedgerError:
            log.warning("The ledger's answer: %s", sanitize.text(body.decode("utf-8", "replace"),
                                                                 500))
            raise
        return sum(spent for spender, spent in rows.items() if spender != self.spender)

    async def _get(self, query: str) -> bytes:
        url = self.url + QUERY_PATH
        log.info("About to GET %s?query=%s (the ledger)", url, query)
        started = time.monotonic()
        try:
            # trust_env=False: the ledger is the company's own Prometheus, reached directly
            # (no proxy from the environment), with the system's trust anchors.
            async with (
                asyncio.timeout(self.timeout),
                httpx.AsyncClient(trust_env=False, timeout=self.timeout, verify=self._tls,
                                  follow_redirects=False) as client,
                client.stream("GET", url, params={"query": query},
                              # identity: the body is bounded as sent, no gzip bomb
                              headers={"Accept-Encoding": "identity"}) as response,
            ):
                body = await _read_bounded(response)
        except TimeoutError:
            raise LedgerError(f"no answer within {self.timeout:g} s") from None
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            raise LedgerError(sanitize.text(f"{type(exc).__name__}: {exc}", 200)) from None
        log.info("%d response from the ledger in %.0f ms (%d bytes)", response.status_code,
                 (time.monotonic() - started) * 1000, len(body))
        if response.status_code != 200:
            log.warning("Ledger answered %d: %s", response.status_code,
                        sanitize.text(body.decode("utf-8", "replace"), 500))
            raise LedgerError(f"HTTP {response.status_code}")
        return body


async def _read_bounded(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > MAX_BODY:
            raise LedgerError(f"the answer is larger than {MAX_BODY} bytes")
    return bytes(body)


def parse_answer(body: bytes) -> dict[str, int]:
    """Spend by spender from a Prometheus instant-query answer, or LedgerError: every field is
    checked, since a wrong number here would let the sites overspend the customer's quota."""
    if len(body) > MAX_BODY:
        raise LedgerError(f"the answer is larger than {MAX_BODY} bytes")
    if not _shallow(body):
        raise LedgerError(f"the answer is nested deeper than {MAX_DEPTH} levels")
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: a guard in depth, as json recurses
        raise LedgerError("the answer is not JSON") from None
    if not isinstance(answer, dict) or answer.get("status") != "success":
        raise LedgerError("the answer's status is not success")
    data = answer.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        raise LedgerError("the answer is not an instant vector")
    result = data.get("result")
    if not isinstance(result, list) or len(result) > MAX_ROWS:
        raise LedgerError("the answer's result is not a list of at most "
                          f"{MAX_ROWS} rows")
    rows: dict[str, int] = {}
    for row in result:
        spender, spent = _row(row)
        rows[spender] = max(spent, rows.get(spender, 0))
    return rows


def _shallow(body: bytes) -> bool:
    """Whether no array or object in `body` nests deeper than MAX_DEPTH (strings skipped),
    checked before json.loads, which recurses once per level."""
    depth = 0
    for bracket in _BRACKETS.finditer(_STRINGS.sub(b"", body)):
        depth += 1 if bracket.group() in (b"[", b"{") else -1
        if depth > MAX_DEPTH:
            return False
    return True


def _row(row: object) -> tuple[str, int]:
    if not isinstance(row, dict) or not isinstance(row.get("metric"), dict):
        raise LedgerError("a result row has no metric")
    spender = row["metric"].get("spender", "")
    value = row.get("value")
    if not isinstance(spender, str) or not isinstance(value, list) or len(value) != 2 \
            or not isinstance(value[1], str):
        raise LedgerError("a result row is malformed")
    number = numbers.decimal(value[1])
    if number is None:
        raise LedgerError("a result row's value is not a number")
    if not math.isfinite(number) or not 0 <= number <= 10**9:
        raise LedgerError("a result row's value is out of range")
    return spender, math.ceil(number)
