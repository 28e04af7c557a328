"""Numbers from outside (flags, TOML): finite, of the right kind, and within a range.

One `Bound` per setting serves the command line (`parse`, an argparse type), the TOML file and
the options' own checks (`check`), so every door applies the same rule.
"""

from __future__ import annotations

import argparse
import math
from typing import NamedTuple

from assure_doctor import numbers
from assure_doctor.errors import InputError


class Bound(NamedTuple):
    """`low` to `high` inclusive (`low` excluded when `low_open`); whole numbers if `integer`.
    (A named tuple, not a dataclass: `--help` builds its parser from these without importing
    dataclasses and inspect.)"""

    low: float
    high: float
    integer: bool = False
    low_open: bool = False
    unit: str = " seconds"
    quiet: bool = False  # errors never repeat the value (not even as a number)

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        low = f"more than {self.low:g}" if self.low_open else f"at least {self.low:g}"
        return f"{kind}, {low} and at most {self.high:g}{self.unit}"

    def problem(self, value: float) -> str | None:
        """Why `value` is out of bounds, or None."""
        if not math.isfinite(value):
            return f"must be finite ({self.describe()})"
        if self.integer and value != int(value):
            return f"must be {self.describe()}"
        too_low = value <= self.low if self.low_open else value < self.low
        if too_low or value > self.high:
            return f"must be {self.describe()}"
        return None

    def check(self, value: float, name: str) -> None:
        """Raise InputError naming `name` (a flag, or a TOML key) when `value` is out of bounds."""
        problem = self.problem(value)
        if problem:
            raise InputError(f"{name} {value:g}: {problem}")

    def parse(self, text: str) -> float:
        """An argparse type: the number, or an error that does not repeat the text."""
        raw = text.strip()
        value: float | None = numbers.whole(raw, -(10**18), 10**18, signed=True) \
            if self.integer else numbers.decimal(raw)
        if value is None:
            raise argparse.ArgumentTypeError(f"not {self.describe()}")
        problem = self.problem(value)
        if problem:
            raise argparse.ArgumentTypeError(problem if self.quiet else f"{value:g}: {problem}")
        return value

    def parse_int(self, text: str) -> int:
        """`parse` for an integer bound."""
        return int(self.parse(text))


DAY = 86400
# The check's own numbers: `check`, `tui` and `monitor` flags, the TOML file, CheckOptions.
DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 2  # the guide: at least 3 attempts
DEFAULT_RETRY_PAUSE = 2.0
DEFAULT_MAX_RETRY_AFTER = 30.0
DEFAULT_MAX_SKEW = 10.0
MAX_RETRIES = 10
# Each bound names the flag; the TOML file checks its keys against the same bounds.
CHECK_BOUNDS = {
    "timeout": Bound(0, 600, low_open=True),
    "retries": Bound(0, MAX_RETRIES, integer=True, unit=" (each retry spends from the "
                     "customer's daily quota)"),
    "retry_pause": Bound(0, 3600),
    "max_retry_after": Bound(0, DAY),
    "max_skew": Bound(0, 365 * DAY, low_open=True),
}
DAILY_QUOTA = 10_000  # the customer's key-carrying requests a day (the guide)
# The monitor's cadences and budget (here, not in monitor.config: `--help` must stay light).
MONITOR_BOUNDS = {
    "interval": Bound(0, DAY, low_open=True),
    "ping_interval": Bound(0, 7 * DAY, low_open=True),
    "ping_budget": Bound(0, DAILY_QUOTA, integer=True, unit=" requests a day"),
    "jitter": Bound(0, 3600),
}
# --customer-budget: every site's key-carrying requests a day, together (with --ledger).
CUSTOMER_BUDGET = Bound(0, DAILY_QUOTA, integer=True, unit=" requests a day", quiet=True)
