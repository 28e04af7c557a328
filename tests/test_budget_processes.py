"""The ping budget end to end: monitor processes against one sandbox, counting the keyed
requests the server received."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from assure_doctor.sandbox.stack import Sandbox
from tests.conftest import clean_env, needs
from tests.monitoring import MonitorProcess, wait_for


def test_two_monitors_on_one_state_dir_share_the_budget_exactly(tmp_path: Path) -> None:
    with Sandbox("healthy") as sandbox:
        args = [*sandbox.check_args(), "--ping-interval", "1", "--ping-budget", "10",
                "--allow-budget-exhaustion", "--interval", "30", "--jitter", "0"]
        first = MonitorProcess(args, tmp_path / "state")
        second = MonitorProcess(args, tmp_path / "state")
        try:
            wait_for(lambda: sandbox.traffic.keyed >= 10, 40, "ten keyed pings")
            time.sleep(3)  # both keep asking every second: nothing more may be sent
            assert sandbox.traffic.keyed == 10
        finally:
            first.stop()
            second.stop()
        state = json.loads((tmp_path / "state" / "ping-budget.json").read_text())
        assert list(state["spent"].values()) == [10]


def faketime_monitor(stamp: datetime, sandbox: Sandbox, state_dir: Path, log: Path
                     ) -> subprocess.Popen[bytes]:
    """A monitor whose clock starts at `stamp` (Debian's faketime; monotonic time untouched)."""
    command = [needs_faketime(), stamp.strftime("%Y-%m-%d %H:%M:%S"), sys.executable, "-m",
               "assure_doctor", "monitor", *sandbox.check_args(), "--ping-interval", "1",
               "--ping-budget", "3", "--allow-budget-exhaustion", "--interval", "30",
               "--jitter", "0", "--retries", "0", "--state-dir", str(state_dir),
               "--listen", "127.0.0.1:0", "--log-file", str(log)]
    env = clean_env(TZ="UTC", FAKETIME_DONT_FAKE_MONOTONIC="1",
                    PYTHONPATH=os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def needs_faketime() -> str:
    return needs("faketime")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_a_clock_stepped_back_across_midnight_spends_nothing_more(tmp_path: Path) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=5,
                                                                microsecond=0)
    with Sandbox("healthy") as sandbox:
        monitor = faketime_monitor(tomorrow, sandbox, tmp_path / "state", tmp_path / "a.log")
        try:
            wait_for(lambda: sandbox.traffic.keyed >= 3, 30, "three keyed pings")
        finally:
            stop(monitor)
        state = json.loads((tmp_path / "state" / "ping-budget.json").read_text())
        assert state["day"] == tomorrow.strftime("%Y-%m-%d")
        # The clock is stepped back across UTC midnight, to 23:59:50 of the day before.
        back = tomorrow - timedelta(seconds=15)
        monitor = faketime_monitor(back, sandbox, tmp_path / "state", tmp_path / "b.log")
        try:
            wait_for(lambda: "keeps counting against" in (tmp_path / "b.log").read_text(),
                     20, "the monitor to notice the clock is behind the budget's day")
            time.sleep(3)
            assert sandbox.traffic.keyed == 3  # the day did not reset
        finally:
            stop(monitor)
        assert "is spent" in (tmp_path / "b.log").read_text()
