"""The human report as a new user reads it: aligned, tidy, sanitised, and a first line that runs."""

from __future__ import annotations

import asyncio
import re
import shlex
from dataclasses import replace
from pathlib import Path

import certifi
import pytest

from assure_doctor import trust
from assure_doctor.model import Cause, KeyInfo, Report, StageResult, Status
from assure_doctor.options import CheckOptions
from assure_doctor.render import human, words
from assure_doctor.sandbox.stack import Sandbox
from assure_doctor.target import from_url, parse_resolver
from tests.conftest import clean_env, run_cli

TARGET = from_url("https://api.sandbox.sheassure.net/v1/ping")


def _report(*stages: StageResult) -> Report:
    return Report(TARGET, stages, "2026-01-01T00:00:00+00:00", "system (10.255.255.53)")


def _stage(name: str, status: Status, summary: str = "fine", **extra: object) -> StageResult:
    return StageResult(name, status, 12.0, summary, **extra)  # type: ignore[arg-type]


def test_skip_rows_line_up_with_the_others() -> None:
    refused = _stage("tcp", Status.FAIL, condition="connect_failed",
                     causes=(Cause("config", "Incorrect setup/config", "Check the port."),))
    text = human.render(_report(_stage("dns", Status.PASS), refused,
                                _stage("tls", Status.SKIP, "skipped: tcp failed")))
    rows = [line for line in text.splitlines() if re.match(r"  (PASS|FAIL|SKIP) ", line)]
    assert len(rows) == 3
    assert len({row.index(summary) for row, summary in
                zip(rows, ("fine", "fine", "skipped"), strict=True)}) == 1


def test_joined_texts_are_tidy() -> None:
    cause = Cause("dns_service", "DNS service issue",
                  "The DNS servers this machine uses (system (10.255.255.53)) fail.")
    failed = _stage("dns", Status.FAIL, "not valid for 'api.sandbox.sheassure.net'.. If so",
                    condition="dns_lookup_failed", causes=(cause,))
    clock = _stage("clock", Status.PASS, "clocks agree: skew -0.0 s (±0.5 s)")
    text = human.render(_report(failed, clock))
    assert "'.. If" not in text and "'api.sandbox.sheassure.net'. If so" in text
    assert "(system (" not in text and "(system 10.255.255.53)" in text
    assert "-0.0" not in text and "skew 0.0 s" in text
    assert words.tidy("wait... -0.5 s, 10.0.0.1") == "wait... -0.5 s, 10.0.0.1"


def test_outside_strings_are_sanitised_and_cut_with_an_ellipsis() -> None:
    body = "\x1b]0;owned\x07 " + "long words " * 40
    ping = _stage("ping", Status.FAIL, "HTTP 500 \x1b[2J", condition="http_server_error",
                  causes=(Cause("platform", "Platform", "Contact support."),),
                  evidence={"response_body": body, "attempts": [{"address": "::1", "ms": 1.0}]})
    text = human.render(_report(ping))
    assert "\x1b" not in text and "\x07" not in text and "\\x1b]0;owned\\x07" in text
    line = next(line for line in text.splitlines() if "response_body" in line)
    assert line.endswith("…")
    assert "{'" not in text


def test_a_warning_is_headed_as_a_warning_not_an_error() -> None:
    expiring = _stage("tls", Status.WARN, "valid for 5 days", condition="tls_certificate_error",
                      causes=(Cause("platform", "Platform", "Renew it."),))
    text = human.render(_report(expiring))
    assert re.search(r"^Warning: SSL certificate [^[]*\[tls_certificate_error\]", text, re.M)
    assert "error [" not in text.split("Warning:")[1].splitlines()[0]


def test_the_key_is_described_as_data_and_the_same_word_everywhere() -> None:
    assert words.key_text(KeyInfo()).startswith("absent")
    described = words.key_text(KeyInfo(True, "file", 36, sent=False))
    assert described == ("from the file given with --api-key-file (36 chars), not sent "
                         "(--no-ping)")
    report = replace(_report(_stage("dns", Status.PASS)), key_info=KeyInfo(True, "x", 3, True))
    assert "API key from x (3 chars)" in human.render(report)


def test_the_first_line_is_a_command_that_runs_as_printed(healthy: Sandbox) -> None:
    run = run_cli("check", *healthy.check_args())
    assert run.returncode == 0
    first = run.stdout.splitlines()[0]
    args = shlex.split(first)
    assert args[:2] == ["assure-doctor", "check"] and "--resolver" in args
    assert args[args.index("--api-key-file") + 1] == str(healthy.key_file)
    again = run_cli(*args[1:])  # the key comes from the file the command names
    assert again.returncode == 0 and again.stdout.splitlines()[0] == first
    assert healthy.traffic.keyed == 2


