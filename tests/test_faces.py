"""The engine without its faces, the sandbox command, and the demo."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from assure_doctor.sandbox import isolation
from assure_doctor.sandbox.stack import Sandbox
from tests.conftest import clean_env, run_cli

PROBE = """
import sys
from assure_doctor.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("textual", "apscheduler", "prometheus_client") if m in sys.modules)
print("HEAVY", heavy)
sys.exit(code)
"""


def test_engine_and_check_load_no_face(healthy: Sandbox) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, "check", *healthy.check_args()],
                          capture_output=True, text=True, env=clean_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "HEAVY []" in done.stdout
    assert healthy.traffic.keyed == 1  # the check really ran


@pytest.mark.slow
def test_sandbox_command_prints_a_check_command_that_works() -> None:
    server = subprocess.Popen([sys.executable, "-m", "assure_doctor", "sandbox", "--scenario",
                               "http-404"], stdout=subprocess.PIPE, text=True, env=clean_env())
    try:
        assert server.stdout is not None
        command = ""
        for line in server.stdout:
            if line.strip().startswith("assure-doctor check "):
                command = line.strip()
                break
        assert "--resolver 127.0.0.1:" in command and "--ca-bundle" in command
        args = command.split()[1:]
        run = run_cli(*args, "--retries", "0", "--json")
        assert run.returncode == 1
        assert run.json()["diagnosis"]["condition"] == "http_not_found"
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(10) == 0


def test_sandbox_lists_its_scenarios() -> None:
    run = run_cli("sandbox", "--list")
    assert run.returncode == 0
    assert "tls-expired" in run.stdout and "expect: tls fail" in run.stdout


@pytest.mark.slow
def test_demo_diagnoses_its_faults() -> None:
    run = run_cli("demo")
    assert run.returncode == 0, run.stdout[-2000:]
    if isolation.unavailable() is None:
        assert "10 of 10 scenarios diagnosed as expected" in run.stdout
    else:  # the hosts-file scenario needs namespaces: skipped, saying why
        assert "9 of 9 scenarios diagnosed as expected; skipped: hosts-pin" in run.stdout
        assert "scenario hosts-pin: skipped: " in run.stdout
    assert "Result: OK" in run.stdout and "Diagnosis:" in run.stdout


@pytest.mark.slow
def test_demo_refuses_an_unknown_scenario() -> None:
    run = run_cli("demo", "no-such-thing")
    assert run.returncode == 2 and "no-such-thing" in run.stderr


def test_help_is_fast_and_lists_the_commands() -> None:
    run = run_cli("--help")
    assert run.returncode == 0
    for command in ("check", "sandbox", "demo"):
        assert command in run.stdout
