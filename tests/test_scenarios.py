"""Every sandbox scenario, end to end through the real command line.

For each: the condition and most likely cause, the key absent from everything we wrote, and
the key never sent where TLS did not verify.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from assure_doctor.probes.registry import EVIDENCE_DEFAULTS
from assure_doctor.sandbox.scenarios import SCENARIOS
from assure_doctor.sandbox.stack import Sandbox
from tests.conftest import FAST, run_cli

pytestmark = pytest.mark.slow  # every sandbox scenario, end to end through the command line

# Where the TLS certificate cannot verify, no request may carry the key.
UNVERIFIABLE = {name for name, s in SCENARIOS.items()
                if s.expect.stage == "tls" and s.expect.status == "fail"}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_is_diagnosed(name: str, sandbox_factory: Callable[[str], Sandbox],
                               log_file: Path) -> None:
    sandbox = sandbox_factory(name)
    expect = sandbox.scenario.expect
    for _ in range(sandbox.scenario.checks - 1):  # it worked before it changed
        assert run_cli("check", *sandbox.check_args(), *FAST,
                       enter=sandbox.enter).returncode == 0
    keyed_before = sandbox.traffic.keyed if name in UNVERIFIABLE else 0
    run = run_cli("check", *sandbox.check_args(), *FAST, "--json", "--log-file", str(log_file),
                  enter=sandbox.enter)
    document = run.json()
    if sandbox.scenario.changes is not None:
        assert [change["what"] for change in document["changes"]][:1] == [
            sandbox.scenario.changes]

    if expect.stage is None:
        assert run.returncode == 0, document
        assert document["ok"] is True and document["diagnosis"] is None
        assert [s["status"] for s in document["stages"]] == (
            ["pass", "pass", "skip", "pass", "pass", "pass"] if sandbox.proxy is None
            else ["pass"] * 6)
    else:
        stage = next(s for s in document["stages"] if s["name"] == expect.stage)
        assert stage["status"] == expect.status, stage
        assert stage["condition"] == expect.condition, stage
        assert stage["causes"][0]["id"] == expect.cause, stage["causes"]
        if expect.status == "fail":
            assert run.returncode == 1
            assert document["diagnosis"]["stage"] == expect.stage
            assert document["diagnosis"]["condition"] == expect.condition
            assert document["diagnosis"]["causes"][0]["id"] == expect.cause
        else:
            assert run.returncode == 0
    assert expect.met_by(document)

    for stage in document["stages"]:
        assert set(stage["evidence"]) >= set(EVIDENCE_DEFAULTS[stage["name"]])
        if stage["name"] == "tls" and stage["status"] == "fail":
            assert stage["evidence"]["verify_error"]
    log_text = log_file.read_text()
    for text in (run.stdout, run.stderr, log_text):
        assert sandbox.key not in text
    assert "Traceback" not in run.stderr
    if name in UNVERIFIABLE:
        assert sandbox.traffic.keyed == keyed_before, ("the key was sent over an unverified "
                                                       "connection")


def test_healthy_check_sends_the_key_once(healthy: Sandbox) -> None:
    run = run_cli("check", *healthy.check_args(), *FAST)
    assert run.returncode == 0, run.stdout
    assert healthy.traffic.keyed == 1
    assert [r["keyed"] for r in healthy.traffic.requests] == [False, True]  # clock, then ping
