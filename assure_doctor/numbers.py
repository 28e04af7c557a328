"""Numbers from outside, read one strict way: ASCII digits only, bounded length, ranges checked.

`str.isdigit` is true for `²` and `٣`, `int()` reads `٣` as 3 and `1_0` as 10, and `float()`
accepts `١٢` and `1_0` too. Flags, environment variables, URLs, headers and files are read here
instead: every function takes any string and returns a number or None, never raises, and never
converts more than a few dozen characters.
"""

from __future__ import annotations

import re

MAX_DIGITS = 20  # enough for any count or size we accept; more is refused before int()
MAX_DECIMAL = 64  # characters of a decimal number (digits, point, exponent)
PORT_MAX = 65535

_WHOLE = re.compile(rf"[+-]?[0-9]{{1,{MAX_DIGITS}}}")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")
# What a person may write for "no limit" or "not a number": refused later as not finite.
_SPECIAL = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)


def whole(text: str, low: int, high: int, *, signed: bool = False) -> int | None:
    """A whole number from `low` to `high` in ASCII digits (a leading sign only if `signed`);
    None when it is anything else: spaces, `_`, other scripts' digits, out of range."""
    if not isinstance(text, str) or not _WHOLE.fullmatch(text):
        return None
    if not signed and text[0] in "+-":
        return None
    value = int(text)
    return value if low <= value <= high else None


def decimal(text: str) -> float | None:
    """A number in ASCII: `[sign]digits[.digits][e[sign]digits]`, or inf / nan (the caller's
    range check refuses those as not finite); None for anything else. No range is applied
    here: every caller checks its own bound and says which."""
    if not isinstance(text, str) or len(text) > MAX_DECIMAL:
        return None
    if _DECIMAL.fullmatch(text) or _SPECIAL.fullmatch(text):
        return float(text)  # only ASCII that float() reads as written
    return None


def port(text: str, low: int = 1) -> int | None:
    """A TCP port (`low` to 65535; 0 is allowed only when `low` is 0, "any port")."""
    return whole(text, low, PORT_MAX)
