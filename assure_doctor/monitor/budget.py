"""The daily ping budget per key, kept in a state file so that no restart can reset it.

Requests are reserved *before* they are sent and the unused part refunded after, so a crash
(even `kill -9`) between the two can only over-count, never let the budget be overspent.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assure_doctor import logs

STATE_FILE = "ping-budget.json"
_EVERY_KEY = "*"  # a floor under every key's count: set when the file could not be read
_ALL_SPENT = 10**9
log = logs.get("budget")


def utc_day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


class PingBudget:
    """Key-carrying requests spent today (UTC), per key fingerprint (never the key)."""

    def __init__(self, state_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = state_dir / STATE_FILE
        self.clock = clock
        self._lock = threading.Lock()
        state_dir.mkdir(parents=True, exist_ok=True)
        self._state = self._load()

    # --- reading -------------------------------------------------------------------------
    def spent(self, key_id: str) -> int:
        with self._lock:
            self._roll_over()
            return self._spent_of(key_id)

    def last_ping(self, label: str) -> float | None:
        with self._lock:
            value = self._state["last_ping"].get(label)
            return float(value) if value is not None else None

    # --- spending ------------------------------------------------------------------------
    def reserve(self, key_id: str, wanted: int, daily: int) -> int:
        """Reserve up to `wanted` requests within `daily`; returns how many were granted."""
        with self._lock:
            self._roll_over()
            spent = self._spent_of(key_id)
            granted = max(0, min(wanted, daily - spent))
            if granted:
                self._state["spent"][key_id] = spent + granted
                self._save()
            return granted

    def refund(self, key_id: str, unused: int) -> None:
        """Give back reserved requests that were not sent (same day only)."""
        if unused <= 0:
            return
        with self._lock:
            self._roll_over()
            spent = self._spent_of(key_id)
            self._state["spent"][key_id] = max(0, spent - unused)
            self._save()

    def record_ping(self, label: str, at: float) -> None:
        with self._lock:
            self._state["last_ping"][label] = at
            self._save()

    def _spent_of(self, key_id: str) -> int:
        spent = self._state["spent"]
        return max(int(spent.get(key_id, 0)), int(spent.get(_EVERY_KEY, 0)))

    # --- the file ------------------------------------------------------------------------
    def _roll_over(self) -> None:
        today = utc_day(self.clock())
        if self._state["day"] != today:
            self._state["day"] = today
            self._state["spent"] = {}
            self._save()

    def _load(self) -> dict[str, Any]:
        empty: dict[str, Any] = {"version": 1, "day": utc_day(self.clock()), "spent": {},
                                 "last_ping": {}}
        try:
            state = json.loads(self.path.read_text())
        except FileNotFoundError:
            return empty
        except (OSError, ValueError) as exc:
            # An unreadable budget must not mean an unlimited one: assume today is spent.
            log.error("ALERT: cannot read %s (%s); treating today's budget as spent",
                      self.path, exc)
            empty["spent"] = {_EVERY_KEY: _ALL_SPENT}
            return empty
        if not isinstance(state, dict) or not isinstance(state.get("spent"), dict):
            log.error("ALERT: %s is malformed; treating today's budget as spent", self.path)
            empty["spent"] = {_EVERY_KEY: _ALL_SPENT}
            return empty
        state.setdefault("last_ping", {})
        return state

    def _save(self) -> None:
        """Atomic: write a temporary file, fsync it, rename it over the old one."""
        data = json.dumps(self._state, indent=1, sort_keys=True).encode()
        fd, tmp = tempfile.mkstemp(prefix=".budget-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
