"""Total parsers for the pieces of HTTP/1.1 that come from outside.

Contract: every function here takes what a server sent (bytes or str, any length, any code
points) and returns a value or None. None means "absent or unusable"; no function raises, and
none does unbounded work. Digits are ASCII digits only (`"²".isdigit()` is True and `int("²")`
raises), numbers are range-checked before conversion, and dates must be one of the three
formats RFC 9110 names. Property tests in tests/test_parsers.py hold every function to this.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 65536
# Far beyond any --max-retry-after; a bigger Retry-After only means "not soon".
MAX_RETRY_AFTER = 365 * 86400.0
_MAX_FIELD = 256  # longest Date / Retry-After / Content-Length worth reading
_MAX_CONTENT_LENGTH_DIGITS = 18

_STATUS_LINE = re.compile(r"HTTP/([0-9])\.([0-9]) ([0-9]{3})(?: (.*))?", re.ASCII | re.DOTALL)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;.*)?", re.DOTALL)
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


@dataclass(frozen=True)
class Head:
    """A response's status line and header fields (names lower-cased, repeats joined)."""

    version: tuple[int, int]
    status: int
    reason: str
    headers: dict[str, str]

    @property
    def keeps_alive(self) -> bool:
        """Whether the server lets the connection carry another request (RFC 9112 9.3)."""
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version >= (1, 1):
            return "close" not in tokens
        return "keep-alive" in tokens


def split_head(head: bytes) -> tuple[list[str], dict[str, str]]:
    """The start line's words and the header fields (names lower-cased) of a message head.

    Latin-1 maps every byte to a character, so any bytes split; repeated fields are joined
    with ", " as RFC 9110 5.3 says.
    """
    lines = head[:MAX_HEAD_BYTES].decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        name, value = name.strip().lower(), value.strip(" \t")
        if sep and name:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return lines[0].split(" ", 2), headers


def status_line(line: str) -> tuple[tuple[int, int], int, str] | None:
    """(version, status, reason) of `HTTP/1.1 200 OK`; None unless it is exactly that shape."""
    match = _STATUS_LINE.fullmatch(line[:1024])
    if match is None:
        return None
    major, minor, status, reason = match.groups()
    return (int(major), int(minor)), int(status), reason or ""


def parse_head(head: bytes) -> Head | None:
    """A response head (status line and fields), or None when the status line is not HTTP."""
    start, headers = split_head(head)
    parsed = status_line(" ".join(start))
    if parsed is None:
        return None
    version, status, reason = parsed
    return Head(version, status, reason, headers)


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
        if len(value) > 12:  # no int() of a thousand digits
            return MAX_RETRY_AFTER
        return min(float(int(value)), MAX_RETRY_AFTER)
    when = parse_date(value)
    if when is None:
        return None
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)


def content_length(value: str | None) -> int | None:
    """Content-Length in bytes; None when absent, malformed, or repeated with other values."""
    if value is None or len(value) > _MAX_FIELD:
        return None
    values = {part.strip(" \t") for part in value.split(",")}
    if len(values) != 1:
        return None
    (only,) = values
    if not _DIGITS.fullmatch(only) or len(only) > _MAX_CONTENT_LENGTH_DIGITS:
        return None
    return int(only)


def is_chunked(headers: dict[str, str]) -> bool:
    """Whether the body is framed by chunked transfer coding (its last coding)."""
    codings = headers.get("transfer-encoding", "").split(",")
    return codings[-1].strip(" \t").lower() == "chunked"


def chunk_size(line: bytes) -> int | None:
    """The size on a chunk-size line (extensions ignored); None when malformed."""
    match = _CHUNK_SIZE.fullmatch(line[:1024].strip(b"\r\n"))
    return int(match.group(1), 16) if match else None


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
