"""The monitor's life: what it says at start, its last results across a restart, and how it
stops (SIGTERM with a ping in flight; Ctrl+C and Ctrl+Break on Windows)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assure_doctor.model import Cause, StageResult, Status
from assure_doctor.monitor import signals
from assure_doctor.monitor.figures import Figures
from assure_doctor.monitor.laststate import LastState
from assure_doctor.sandbox.stack import Sandbox
from tests.conftest import clean_env
from tests.monitoring import MonitorProcess, free_port, http_get
from tests.waiting import wait_until

pytestmark = pytest.mark.slow  # monitor processes started, signalled and restarted

FAST = ["--jitter", "0", "--retries", "0", "--timeout", "2", "--allow-budget-exhaustion"]


def _targets(sandboxes: dict[str, Sandbox], path: Path) -> Path:
    path.write_text("\n".join(
        f'[[targets]]\nname = "{name}"\nurl = "{box.url}"\nresolvers = ["{box.resolver}"]\n'
        f'ca_bundle = "{box.ca_bundle}"\nkey_file = "{box.key_file}"\n'
        for name, box in sandboxes.items()))
    return path


def _value(text: str, series: str) -> float | None:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def test_last_results_are_restored_at_once_after_a_restart(tmp_path: Path) -> None:
    with Sandbox("healthy") as good, Sandbox("http-401") as rejected:
        config = _targets({"good": good, "rejected": rejected}, tmp_path / "targets.toml")
        first = MonitorProcess(["--config", str(config), "--interval", "1", "--ping-interval",
                                "1", "--ping-budget", "1000", *FAST], tmp_path / "state")
        try:
            wait_until(lambda: 'assure_diagnosis_info{' in first.metrics()
                     and _value(first.metrics(), 'assure_up{target="good"}') == 1, 20,
                     "both targets pinged")
        finally:
            first.stop()
        pinged_at = time.time()
        keyed = good.traffic.keyed + rejected.traffic.keyed
        # Long cadences: without the persisted result nothing would show for 15 minutes.
        again = MonitorProcess(["--config", str(config), "--interval", "86400",
                                "--ping-interval", "100000", "--ping-budget", "1000", *FAST],
                               tmp_path / "state")
        try:
            text = again.metrics()  # the very first scrape
        finally:
            again.stop()
        assert _value(text, 'assure_up{target="good"}') == 1
        assert _value(text, 'assure_up{target="rejected"}') == 0
        assert ('assure_diagnosis_info{cause="invalid_key",condition="http_unauthorized",'
                'stage="ping",target="rejected"} 1.0') in text
        assert _value(text, 'assure_ping_status_code{target="rejected"}') == 401
        ran = _value(text, 'assure_stage_last_run_timestamp_seconds{stage="ping",target="good"}')
        assert ran is not None and ran <= pinged_at  # when it really ran, not the restart
        assert good.traffic.keyed + rejected.traffic.keyed == keyed  # restored, not re-pinged
        for path in (tmp_path / "state" / "last-results").iterdir():
            assert good.key not in path.read_text() and rejected.key not in path.read_text()


def _stage(name: str, status: Status = Status.PASS, **evidence: object) -> StageResult:
    return StageResult(name, status, 12.5, f"{name} ok", None, (), dict(evidence))


def test_last_state_round_trip_keeps_only_what_the_collector_shows(tmp_path: Path) -> None:
    store = LastState(tmp_path)
    ping = StageResult("ping", Status.FAIL, 80.0, "401", "http_unauthorized",
                       (Cause("invalid_key", "Invalid key", "Check it"),),
                       {"status_code": 401, "attempts": 1, "response_body": "\x1b[31msecret"})
    stages = {"tls": _stage("tls", not_after="2027-01-01T00:00:00+00:00", issuer="x"),
              "ping": ping}
    figures = Figures(cert_not_after=1.8e9, clock_skew=-0.25, ping_status=401)
    store.save("prod", stages, {"tls": 100.0, "ping": 200.0}, figures)
    loaded = store.load("prod")
    assert loaded is not None
    restored, ran_at, kept = loaded
    assert ran_at == {"tls": 100.0, "ping": 200.0}
    assert kept == figures
    assert restored["ping"].condition == "http_unauthorized"
    assert restored["ping"].causes[0].id == "invalid_key"
    assert restored["ping"].evidence == restored["tls"].evidence == {}  # no body, no names
    assert "secret" not in next(store.directory.iterdir()).read_text()
    assert store.load("another") is None


_TLS_OK = (b'"stages": {"tls": {"status": "pass", "duration_ms": 1, "summary": "", '
           b'"condition": null, "causes": []}}, "ran_at": {"tls": 1}')


@pytest.mark.parametrize("content", [
    b"\x00\xff not json", b"[]", b'{"schema": 2, "label": "prod", "stages": {"dns": 1}}',
    b'{"schema": 2, "label": "prod", "stages": {"dns": {"status": "maybe"}}, "ran_at": {}}',
    b'{"schema": 2, "label": "prod", "stages": {"evil": {}}, "ran_at": {}}',
    b'{"schema": 2, "label": "other", "stages": {}, "ran_at": {}, "figures": {}}',
    b'{"schema": 2, "label": "prod", "stages": {"tls": {"status": "pass", "duration_ms": NaN,'
    b' "summary": "", "condition": null, "causes": []}}, "ran_at": {"tls": 1}, "figures": {}}',
    b'{"schema": 2, "label": "prod", ' + _TLS_OK + b', "figures": {"cert_not_after": "soon"}}',
    b'{"schema": 2, "label": "prod", ' + _TLS_OK + b', "figures": {"ping_status": 1e9}}',
    b'{"schema": 2, "label": "prod", ' + _TLS_OK + b', "figures": {"ping_status": true}}',
    b'{"schema": 2, "label": "prod", ' + _TLS_OK + b', "figures": {"clock_skew": Infinity}}',
    b'{"schema": 2, "label": "prod", ' + _TLS_OK + b"}",  # no figures
    b'{"schema": 1, "label": "prod", ' + _TLS_OK + b', "figures": {}}',  # an older schema
    b" " * (70 * 1024),
    b"[" * 60000,  # nests deeper than the JSON parser recurses
])
def test_a_corrupt_last_result_is_ignored_with_one_warning(
        tmp_path: Path, content: bytes) -> None:
    store = LastState(tmp_path)
    store.save("prod", {"dns": _stage("dns")}, {"dns": 1.0}, Figures())
    path = next(store.directory.iterdir())
    path.write_bytes(content)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("assure_doctor.monitor")
    logger.addHandler(handler)
    try:
        assert store.load("prod") is None
    finally:
        logger.removeHandler(handler)
    warnings = [r for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "corrupt" in warnings[0].getMessage()


def test_a_last_result_behind_a_symlink_is_never_followed(tmp_path: Path) -> None:
    store = LastState(tmp_path)
    store.save("prod", {"dns": _stage("dns")}, {"dns": 1.0}, Figures())
    assert store.load("prod") is not None
    path = next(store.directory.iterdir())
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(elsewhere)
    assert store.load("prod") is None


def test_start_up_says_each_fact_once_and_sandbox_keeps_no_state(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "xdg"
    env = clean_env(XDG_STATE_HOME=str(home))
    env.pop("ASSURE_API_KEY", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "assure_doctor", "monitor", "--sandbox", "--listen",
         f"127.0.0.1:{port}", "--interval", "1", "--ping-interval", "1000", *FAST],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/-/ready", 1), 20, "ready")
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    lines = err.decode().splitlines()
    assert process.returncode == 0
    facts = {"listening on": f"http://127.0.0.1:{port}/metrics",
             "target api.sandbox.sheassure.net": "network stages every 1 s",
             "ping budget": "100", "state dir": "assure-monitor-"}
    for fact, detail in facts.items():
        said = [line for line in lines if fact in line]
        assert len(said) == 1 and detail in said[0], (fact, lines)
    assert len(lines) == len(set(lines)), lines  # nothing said twice
    assert not home.exists()  # the sandbox's throwaway key never touches the real state


def test_sigterm_with_a_ping_in_flight_stops_cleanly(tmp_path: Path) -> None:
    with Sandbox("http-slow") as sandbox:  # answers after 60 s: the ping is still in flight
        monitor = MonitorProcess([*sandbox.check_args(), "--interval", "5", "--ping-interval",
                                  "100000", *FAST, "--timeout", "30"], tmp_path / "state")
        wait_until(lambda: sandbox.traffic.keyed >= 1, 10, "the ping to start")
        start = time.monotonic()
        monitor.process.send_signal(signal.SIGTERM)
        _, err = monitor.process.communicate(timeout=10)
        took = time.monotonic() - start
    text = err.decode() + monitor.log.read_text()
    assert monitor.process.returncode == 0
    assert 2.5 < took < 5  # the grace, then a cancellation
    assert "Traceback" not in text and "CancelledError" not in text
    assert "cancelled: the monitor is stopping" in text and "Stopped" in text
    assert sandbox.key not in text
    assert json.loads((tmp_path / "state" / "ping-budget.json").read_text())["spent"]


@pytest.mark.parametrize("platform", ["linux", "win32"])
def test_stop_signals_reach_the_loop_on_each_platform(platform: str) -> None:
    """On Windows the stop comes through signal.signal + call_soon_threadsafe (Ctrl+C here;
    Ctrl+Break is the same handler where signal.SIGBREAK exists)."""

    async def main() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        stopped, reloaded = asyncio.Event(), asyncio.Event()
        before = signal.getsignal(signal.SIGINT)
        undo = (signals.install_windows(loop, stopped.set) if platform == "win32" else
                signals.install_posix(loop, stopped.set, reloaded.set))
        try:
            if platform == "win32":
                assert signal.getsignal(signal.SIGINT) is not before  # signal.signal was used
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.wait_for(stopped.wait(), 2)
            if platform != "win32":
                os.kill(os.getpid(), signal.SIGHUP)
                await asyncio.wait_for(reloaded.wait(), 2)
        finally:
            undo()
        if platform == "win32":
            assert signal.getsignal(signal.SIGINT) is before  # put back as it was
        return stopped.is_set(), reloaded.is_set()

    stopped, reloaded = asyncio.run(main())
    assert stopped and reloaded == (platform != "win32")


def test_the_path_history_survives_a_restart_and_names_the_change(tmp_path: Path) -> None:
    """A good cycle, a restart, then TLS inspection appears: the monitor still knows when it
    last worked, and says what changed (metrics and log), with no secret in its state."""
    with Sandbox("changed-issuer") as box:
        config = _targets({"api": box}, tmp_path / "targets.toml")
        args = ["--config", str(config), "--interval", "1", "--ping-interval", "100000",
                "--ping-budget", "1000", *FAST]
        first = MonitorProcess(args, tmp_path / "state")
        try:
            good_at = wait_until(lambda: _value(
                first.metrics(), 'assure_last_good_timestamp_seconds{target="api"}'), 20,
                "a good check")
        finally:
            first.stop()
        again = MonitorProcess(args, tmp_path / "state")
        try:
            text = wait_until(lambda: (lambda t: t if 'assure_path_change_info{' in t else None)(
                again.metrics()), 20, "the change")
        finally:
            again.stop()
        history = tmp_path / "state" / "history"
        stored = "".join(path.read_text() for path in history.iterdir())
    # The last good check is the first monitor's: it survived the restart.
    assert _value(text, 'assure_last_good_timestamp_seconds{target="api"}') == good_at
    # Logged once in all, by whichever monitor saw it first (the first may have, before it
    # stopped): never again after the restart.
    assert (_value(text, 'assure_path_changes_total{target="api",what="issuer"}') or 0) <= 1
    assert re.search(r'assure_path_change_info\{[^}]*now="CN=Zscaler Root CA', text)
    assert _value(text, 'assure_up{target="api"}') == 0
    logs = first.log.read_text() + again.log.read_text()
    assert logs.count("TLS inspection (Zscaler) was introduced") == 1
    assert box.key not in stored and box.key not in again.log.read_text()
