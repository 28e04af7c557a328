"""The daily ping budget per key, kept in a state file so that no restart can reset it.

Requests are reserved *before* they are sent and the unused part refunded after, so a crash
(even `kill -9`) between the two can only over-count, never let the budget be overspent.

Every operation runs under an OS file lock and re-reads the file under it, so any number of
monitors sharing a state directory share one budget exactly. The file is parsed totally: a
corrupt one is set aside with one warning and today's budget counts as spent (today only). A
day only rolls forward: a clock stepped back across UTC midnight does not reset the spend, and
the spend of the previous day is kept beside the current one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from assure_doctor import filelock, localfile, logs
from assure_doctor.errors import InputError
from assure_doctor.statefile import Corrupt

STATE_FILE = "ping-budget.json"
LOCK_FILE = "ping-budget.lock"
STATE_LIMIT = localfile.MIB
VERSION = 2
_EVERY_KEY = "*"  # a floor under every key's count: set when the file could not be read
_ALL_SPENT = 10**9
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FUTURE_SLACK = 1.0  # seconds: a last_ping this far ahead is a clock step, not rounding
log = logs.get("budget")


def utc_day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


@dataclass
class State:
    """The file's content, every field of its proper type."""

    day: str
    spent: dict[str, int] = field(default_factory=dict)
    previous_day: str | None = None
    previous_spent: dict[str, int] = field(default_factory=dict)
    last_ping: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> bytes:
        document: dict[str, Any] = {"version": VERSION, "day": self.day, "spent": self.spent,
                                    "last_ping": self.last_ping}
        if self.previous_day is not None:
            document["previous"] = {"day": self.previous_day, "spent": self.previous_spent}
        return json.dumps(document, indent=1, sort_keys=True).encode()

    @classmethod
    def parse(cls, data: bytes) -> State:
        """Parse totally: a State, or Corrupt saying what is wrong."""
        try:
            document = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise Corrupt(f"not JSON ({type(exc).__name__})") from None
        if not isinstance(document, dict):
            raise Corrupt("not a JSON object")
        state = cls(day=_day(document.get("day"), "day"),
                    spent=_counts(document.get("spent"), "spent"),
                    last_ping=_times(document.get("last_ping", {}), "last_ping"))
        previous = document.get("previous")
        if previous is not None:
            if not isinstance(previous, dict):
                raise Corrupt("previous is not an object")
            state.previous_day = _day(previous.get("day"), "previous.day")
            state.previous_spent = _counts(previous.get("spent"), "previous.spent")
        return state


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _day(value: object, name: str) -> str:
    if not isinstance(value, str) or not _DAY.match(value):
        raise Corrupt(f"{name} is missing or not a YYYY-MM-DD date")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise Corrupt(f"{name} is not a real date") from None
    return value


