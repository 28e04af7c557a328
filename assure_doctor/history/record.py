"""One target's history and how a check moves it on. Pure: the store reads and writes it."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime

from assure_doctor.history.changes import Change
from assure_doctor.history.fingerprint import Fingerprint

MAX_CHANGES = 20  # kept per target, newest last


@dataclass(frozen=True)
class Record:
    """When the target was last good, how its path looked then, and the changes seen since
    (each logged once, when first seen)."""

    last_good_at: str | None = None  # ISO 8601
    last_good_unix: float | None = None
    last_good: Fingerprint | None = None
    changes: tuple[Change, ...] = ()


def advance(record: Record, ok: bool, now: Fingerprint, changes: tuple[Change, ...],
            at: datetime) -> tuple[Record, tuple[Change, ...]]:
    """The record after a check at `at`, and the changes it logged for the first time.

    A healthy check becomes the new last good fingerprint; every check logs the changes it
    saw that were not logged since the last good check (a failing check repeats them each
    time, and two cadences may see one change against two good checks)."""
    seen = at.isoformat(timespec="milliseconds")
    since_good = {(c.what, c.was, c.now) for c in record.changes
                  if _after(c.seen, record.last_good_at)}
    new = tuple(replace(c, seen=seen) for c in changes
                if (c.what, c.was, c.now) not in since_good)
    logged = (*record.changes, *new)[-MAX_CHANGES:]
    if not ok:
        return replace(record, changes=logged), new
    return Record(seen, at.timestamp(), _known(now, record.last_good), logged), new


def _after(seen: str | None, last_good_at: str | None) -> bool:
    """Whether a change was logged at or after the last good check (both ours, ISO 8601)."""
    if seen is None or last_good_at is None:
        return True
    try:
        return datetime.fromisoformat(seen) >= datetime.fromisoformat(last_good_at)
    except ValueError:
        return True


def _known(now: Fingerprint, before: Fingerprint | None) -> Fingerprint:
    """`now`, with what this check did not learn (a --no-ping check's ping status) kept from
    the last good fingerprint."""
    if before is None:
        return now
    return replace(now, **{item.name: getattr(before, item.name) for item in fields(now)
                           if getattr(now, item.name) is None})
