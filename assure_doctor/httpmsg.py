"""Small pieces of HTTP/1.1 both sides need: a message head's parts, and HTTP dates."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def split_head(head: bytes) -> tuple[list[str], dict[str, str]]:
    """The start line's words and the header fields (names lower-cased) of a message head."""
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return lines[0].split(" ", 2), headers


def parse_date(value: str | None) -> datetime | None:
    """An HTTP date (`Date`, `Retry-After`), as an aware datetime; None when unusable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
