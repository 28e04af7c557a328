"""The ping budget's file: shared exactly by processes, a day that only rolls forward, times
in the future clamped, corrupt files survived (an injected clock; the files and locks are real)."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import stat
from pathlib import Path, PureWindowsPath

import pytest

from assure_doctor.monitor.budget import PingBudget
from assure_doctor.statedir import state_dir_for

DAY = 86400.0
MIDNIGHT = 20_000 * DAY  # 2024-10-04 00:00 UTC


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _spend_until_empty(state_dir: str, daily: int, out: multiprocessing.Queue[int]) -> None:
    budget = PingBudget(Path(state_dir))
    granted = 0
    while True:
        got = budget.reserve("shared-key", 1, daily)
        if not got:
            break
        granted += got
    out.put(granted)


@pytest.mark.slow
def test_processes_share_one_budget_exactly(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[int] = context.Queue()
    workers = [context.Process(target=_spend_until_empty, args=(str(tmp_path), 120, out))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    grants = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(10)
    assert sum(grants) == 120, grants
    assert PingBudget(tmp_path).spent("shared-key") == 120


def test_a_clock_stepped_back_across_midnight_does_not_reset_the_day(tmp_path: Path) -> None:
    clock = Clock(MIDNIGHT + 5)
    budget = PingBudget(tmp_path, clock)
    assert budget.reserve("k", 5, daily=5) == 5
    clock.now = MIDNIGHT - 5  # NTP steps the clock back across midnight
    assert budget.reserve("k", 1, daily=5) == 0
    assert PingBudget(tmp_path, clock).reserve("k", 1, daily=5) == 0  # nor does a restart
    clock.now = MIDNIGHT + 10
    assert budget.reserve("k", 1, daily=5) == 0
    clock.now = MIDNIGHT + DAY + 1  # the next day really comes
    assert budget.reserve("k", 2, daily=5) == 2
    state = json.loads((tmp_path / "ping-budget.json").read_text())
    assert state["previous"] == {"day": "2024-10-04", "spent": {"k": 5}}
    assert (state["day"], state["spent"]) == ("2024-10-05", {"k": 2})


def test_a_refund_never_lowers_the_next_days_count(tmp_path: Path) -> None:
    clock = Clock(MIDNIGHT + DAY - 1)
    budget = PingBudget(tmp_path, clock)
    assert budget.reserve("k", 3, daily=10) == 3
    clock.now = MIDNIGHT + DAY + 1
    assert budget.reserve("k", 1, daily=10) == 1
    budget.refund("k", 2)  # of the previous day's reservation? no: the last was today's
    assert budget.spent("k") == 0
    clock.now += 1
    assert budget.reserve("k", 3, daily=10) == 3
    clock.now = MIDNIGHT + 2 * DAY + 1
    budget.refund("k", 2)  # reserved yesterday: today's count stays
    assert budget.spent("k") == 0
    assert budget.reserve("k", 10, daily=10) == 10


def test_a_last_ping_in_the_future_is_clamped_with_one_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(MIDNIGHT + 100)
    (tmp_path / "ping-budget.json").write_text(json.dumps(
        {"day": "2024-10-04", "spent": {}, "last_ping": {"uk2": MIDNIGHT + 30 * DAY}}))
    with caplog.at_level(logging.WARNING):
        budget = PingBudget(tmp_path, clock)
        assert budget.last_ping("uk2") == clock.now
        clock.now += 60
        assert budget.last_ping("uk2") == MIDNIGHT + 100  # clamped once, then kept
    warnings = [r for r in caplog.records if "in the future" in r.getMessage()]
    assert len(warnings) == 1 and "uk2" in warnings[0].getMessage()


def test_a_file_dated_days_ahead_counts_as_spent_today_only(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "ping-budget.json").write_text(json.dumps(
        {"day": "2025-01-01", "spent": {"k": 1}, "last_ping": {}}))
    clock = Clock(MIDNIGHT + 100)
    with caplog.at_level(logging.WARNING):
        budget = PingBudget(tmp_path, clock)
        assert budget.reserve("k", 1, daily=100) == 0
    assert sum("days ahead" in r.getMessage() for r in caplog.records) == 1
    clock.now += DAY
    assert budget.reserve("k", 1, daily=100) == 1


CORRUPT = {
    "spent a string": b'{"day": "2024-10-04", "spent": "abc", "last_ping": {}}',
    "spent value a string": b'{"day": "2024-10-04", "spent": {"k": "abc"}}',
    "Infinity": b'{"day": "2024-10-04", "spent": {"k": Infinity}}',
    "NaN": b'{"day": "2024-10-04", "spent": {"k": NaN}}',
    "negative": b'{"day": "2024-10-04", "spent": {"k": -5}}',
    "float": b'{"day": "2024-10-04", "spent": {"k": 1.5}}',
    "no day": b'{"spent": {"k": 1}, "last_ping": {}}',
    "day not a date": b'{"day": "2024-13-45", "spent": {}}',
    "last_ping a list": b'{"day": "2024-10-04", "spent": {}, "last_ping": [1, 2]}',
    "last_ping a string": b'{"day": "2024-10-04", "spent": {}, "last_ping": "soon"}',
    "last_ping NaN": b'{"day": "2024-10-04", "spent": {}, "last_ping": {"a": NaN}}',
    "not an object": b"[1, 2, 3]",
    "binary garbage": bytes(range(256)) * 4,
    "torn write": b'{"day": "2024-10-04", "spe',
    "empty": b"",
    "deep": b"[" * 100_000,
}


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_file_warns_once_and_fails_safe_for_today_only(
        content: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "ping-budget.json").write_bytes(content)
    clock = Clock(MIDNIGHT + 100)
    with caplog.at_level(logging.WARNING):
        budget = PingBudget(tmp_path, clock)
        for _ in range(3):  # every tick asks again: still one warning
            assert budget.reserve("k", 1, daily=100) == 0
            assert budget.spent("k") >= 100
        assert PingBudget(tmp_path, clock).reserve("other", 1, daily=100) == 0
    alerts = [r.getMessage() for r in caplog.records if "corrupt" in r.getMessage()]
    assert len(alerts) == 1, alerts
    assert str(tmp_path / "ping-budget.json") in alerts[0]
    assert (tmp_path / "ping-budget.json.corrupt").read_bytes() == content  # kept for a look
    clock.now += DAY  # tomorrow: a fresh budget
    assert budget.reserve("k", 1, daily=100) == 1


def test_a_state_file_that_is_not_a_file_fails_safe(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "ping-budget.json")  # must not hang
    budget = PingBudget(tmp_path, Clock(MIDNIGHT))
    assert budget.reserve("k", 1, daily=100) == 0


def test_state_files_are_private(tmp_path: Path) -> None:
    budget = PingBudget(tmp_path / "state", Clock(MIDNIGHT))
    budget.reserve("k", 1, daily=10)
    for name in ("ping-budget.json", "ping-budget.lock"):
        mode = stat.S_IMODE((tmp_path / "state" / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


@pytest.mark.parametrize(("platform", "environ", "expected"), [
    ("win32", {"LOCALAPPDATA": r"C:\Users\me\AppData\Local"},
     r"C:\Users\me\AppData\Local\assure-doctor"),
    ("linux", {"XDG_STATE_HOME": "/home/me/.state"}, "/home/me/.state/assure-doctor"),
])
def test_default_state_dir_follows_the_platform(platform: str, environ: dict[str, str],
                                                expected: str) -> None:
    assert str(state_dir_for(platform, environ)) == expected


def test_default_state_dir_fallbacks() -> None:
    home = Path.home()
    assert state_dir_for("linux", {}) == home / ".local" / "state" / "assure-doctor"
    assert state_dir_for("darwin", {}) == \
        home / "Library" / "Application Support" / "assure-doctor"
    windows = PureWindowsPath(str(state_dir_for("win32", {})))
    assert windows.parts[-3:] == ("AppData", "Local", "assure-doctor")
