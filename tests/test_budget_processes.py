"""The ping budget end to end: monitor processes against one sandbox, counting the keyed
requests the server received."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from assure_doctor.sandbox.stack import Sandbox
from tests.conftest import clean_env, needs
from tests.monitoring import MonitorProcess
from tests.waiting import wait_until

pytestmark = pytest.mark.slow  # monitor processes (and faketime) spending one budget


def test_two_monitors_on_one_state_dir_share_the_budget_exactly(tmp_path: Path) -> None:
    with Sandbox("healthy") as sandbox:
        args = [*sandbox.check_args(), "--ping-interval", "1", "--ping-budget", "10",
                "--allow-budget-exhaustion", "--interval", "30", "--jitter", "0"]
        first = MonitorProcess(args, tmp_path / "state")
        second = MonitorProcess(args, tmp_path / "state")
        try:
            both = [first.process, second.process]
            wait_until(lambda: sandbox.traffic.keyed >= 10, 40, "ten keyed pings", alive=both)
            # Both keep asking every second: each is refused, says so, and sends nothing more.
            wait_until(lambda: all(m.log_says("today's ping budget (10) is spent")
                                   for m in (first, second)), 20,
                       "both monitors to find the shared budget spent", alive=both)
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
    # faketime runs the monitor as its child: a session of their own lets stop() end both.
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


def needs_faketime() -> str:
    return needs("faketime")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop faketime and the monitor it runs (terminating faketime alone would leave the
    monitor running, an orphan)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def said(log: Path, text: str) -> bool:
    return log.exists() and text in log.read_text()


def test_a_clock_stepped_back_across_midnight_spends_nothing_more(tmp_path: Path) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=5,
                                                                microsecond=0)
    with Sandbox("healthy") as sandbox:
        monitor = faketime_monitor(tomorrow, sandbox, tmp_path / "state", tmp_path / "a.log")
        try:
            wait_until(lambda: sandbox.traffic.keyed >= 3, 30, "three keyed pings",
                       alive=monitor)
        finally:
            stop(monitor)
        state = json.loads((tmp_path / "state" / "ping-budget.json").read_text())
        assert state["day"] == tomorrow.strftime("%Y-%m-%d")
        # The clock is stepped back across UTC midnight, to 23:59:50 of the day before.
        back = tomorrow - timedelta(seconds=15)
        monitor = faketime_monitor(back, sandbox, tmp_path / "state", tmp_path / "b.log")
        try:
            log = tmp_path / "b.log"
            wait_until(lambda: said(log, "keeps counting against"), 20,
                       "the monitor to notice the clock is behind the budget's day",
                       alive=monitor)
            # It asks for a ping, is refused against the budget's day, and says so.
            wait_until(lambda: said(log, "today's ping budget (3) is spent"), 20,
                       "the monitor to find yesterday's budget spent", alive=monitor)
            assert sandbox.traffic.keyed == 3  # the day did not reset
        finally:
            stop(monitor)
