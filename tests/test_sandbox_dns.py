"""The sandbox's DNS scenarios end to end: a hosts-file pin checked through the operating
system's resolver inside the scenario's own namespaces, and CNAME chains, dangling and working.
The scenarios' verdicts are in test_scenarios; these check what the reports say."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
from collections.abc import Callable

import pytest

from assure_doctor.errors import InputError
from assure_doctor.sandbox import isolation
from assure_doctor.sandbox.scenarios import PLATFORM_GATEWAY, STALE_ADDRESS
from assure_doctor.sandbox.stack import HOST, Sandbox
from tests.conftest import FAST, clean_env, run_cli

Factory = Callable[[str], Sandbox]


def needs_namespaces() -> None:
    reason = isolation.unavailable()
    if reason is not None:
        pytest.skip(f"hosts-pin: {reason}")


def test_the_hosts_pin_is_found_in_the_hosts_file_and_blamed(sandbox_factory: Factory) -> None:
    sandbox = sandbox_factory("hosts-pin")
    run = run_cli("check", *sandbox.check_args(), *FAST, "--json", enter=sandbox.enter)
    dns, tcp = run.stage("dns"), run.stage("tcp")
    evidence = dns["evidence"]
    assert evidence["os_consulted"] is True and evidence["os_source"] == "hosts"
    assert evidence["os_addresses"] == [STALE_ADDRESS] == evidence["addresses"]
    assert evidence["hosts_file"] == "/etc/hosts" and evidence["hosts_line"] == 5
    # DNS (the sandbox's server, through the namespace's resolv.conf) gives the right one.
    assert "127.0.0.1" in evidence["dns_addresses"] and evidence["dns_agrees"] is False
    assert "from /etc/hosts line 5; DNS answers 127.0.0.1" in dns["summary"]
    assert tcp["status"] == "fail" and tcp["evidence"]["address"] == STALE_ADDRESS
    advice = tcp["causes"][0]["advice"]
    assert tcp["causes"][0]["id"] == "config"
    assert advice.startswith(f"/etc/hosts line 5 pins {HOST} to {STALE_ADDRESS}")
    assert "DNS answers 127.0.0.1" in advice


def test_the_hosts_pin_reads_in_the_human_report(sandbox_factory: Factory) -> None:
    sandbox = sandbox_factory("hosts-pin")
    run = run_cli("check", *sandbox.check_args(), *FAST, enter=sandbox.enter)
    assert run.returncode == 1
    assert "PASS  dns" in run.stdout
    assert f"→ {STALE_ADDRESS} (from /etc/hosts line 5" in run.stdout
    assert "1. Incorrect setup/config (config)" in run.stdout
    assert "/etc/hosts line 5 pins" in run.stdout


def test_the_pinned_scenario_refuses_to_run_outside_its_namespace() -> None:
    """In-process here, /etc/hosts is the machine's: the scenario would not be what it says."""
    with pytest.raises(InputError, match="runs only in namespaces of its own"):
        Sandbox("hosts-pin").start()


def test_a_dangling_cname_shows_its_chain(sandbox_factory: Factory) -> None:
    sandbox = sandbox_factory("dns-dangling-cname")
    run = run_cli("check", *sandbox.check_args(), *FAST, "--json")
    dns = run.stage("dns")
    assert dns["evidence"]["chain"] == [
        {"name": HOST, "target": PLATFORM_GATEWAY, "status": "ok"},
        {"name": PLATFORM_GATEWAY, "target": None, "status": "nxdomain"}]
    assert dns["evidence"]["os_consulted"] is False  # --resolver: the system is not asked
    assert [c["id"] for c in dns["causes"]] == ["platform", "dns_service", "config"]
    assert f"alias of {PLATFORM_GATEWAY}, which does not exist" in dns["causes"][0]["advice"]

    human = run_cli("check", *sandbox.check_args(), *FAST)
    assert f"chain: {HOST} → {PLATFORM_GATEWAY} (ok) → (nxdomain)" in human.stdout
    assert "os_consulted: no" in human.stdout


def test_a_working_chain_passes_and_is_recorded(sandbox_factory: Factory) -> None:
    sandbox = sandbox_factory("dns-cname-chain")
    run = run_cli("check", *sandbox.check_args(), *FAST, "--json", "--no-ping")
    assert run.returncode == 0, run.stdout
    assert run.stage("dns")["summary"].endswith(" only)")  # that resolver, not the system's
    chain = run.stage("dns")["evidence"]["chain"]
    assert [link["name"] for link in chain] == [HOST, "edge.sandbox.sheassure.net",
                                                PLATFORM_GATEWAY]
    assert [link["status"] for link in chain] == ["ok", "ok", "ok"]


@pytest.mark.slow
def test_the_sandbox_command_serves_the_pin_and_prints_a_check_that_enters() -> None:
    needs_namespaces()
    server = subprocess.Popen([sys.executable, "-m", "assure_doctor", "sandbox", "--scenario",
                               "hosts-pin"], stdout=subprocess.PIPE, text=True,
                              env=clean_env())
    try:
        assert server.stdout is not None
        command: list[str] = []
        for line in server.stdout:
            if " check --url " in line:
                command = shlex.split(line)
                break
        assert command[0] == "nsenter" and "--resolver" not in command
        program = command.index("assure-doctor")
        run = run_cli(*command[program + 1:], *FAST, "--json", enter=command[:program])
        assert run.json()["diagnosis"]["stage"] == "tcp"
        assert run.stage("dns")["evidence"]["os_source"] == "hosts"
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(15) == 0