def _counts(value: object, name: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise Corrupt(f"{name} is missing or not an object")
    for count in value.values():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise Corrupt(f"{name} holds a value that is not a count of requests")
    return dict(value)


def _times(value: object, name: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise Corrupt(f"{name} is not an object")
    for at in value.values():
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at) \
                or at < 0:
            raise Corrupt(f"{name} holds a value that is not a time")
    return {label: float(at) for label, at in value.items()}


class PingBudget:
    """Key-carrying requests spent today (UTC), per key fingerprint (never the key)."""

    def __init__(self, state_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = state_dir / STATE_FILE
        self.lock_path = state_dir / LOCK_FILE
        self.clock = clock
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._reserved_day: dict[str, str] = {}
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._transaction():  # read (and repair) the file now: warn at start, not later
            pass

    # --- reading -------------------------------------------------------------------------
    def spent(self, key_id: str) -> int:
        with self._transaction() as state:
            return _spent_of(state, key_id)

    def last_ping(self, label: str) -> float | None:
        with self._transaction() as state:
            return state.last_ping.get(label)

    # --- spending ------------------------------------------------------------------------
    def reserve(self, key_id: str, wanted: int, daily: int) -> int:
        """Reserve up to `wanted` requests within `daily`; returns how many were granted."""
        with self._transaction() as state:
            spent = _spent_of(state, key_id)
            granted = max(0, min(wanted, daily - spent))
            if granted:
                state.spent[key_id] = spent + granted
                self._reserved_day[key_id] = state.day
            return granted

    def refund(self, key_id: str, unused: int) -> None:
        """Give back reserved requests that were not sent, if the day has not moved on since
        they were reserved (a refund must never lower a new day's count)."""
        if unused <= 0:
            return
        with self._transaction() as state:
            if self._reserved_day.get(key_id) != state.day:
                return
            spent = state.spent.get(key_id, 0)
            state.spent[key_id] = max(0, spent - unused)

    def record_ping(self, label: str, at: float) -> None:
        with self._transaction() as state:
            state.last_ping[label] = at

    # --- the file ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[State]:
        """The current state, read under the lock, brought to today; written back (under the
        same lock) if anything changed."""
        with self._lock, filelock.locked(self.lock_path):
            now = self.clock()
            state, before = self._read(now)
            self._bring_to(state, now)
            yield state
            after = state.to_json()
            if after != before:
                localfile.write_private(self.path, after)

    def _read(self, now: float) -> tuple[State, bytes]:
        """The state and the bytes it was read from (b"" for a new or repaired file)."""
        if not self.path.exists():
            return State(day=utc_day(now)), b""
        try:
            state = State.parse(localfile.read_regular(self.path, STATE_LIMIT, "the file"))
        except (Corrupt, InputError) as exc:  # an unreadable budget must not be an unlimited one
            return self._fail_safe(now, str(exc)), b""
        return state, state.to_json()

    def _fail_safe(self, now: float, problem: str) -> State:
        """Set the bad file aside and count today's budget as spent, for today only."""
        aside = self.path.with_name(self.path.name + ".corrupt")
        with contextlib.suppress(OSError):
            os.replace(self.path, aside)
        self._warn_once(f"corrupt:{problem}",
                        "ALERT: the ping budget file %s is corrupt (%s); it is kept as %s. "
                        "Treating today's budget as spent: pings resume tomorrow (UTC)",
                        self.path, problem, aside.name)
        return State(day=utc_day(now), spent={_EVERY_KEY: _ALL_SPENT})

    def _bring_to(self, state: State, now: float) -> None:
        """Roll the day forward (never back) and clamp times in the future."""
        today = utc_day(now)
        if today > state.day:
            state.previous_day, state.previous_spent = state.day, state.spent
            state.day, state.spent = today, {}
        elif today < state.day:
            ahead = (date.fromisoformat(state.day) - date.fromisoformat(today)).days
            if ahead == 1:  # the clock stepped back across midnight: keep counting
                self._warn_once(f"behind:{state.day}",
                                "The clock is back on %s but the ping budget has reached %s; "
                                "the budget keeps counting against %s (a day never rolls back)",
                                today, state.day, state.day)
            else:
                self._warn_once(f"ahead:{state.day}",
                                "ALERT: the ping budget file %s is dated %s, %d days ahead of "
                                "the clock (%s); treating today's budget as spent",
                                self.path, state.day, ahead, today)
                state.previous_day, state.previous_spent = None, {}
                state.day, state.spent = today, {_EVERY_KEY: _ALL_SPENT}
        for label, at in state.last_ping.items():
            if at > now + _FUTURE_SLACK:
                self._warn_once(f"future:{label}",
                                "The last ping of %s is recorded %.0f s in the future (the "
                                "clock went back, or the state file was copied); counting it "
                                "as now", label, at - now)
                state.last_ping[label] = now

    def _warn_once(self, what: str, message: str, *args: object) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning(message, *args)


def _spent_of(state: State, key_id: str) -> int:
    return max(state.spent.get(key_id, 0), state.spent.get(_EVERY_KEY, 0))
