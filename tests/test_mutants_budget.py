"""The ping budget's state file, read and written as documented: its format on disk, every
malformed field named in the warning and failing safe, the previous day kept, refunds that
never raise a count, and a last ping in the future clamped only beyond a second's slack
(an injected clock; the files and locks are real)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from assure_doctor.monitor.budget import PingBudget

DAY = 86400.0
MIDNIGHT = 20_000 * DAY  # 2024-10-04 00:00 UTC
TODAY, YESTERDAY = "2024-10-04", "2024-10-03"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def state_file(directory: Path) -> Path:
    return directory / "ping-budget.json"


def write(directory: Path, document: object) -> None:
    state_file(directory).write_text(json.dumps(document))


def test_the_file_on_disk_is_the_documented_version_2_format(tmp_path: Path) -> None:
    clock = Clock(MIDNIGHT + 100)
    budget = PingBudget(tmp_path, clock)
    budget.reserve("k", 2, daily=10)
    budget.record_ping("uk2", MIDNIGHT + 50)
    assert json.loads(state_file(tmp_path).read_text()) == {
        "version": 2, "day": TODAY, "spent": {"k": 2}, "last_ping": {"uk2": MIDNIGHT + 50}}
    clock.now += DAY
    budget.reserve("k", 1, daily=10)
    assert json.loads(state_file(tmp_path).read_text()) == {
        "version": 2, "day": "2024-10-05", "spent": {"k": 1},
        "last_ping": {"uk2": MIDNIGHT + 50}, "previous": {"day": TODAY, "spent": {"k": 2}}}


def test_the_previous_day_in_the_file_is_kept_across_processes(tmp_path: Path) -> None:
    write(tmp_path, {"version": 2, "day": TODAY, "spent": {"k": 3}, "last_ping": {},
                     "previous": {"day": YESTERDAY, "spent": {"k": 7}}})
    PingBudget(tmp_path, Clock(MIDNIGHT + 10)).reserve("k", 1, daily=10)
    document = json.loads(state_file(tmp_path).read_text())
    assert document["spent"] == {"k": 4}
    assert document["previous"] == {"day": YESTERDAY, "spent": {"k": 7}}


@pytest.mark.parametrize(("document", "named"), [
    ({"day": "4 Oct", "spent": {}}, "day is missing or not a YYYY-MM-DD date"),
    ({"day": TODAY, "spent": []}, "spent is missing or not an object"),
    ({"day": TODAY, "spent": {}, "last_ping": []}, "last_ping is not an object"),
    ({"day": TODAY, "spent": {}, "previous": []}, "previous is not an object"),
    ({"day": TODAY, "spent": {}, "previous": {"day": "x", "spent": {}}},
     "previous.day is missing or not a YYYY-MM-DD date"),
    ({"day": TODAY, "spent": {}, "previous": {"day": YESTERDAY, "spent": 3}},
     "previous.spent is missing or not an object"),
    ({"day": TODAY, "spent": {}, "last_ping": {"uk2": True}},
     "last_ping holds a value that is not a time"),
    ({"day": TODAY, "spent": {}, "last_ping": {"uk2": "1700000000"}},
     "last_ping holds a value that is not a time"),
    ({"day": TODAY, "spent": {}, "last_ping": {"uk2": -1}},
     "last_ping holds a value that is not a time"),
])
def test_each_malformed_field_is_named_and_fails_safe(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, document: object, named: str) -> None:
    write(tmp_path, document)
    with caplog.at_level(logging.WARNING):
        budget = PingBudget(tmp_path, Clock(MIDNIGHT + 10))
        assert budget.reserve("k", 1, daily=100) == 0  # today counts as spent
    [warning] = [r for r in caplog.records if "is corrupt" in r.getMessage()]
    assert warning.name == "assure_doctor.budget"
    assert f"({named})" in warning.getMessage()


@pytest.mark.parametrize("text", [
    '{"day": "2024-10-04", "spent": {}, "last_ping": {"uk2": NaN}}',
    '{"day": "2024-10-04", "spent": {}, "last_ping": {"uk2": Infinity}}',
])
def test_nan_and_infinity_are_not_json(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                       text: str) -> None:
    state_file(tmp_path).write_text(text)
    with caplog.at_level(logging.WARNING):
        assert PingBudget(tmp_path, Clock(MIDNIGHT + 10)).reserve("k", 1, daily=100) == 0
    assert any("(not JSON (ValueError))" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("at", [0, 0.5, 1, MIDNIGHT])
def test_any_time_from_the_epoch_on_is_a_last_ping(tmp_path: Path, at: float) -> None:
    write(tmp_path, {"day": TODAY, "spent": {}, "last_ping": {"uk2": at}})
    budget = PingBudget(tmp_path, Clock(MIDNIGHT + 10))
    assert budget.last_ping("uk2") == at and budget.reserve("k", 1, daily=100) == 1


def test_a_last_ping_is_clamped_only_beyond_a_second_ahead(tmp_path: Path) -> None:
    now = MIDNIGHT + 100
    write(tmp_path, {"day": TODAY, "spent": {},
                     "last_ping": {"on_time": now + 1.0, "ahead": now + 1.5}})
    budget = PingBudget(tmp_path, Clock(now))
    assert budget.last_ping("on_time") == now + 1.0  # rounding, not a clock step
    assert budget.last_ping("ahead") == now


def test_a_state_dir_is_made_with_its_parents(tmp_path: Path) -> None:
    budget = PingBudget(tmp_path / "a" / "b", Clock(MIDNIGHT))
    assert budget.reserve("k", 1, daily=5) == 1
    assert state_file(tmp_path / "a" / "b").is_file()


def test_a_refund_of_one_is_given_back_and_a_negative_one_changes_nothing(
        tmp_path: Path) -> None:
    budget = PingBudget(tmp_path, Clock(MIDNIGHT + 10))
    assert budget.reserve("k", 3, daily=10) == 3
    budget.refund("k", 1)
    assert budget.spent("k") == 2
    budget.refund("k", -3)
    assert budget.spent("k") == 2


def test_a_refund_of_yesterdays_reservation_leaves_todays_count_of_others(
        tmp_path: Path) -> None:
    clock = Clock(MIDNIGHT + DAY - 10)
    mine, theirs = PingBudget(tmp_path, clock), PingBudget(tmp_path, clock)
    assert mine.reserve("k", 3, daily=10) == 3
    clock.now = MIDNIGHT + DAY + 10
    assert theirs.reserve("k", 5, daily=10) == 5  # another monitor on the same file, today
    mine.refund("k", 2)  # reserved yesterday: today's count stays
    assert theirs.spent("k") == 5
