"""Total parsers for the values of HTTP fields that come from outside (dates, Retry-After,
Location) and a bounded sample of a body. Message heads and framing are `http1`'s (h11).

Contract: every function here takes what a server sent (bytes or str, any length, any code
points) and returns a value or None. None means "absent or unusable"; no function raises, and
none does unbounded work. Numbers are read by `numbers` (ASCII digits only, range-checked),
and dates must be one of the three formats RFC 9110 names. Property tests in
tests/test_parsers.py hold every function to this.
"""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime
from urllib.parse import urlsplit

from assure_doctor import numbers

MAX_HEAD_BYTES = 65536
# Far beyond any --max-retry-after; a bigger Retry-After only means "not soon".
MAX_RETRY_AFTER = 365 * 86400.0
_MAX_FIELD = 256  # longest Date / Retry-After worth reading

_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_MONTH = "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = "([0-9]{2}):([0-9]{2}):([0-9]{2})"
# RFC 9110 section 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms.
_IMF = re.compile(rf"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{{1,2}}) {_MONTH} ([0-9]{{4}}) "
                  rf"{_TIME} (?:GMT|UTC)", re.ASCII)
_RFC850 = re.compile(rf"(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, ([0-9]{{2}})-{_MONTH}-"
                     rf"([0-9]{{2}}) {_TIME} GMT", re.ASCII)
_ASCTIME = re.compile(rf"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) {_MONTH} ([ 0-9][0-9]) {_TIME} "
                      r"([0-9]{4})", re.ASCII)


def split_head(head: bytes) -> tuple[list[str], dict[str, str]]:
    """A request head's line as words (method, target, `HTTP/1.1`) and its fields (names
    lower-cased, repeats joined with ", "), read by the one HTTP parser (h11, in `http1`);
    ([], {}) when it is not a request head. For servers that read a head whole (the sandbox)."""
    from assure_doctor import http1  # h11: only where a head is read

    parsed = http1.parse_request_head(head, MAX_HEAD_BYTES)
    if parsed is None:
        return [], {}
    return [parsed.method, parsed.target, f"HTTP/{parsed.version}"], parsed.fields.as_dict()


def parse_date(value: str | None) -> datetime | None:
    """An HTTP date (`Date`, `Retry-After`) as an aware UTC datetime; None when unusable."""
    if not value or len(value) > _MAX_FIELD:
        return None
    value = value.strip(" \t")
    if match := _IMF.fullmatch(value):
        day, month, year, hour, minute, second = match.groups()
    elif match := _RFC850.fullmatch(value):
        day, month, short_year, hour, minute, second = match.groups()
        # RFC 9110: a two-digit year more than 50 years ahead is in the past century.
        year = str(2000 + int(short_year) if int(short_year) < 70 else 1900 + int(short_year))
    elif match := _ASCTIME.fullmatch(value):
        month, day, hour, minute, second, year = match.groups()
    else:
        return None
    try:
        # A leap second (:60) is read as :59.
        return datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute),
                        min(int(second), 59), tzinfo=UTC)
    except ValueError:  # 31 February, hour 25, year 0
        return None


def retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from `now`: delta-seconds or an HTTP date, capped at a year."""
    if not value:
        return None
    value = value.strip(" \t")
    if _DIGITS.fullmatch(value):
        seconds = numbers.whole(value, 0, 10**12)  # None: more digits than any wait
        return MAX_RETRY_AFTER if seconds is None else min(float(seconds), MAX_RETRY_AFTER)
    when = parse_date(value)
    if when is None:
        return None
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)


def location_host(value: str | None) -> str | None:
    """The host a `Location` points at, lower-cased; None for a relative or unusable one."""
    if not value:
        return None
    try:
        host = urlsplit(value[:4096].strip()).hostname
    except ValueError:  # "http://[", or a netloc that NFKC-normalises into a separator
        return None
    return host or None


class BodySample:
    """The first `limit` bytes of a body, decoded, however much the server sends.

    Feed raw (transfer-decoded) chunks; gzip and deflate are inflated with a cap on the output,
    so a decompression bomb costs at most `limit` bytes. Other codings are kept as they came.
    """

    def __init__(self, limit: int, content_encoding: str | None) -> None:
        self.limit = limit
        self.data = b""
        self.raw_bytes = 0
        self.broken = False
        coding = (content_encoding or "identity").strip(" \t").lower()
        wbits = {"gzip": 31, "x-gzip": 31, "deflate": 15}.get(coding)
        self._inflate = zlib.decompressobj(wbits) if wbits else None

    @property
    def full(self) -> bool:
        return len(self.data) >= self.limit or self.broken

    def feed(self, chunk: bytes) -> bool:
        """Take a chunk; True once the sample is complete and reading can stop."""
        self.raw_bytes += len(chunk)
        room = self.limit - len(self.data)
        if room <= 0:
            return True
        if self._inflate is None:
            self.data += chunk[:room]
        else:
            try:
                self.data += self._inflate.decompress(chunk, room)
            except zlib.error:
                self.broken = True
        return self.full

    def text(self) -> str:
        """The sample as text (UTF-8, undecodable bytes replaced)."""
        return self.data.decode("utf-8", "replace")