def test_first_line_quotes_for_the_shell(tmp_path: Path) -> None:
    bundle = tmp_path / "my ca.pem"  # options load their bundle: it must be a real one
    bundle.write_bytes(Path(certifi.where()).read_bytes())
    options = CheckOptions(resolvers=(parse_resolver("[::1]:5353"),),
                           trust=trust.load(str(bundle)))
    line = human.render(_report(_stage("dns", Status.PASS)), options).splitlines()[0]
    assert shlex.split(line)[-4:] == ["--resolver", "[::1]:5353", "--ca-bundle", str(bundle)]


def test_no_ping_with_a_key_file_tells_the_truth(healthy: Sandbox) -> None:
    run = run_cli("check", *healthy.check_args(), "--no-ping")
    assert run.returncode == 0
    assert "not sent (--no-ping)" in run.stdout and "absent" not in run.stdout
    assert healthy.traffic.keyed == 0


def test_a_stray_flag_points_to_the_command_help() -> None:
    run = run_cli("check", "--stak", "uk2")
    assert run.returncode == 2
    assert "see assure-doctor check --help" in run.stderr and "Traceback" not in run.stderr


def test_the_environment_names_proxy_trust_chain_and_only_allowed_headers() -> None:
    from assure_doctor import apikey, redact
    from assure_doctor.engine import run_check
    from assure_doctor.probes.results import PingFound
    from assure_doctor.render import environment
    from assure_doctor.sandbox.scenarios import Reply, Scenario

    redact.register("proxy-secret-pw")
    hostile = Scenario("headers", "the ping answers with headers of every kind", reply=Reply(
        headers={"Server": "nginx", "Set-Cookie": "s=1", "X-Echo": "proxy-secret-pw",
                 "Location": "https://elsewhere.example/"}))
    with Sandbox(hostile) as sandbox:
        options = CheckOptions(timeout=1.5, resolvers=(parse_resolver(sandbox.resolver),),
                               trust=trust.load(str(sandbox.ca_bundle)))
        checked = asyncio.run(run_check(from_url(sandbox.url), options,
                                        apikey.from_file(sandbox.key_file)))
    found = checked.found(PingFound)
    assert found is not None and found.status_code == 200
    kept = {name for name, _ in found.headers}
    assert {"server", "date"} <= kept and not kept & {"set-cookie", "x-echo", "location"}
    proxy = _stage("proxy", Status.PASS, "tunnel open",
                   evidence={"proxy": "http://alice:****@10.0.0.8:3128", "source": "HTTPS_PROXY"})
    tls = _stage("tls", Status.PASS, evidence={
        "subject": "CN=api", "sha256": "ab" * 32,
        "trust": {"certifi": False, "system": True, "ca_bundle": None},
        "chain": [{"subject": "CN=api", "issuer": "CN=Zscaler Root"}]})
    tcp = _stage("tcp", Status.PASS, evidence={"attempts": [
        {"address": "10.0.0.8", "outcome": "connected"},
        {"address": "fd00::8", "outcome": "timeout", "error": "timed out"}]})
    ping = _stage("ping", Status.PASS, found=found)
    rows = dict(environment.facts(_report(proxy, tcp, tls, ping), None))
    assert rows["proxy"] == "http://alice:****@10.0.0.8:3128 (from HTTPS_PROXY)"
    assert rows["trust"] == "certifi did not verify, system verified, ca_bundle not used"
    assert rows["chain certificate 1"] == "subject CN=api, issuer CN=Zscaler Root"
    assert rows["addresses tried (IPv4)"] == "10.0.0.8 connected"
    assert rows["addresses tried (IPv6)"] == "fd00::8 timeout (timed out)"
    headers = {label for label in rows if label.startswith("header ")}
    assert headers == {f"header {name}" for name in kept}
    assert rows["header server"] == "nginx"
    assert "proxy-secret-pw" not in repr(rows)


@pytest.mark.slow
def test_a_hostile_server_reaches_the_human_report_only_as_escaped_text(tmp_path: Path) -> None:
    from tests.key_echo import MARKUP, PLANTED, KeyEcho

    with KeyEcho(PLANTED, tmp_path) as server:
        run = run_cli("check", "--url", f"https://127.0.0.1:{server.port}/v1/ping",
                      "--ca-bundle", str(server.ca_bundle), "--timeout", "1.5", "--retries",
                      "0", env=clean_env(ASSURE_API_KEY=PLANTED))
    assert run.returncode == 1 and "[http_redirect]" in run.stdout
    for text in (run.stdout, run.stderr):
        assert PLANTED not in text and "\x1b" not in text and "\x07" not in text
    assert "\\x1b]0;owned\\x07" in run.stdout and MARKUP in run.stdout
