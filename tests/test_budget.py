"""The ping budget's bookkeeping, on its own (a fake clock; the file is real)."""

from __future__ import annotations

import json
from pathlib import Path

from assure_doctor.monitor.budget import PingBudget

DAY = 86400.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_reserve_never_grants_past_the_daily_budget(tmp_path: Path) -> None:
    budget = PingBudget(tmp_path, Clock(10 * DAY))
    assert budget.reserve("k1", 3, daily=5) == 3
    assert budget.reserve("k1", 3, daily=5) == 2
    assert budget.reserve("k1", 3, daily=5) == 0
    assert budget.spent("k1") == 5
    assert budget.reserve("k2", 1, daily=5) == 1  # another key has its own budget


def test_refund_returns_what_was_not_sent(tmp_path: Path) -> None:
    budget = PingBudget(tmp_path, Clock(10 * DAY))
    budget.reserve("k", 3, daily=10)
    budget.refund("k", 2)
    assert budget.spent("k") == 1


def test_the_file_survives_a_new_process_and_resets_at_utc_midnight(tmp_path: Path) -> None:
    clock = Clock(10 * DAY + 100)
    PingBudget(tmp_path, clock).reserve("k", 4, daily=10)
    PingBudget(tmp_path, clock).record_ping("uk2", clock.now)
    again = PingBudget(tmp_path, clock)
    assert again.spent("k") == 4 and again.last_ping("uk2") == clock.now
    clock.now = 11 * DAY + 1
    assert again.spent("k") == 0
    assert again.last_ping("uk2") == 10 * DAY + 100
    assert json.loads((tmp_path / "ping-budget.json").read_text())["day"] == "1970-01-12"


def test_an_unreadable_file_means_no_budget_left_today(tmp_path: Path) -> None:
    (tmp_path / "ping-budget.json").write_text("{ torn write")
    clock = Clock(10 * DAY)
    budget = PingBudget(tmp_path, clock)
    assert budget.reserve("k", 1, daily=100) == 0
    clock.now += DAY
    assert budget.reserve("k", 1, daily=100) == 1
