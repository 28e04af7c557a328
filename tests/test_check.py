"""`assure-doctor check` against the sandbox: the contract's document, the key, retries, logs."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from assure_doctor.sandbox.stack import HOST, Sandbox
from tests.conftest import FAST, clean_env, run_cli

pytestmark = pytest.mark.slow  # whole checks of the sandbox through the command line

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} pid=\d+ tid=\d+ \w+ +\S+: ")


def without_key_file(args: list[str]) -> list[str]:
    index = args.index("--api-key-file")
    return args[:index] + args[index + 2:]


def test_json_document_has_the_contract_shape(healthy: Sandbox) -> None:
    document = run_cli("check", *healthy.check_args(), "--json").json()
    assert document["schema"] == 1 and document["ok"] is True
    assert document["target"] == {"url": healthy.url, "host": HOST, "port": healthy.port,
                                  "stack": None}
    assert [s["name"] for s in document["stages"]] == ["dns", "tcp", "proxy", "tls", "clock",
                                                         "ping"]
    for stage in document["stages"]:
        assert set(stage) >= {"name", "status", "duration_ms", "summary", "condition", "causes",
                              "evidence"}
        assert isinstance(stage["duration_ms"], float) and stage["summary"]
    evidence = {s["name"]: s["evidence"] for s in document["stages"]}
    assert "127.0.0.1" in evidence["dns"]["addresses"]
    assert evidence["dns"]["resolver"] == healthy.resolver
    assert evidence["tcp"]["port"] == healthy.port and evidence["tcp"]["address"] == "127.0.0.1"
    for field in ("not_before", "not_after", "issuer", "subject"):
        assert evidence["tls"][field]
    assert isinstance(evidence["clock"]["skew_seconds"], float)
    assert abs(evidence["clock"]["skew_seconds"]) < 2 and evidence["clock"]["source"]
    assert evidence["ping"]["status_code"] == 200 and evidence["ping"]["attempts"] == 1
    assert "Ping successful" in evidence["ping"]["response_body"]


def test_every_address_is_tried_and_reported(healthy: Sandbox) -> None:
    document = run_cli("check", *healthy.check_args(), "--no-ping", "--json").json()
    tried = [a["address"] for a in document["stages"][1]["evidence"]["attempts"]]
    expected = ["127.0.0.1", "::1"] if healthy.ipv6 else ["127.0.0.1"]
    assert tried == expected
    assert all(a["outcome"] == "connected" for a in document["stages"][1]["evidence"]["attempts"])


def test_no_key_runs_the_network_stages_and_says_the_key_was_not_checked(
        healthy: Sandbox) -> None:
    run = run_cli("check", *without_key_file(healthy.check_args()), "--json")
    document = run.json()
    assert run.returncode == 0 and document["diagnosis"] is None
    assert [s["status"] for s in document["stages"]] == ["pass", "pass", "skip", "pass",
                                                          "pass", "skip"]
    assert run.stage("ping")["summary"] == (
        "not checked: no API key (set ASSURE_API_KEY or --api-key-file)")
    assert "http_unauthorized" not in run.stdout and healthy.traffic.keyed == 0


def test_no_ping_sends_no_key(healthy: Sandbox) -> None:
    run = run_cli("check", *healthy.check_args(), "--no-ping", "--json")
    assert run.returncode == 0
    assert run.json()["stages"][5]["status"] == "skip"
    assert healthy.traffic.keyed == 0


def test_a_wrong_key_from_the_environment_is_an_invalid_key(healthy: Sandbox) -> None:
    wrong = "AB_wrong-key-0123456789abcdef"
    run = run_cli("check", *without_key_file(healthy.check_args()), *FAST, "--retries", "0",
                  "--json", env=clean_env(ASSURE_API_KEY=wrong))
    assert run.returncode == 1
    assert run.json()["diagnosis"]["causes"][0]["id"] == "invalid_key"
    assert wrong not in run.stdout + run.stderr
    assert healthy.traffic.keyed == 1


def test_an_address_in_the_url_needs_no_lookup(healthy: Sandbox) -> None:
    args = healthy.check_args()
    args[args.index("--url") + 1] = f"https://127.0.0.1:{healthy.port}/v1/ping"
    document = run_cli("check", *args, "--json").json()
    assert document["ok"] is True
    assert document["stages"][0]["evidence"]["addresses"] == ["127.0.0.1"]
    assert healthy.dns_queries == []


def test_a_second_resolver_is_asked_when_the_first_is_silent(
        sandbox_factory: Callable[[str], Sandbox]) -> None:
    silent, good = sandbox_factory("dns-silent"), sandbox_factory("healthy")
    args = good.check_args()
    args[args.index("--resolver") + 1] = silent.resolver
    run = run_cli("check", *args, "--resolver", good.resolver, "--no-ping", "--timeout", "2")
    assert run.returncode == 0, run.stdout
    assert silent.dns_queries and good.dns_queries


def test_retry_after_is_honoured_over_the_pause(sandbox_factory: Callable[[str], Sandbox]
                                                ) -> None:
    sandbox = sandbox_factory("http-429")
    run = run_cli("check", *sandbox.check_args(), "--retries", "2", "--retry-pause", "0",
                  "--json")
    ping = run.json()["stages"][5]["evidence"]
    assert ping["attempts"] == 3 and ping["retry_after"] == 1.0
    times = [r["at"] for r in sandbox.traffic.requests if r["keyed"]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 2 and min(gaps) >= 0.95, gaps


def test_a_retry_after_beyond_the_limit_stops_retrying(sandbox_factory: Callable[[str], Sandbox]
                                                       ) -> None:
    sandbox = sandbox_factory("http-429")
    run = run_cli("check", *sandbox.check_args(), "--max-retry-after", "0.5", "--json")
    assert run.json()["stages"][5]["evidence"]["attempts"] == 1
    assert sandbox.traffic.keyed == 1


def test_retries_follow_the_guide(sandbox_factory: Callable[[str], Sandbox]) -> None:
    sandbox = sandbox_factory("http-500")
    run = run_cli("check", *sandbox.check_args(), "--retries", "0", "--json")
    assert run.json()["stages"][5]["evidence"]["attempts"] == 1
    run = run_cli("check", *sandbox.check_args(), "--retry-pause", "0.05", "--json")
    assert run.json()["stages"][5]["evidence"]["attempts"] == 3  # the default: 3 attempts
    assert sandbox.traffic.keyed == 4


def test_log_follows_the_guide(sandbox_factory: Callable[[str], Sandbox], log_file: Path) -> None:
    sandbox = sandbox_factory("http-500")
    run_cli("check", *sandbox.check_args(), "--retry-pause", "0.05", "--log-file", str(log_file))
    lines = log_file.read_text().splitlines()
    assert lines and all(LOG_LINE.match(line) for line in lines), lines[:3]
    before = [i for i, line in enumerate(lines) if f"About to GET {sandbox.url}" in line]
    failed = [i for i, line in enumerate(lines)
              if "500 response" in line and "Internal server error" in line]
    assert len(before) >= 3 and len(failed) == 3
    assert all(b < f for b, f in zip(before[1:], failed, strict=False)) and before[1] < failed[0]
    assert any("Pausing for" in line and "Retry count 1" in line for line in lines)
    assert any("ALERT" in line for line in lines)
    assert sandbox.key not in log_file.read_text()


def test_human_report_names_condition_causes_and_advice(
        sandbox_factory: Callable[[str], Sandbox]) -> None:
    sandbox = sandbox_factory("tls-unknown-issuer")
    run = run_cli("check", *sandbox.check_args(), *FAST)
    assert run.returncode == 1
    assert "\x1b[" not in run.stdout  # not a terminal: no colour
    assert "FAIL  tls" in run.stdout
    assert "[tls_certificate_error]" in run.stdout
    assert "1. TLS-inspecting proxy or missing trust anchor (tls_interception)" in run.stdout
    assert "Corporate TLS Inspection CA" in run.stdout  # the issuer, read despite the failure


def test_clock_runs_after_a_certificate_failure_but_not_after_a_connect_failure(
        sandbox_factory: Callable[[str], Sandbox]) -> None:
    ahead = sandbox_factory("clock-server-ahead")
    stages = run_cli("check", *ahead.check_args(), *FAST, "--json").json()["stages"]
    assert stages[3]["status"] == "fail" and stages[4]["status"] == "warn"
    assert 2.9 * 86400 < stages[4]["evidence"]["skew_seconds"] < 3.1 * 86400
    assert stages[5]["status"] == "skip"
    refused = sandbox_factory("tcp-refused")
    stages = run_cli("check", *refused.check_args(), *FAST, "--json").json()["stages"]
    assert [s["status"] for s in stages] == ["pass", "fail", "skip", "skip", "skip", "skip"]


def test_stealth_firewall_is_reported_within_the_timeout(
        sandbox_factory: Callable[[str], Sandbox]) -> None:
    sandbox = sandbox_factory("tcp-timeout")
    run = run_cli("check", *sandbox.check_args(), "--timeout", "1", "--json")
    tcp = run.json()["stages"][1]
    assert tcp["condition"] == "connect_timeout"
    assert 1000 <= tcp["duration_ms"] <= 1100


def test_a_resolver_that_drops_aaaa_does_not_stall_the_check(
        sandbox_factory: Callable[[str], Sandbox]) -> None:
    sandbox = sandbox_factory("dns-aaaa-dropped")
    run = run_cli("check", *sandbox.check_args(), "--timeout", "5", "--json")
    dns = run.json()["stages"][0]
    assert run.returncode == 0 and dns["status"] == "pass"
    assert dns["evidence"]["addresses"] == ["127.0.0.1"]
    assert dns["duration_ms"] < 2000  # a short grace for AAAA, not the 5 s timeout
