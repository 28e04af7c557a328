"""The monitor against the sandbox: a real Prometheus scrapes it; budget, 429, shutdown."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from assure_doctor.sandbox.scenarios import Expect, Reply, Scenario
from assure_doctor.sandbox.stack import Sandbox
from tests.conftest import run_cli
from tests.monitoring import MonitorProcess, Prometheus, needs, prometheus
from tests.waiting import wait_until

pytestmark = pytest.mark.slow  # monitor processes scraped by a real Prometheus

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--jitter", "0", "--retries", "0", "--timeout", "2", "--allow-budget-exhaustion"]
TARGETS = {"healthy": "healthy", "tls-expired": "tls-expired", "key-rejected": "http-401",
           "changed": "changed-issuer"}


def config_for(sandboxes: dict[str, Sandbox], path: Path) -> Path:
    blocks = []
    for name, sandbox in sandboxes.items():
        blocks.append(
            f'[[targets]]\nname = "{name}"\nurl = "{sandbox.url}"\n'
            f'resolvers = ["{sandbox.resolver}"]\nca_bundle = "{sandbox.ca_bundle}"\n'
            f'key_file = "{sandbox.key_file}"\n')
    path.write_text("\n".join(blocks))
    return path


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[Prometheus, MonitorProcess, dict[str, Sandbox]]]:
    """Three targets (healthy, a TLS failure, a ping failure) scraped by a real Prometheus."""
    needs("prometheus")
    workdir = tmp_path_factory.mktemp("scraped")
    sandboxes = {name: Sandbox(scenario).start() for name, scenario in TARGETS.items()}
    monitor = MonitorProcess(["--config", str(config_for(sandboxes, workdir / "targets.toml")),
                              "--interval", "1", "--ping-interval", "1", "--ping-budget",
                              "1000", *FAST], workdir / "state")
    try:
        with prometheus(monitor.port, workdir) as server:
            # Enough samples for the dashboard's increase() and every target's first ping.
            wait_until(lambda: len(server.query(
                'count_over_time(assure_ping_requests_total{target="healthy"}[1m]) >= 3')),
                60, "three scrapes of the healthy target's pings")
            wait_until(lambda: len(server.query("assure_up")) == len(TARGETS), 30,
                     "assure_up of every target")
            wait_until(lambda: server.query("assure_path_change_info"), 30, "a path change")
            yield server, monitor, sandboxes
    finally:
        monitor.stop()
        for sandbox in sandboxes.values():
            sandbox.stop()


def test_prometheus_sees_the_contract_series(
        scraped: tuple[Prometheus, MonitorProcess, dict[str, Sandbox]]) -> None:
    server, _, sandboxes = scraped
    assert server.value('assure_up{target="healthy"}') == 1
    assert server.value('assure_up{target="tls-expired"}') == 0
    assert server.value('assure_up{target="key-rejected"}') == 0
    for stage in ("dns", "tcp", "tls", "clock", "ping"):
        assert server.value(f'assure_stage_success{{target="healthy",stage="{stage}"}}') == 1
        assert server.value(f'assure_stage_duration_seconds{{target="healthy",stage="{stage}"}}'
                            ) < 2
    assert server.value('assure_stage_success{target="tls-expired",stage="tls"}') == 0
    assert server.value('assure_stage_success{target="tls-expired",stage="dns"}') == 1
    assert server.value('assure_stage_success{target="key-rejected",stage="ping"}') == 0
    expiry = server.value('assure_tls_cert_not_after_timestamp_seconds{target="healthy"}')
    assert 59 < (expiry - time.time()) / 86400 < 61  # the sandbox's leaf: 60 days
    expired = server.value('assure_tls_cert_not_after_timestamp_seconds{target="tls-expired"}')
    assert expired < time.time()  # read from the certificate that failed verification
    assert abs(server.value('assure_clock_skew_seconds{target="healthy"}')) < 2
    assert server.value('assure_ping_requests_total{target="healthy",code="200"}') >= 1
    assert server.value('assure_ping_requests_total{target="key-rejected",code="401"}') >= 1
    assert server.value('assure_ping_status_code{target="key-rejected"}') == 401
    assert server.query('assure_ping_requests_total{target="tls-expired"}') == []
    assert sandboxes["tls-expired"].traffic.keyed == 0  # never sent over unverified TLS


def test_diagnosis_info_names_stage_condition_and_cause(
        scraped: tuple[Prometheus, MonitorProcess, dict[str, Sandbox]]) -> None:
    server, _, _ = scraped
    found = {r["metric"]["target"]: r["metric"] for r in server.query("assure_diagnosis_info")}
    assert set(found) == {"tls-expired", "key-rejected", "changed"}  # absent while healthy
    assert (found["tls-expired"]["stage"], found["tls-expired"]["condition"],
            found["tls-expired"]["cause"]) == ("tls", "tls_certificate_error", "platform")
    assert (found["key-rejected"]["stage"], found["key-rejected"]["condition"],
            found["key-rejected"]["cause"]) == ("ping", "http_unauthorized", "invalid_key")
    assert (found["changed"]["stage"], found["changed"]["cause"]) == ("tls",
                                                                    "tls_interception")


def test_what_changed_since_the_last_good_check_is_a_series(
        scraped: tuple[Prometheus, MonitorProcess, dict[str, Sandbox]]) -> None:
    server, _, _ = scraped
    changed = [r["metric"] for r in server.query('assure_path_change_info{target="changed"}')]
    assert {c["what"] for c in changed} >= {"issuer"}
    issuer = next(c for c in changed if c["what"] == "issuer")
    assert issuer["now"].startswith("CN=Zscaler Root CA") and "assure-doctor sandbox" in issuer[
        "was"]
    assert server.value('assure_path_changes_total{target="changed",what="issuer"}') == 1
    last_good = server.value('assure_last_good_timestamp_seconds{target="changed"}')
    assert time.time() - 120 < last_good <= time.time()
    assert server.query('assure_path_change_info{target="healthy"}') == []


def test_every_dashboard_query_returns_data(
        scraped: tuple[Prometheus, MonitorProcess, dict[str, Sandbox]]) -> None:
    server, _, _ = scraped
    dashboard = json.loads((ROOT / "grafana" / "assure-doctor-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = re.sub(r"\$\w+", ".*", target["expr"])
            if "assure_ledger" in expr:
                continue  # needs --ledger: tests/test_fleet.py checks these panels
            assert server.query(expr), f"panel {panel['title']!r}: {expr} returned no data"
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "target")
    metric = re.search(r"label_values\((\w+), target\)", variable["definition"])
    assert metric and server.query(metric.group(1))


def test_metrics_pass_promtool(scraped: tuple[Prometheus, MonitorProcess, dict[str, Sandbox]]
                               ) -> None:
    _, monitor, sandboxes = scraped
    text = monitor.metrics()
    promtool = needs("promtool", "prometheus")
    done = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                          capture_output=True)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr
    assert "assure_monitor_build_info" in text
    samples = [line for line in text.splitlines() if line.startswith("assure_")]
    assert samples and all('target="' in line for line in samples)
    for sandbox in sandboxes.values():
        assert sandbox.key not in text
    assert sandbox.key not in monitor.log.read_text()


def test_index_page_links_to_metrics(scraped: tuple[Prometheus, MonitorProcess,
                                                    dict[str, Sandbox]]) -> None:
    from tests.monitoring import http_get

    page = http_get(f"http://127.0.0.1:{scraped[1].port}/")
    assert '<a href="/metrics">' in page


# --- grafana/ files -----------------------------------------------------------------------
def test_alert_rules_check_and_unit_tests_pass() -> None:
    promtool = needs("promtool", "prometheus")
    grafana = ROOT / "grafana"
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"],
                 ["check", "config", "prometheus.yml"]):
        done = subprocess.run([promtool, *args], cwd=grafana, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    rules = (grafana / "alerts.yml").read_text()
    tests = (grafana / "alerts_test.yml").read_text()
    for alert in re.findall(r"- alert: (\w+)", rules):
        assert tests.count(f"alertname: {alert}") >= 2, f"{alert} needs firing and not firing"


def test_dashboard_structure() -> None:
    dashboard = json.loads((ROOT / "grafana" / "assure-doctor-dashboard.json").read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area
        assert panel["datasource"]["uid"] == "${datasource}"
    names = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert names["datasource"]["type"] == "datasource"
    assert names["target"]["type"] == "query"
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("up", "stage success", "durations", "certificate", "clock", "status codes",
                  "budget", "diagnosis", "changed since the last good check",
                  "path changes"):
        assert topic in titles


# --- the budget, 429 and shutdown -----------------------------------------------------------
def test_budget_is_spent_exactly_and_survives_kill_9(tmp_path: Path) -> None:
    with Sandbox("healthy") as sandbox:
        args = [*sandbox.check_args(), "--interval", "5", "--ping-interval", "0.3",
                "--ping-budget", "3", *FAST]
        monitor = MonitorProcess(args, tmp_path / "state")
        try:
            wait_until(lambda: sandbox.traffic.keyed >= 3, 20, "three pings",
                       alive=monitor.process)
            # The monitor asks again, is refused, and says so: nothing more was sent.
            wait_until(lambda: monitor.log_says("today's ping budget (3) is spent"), 20,
                       "the monitor to find its budget spent", alive=monitor.process)
            assert sandbox.traffic.keyed == 3
            spent = "assure_ping_budget_spent{target=\"api.sandbox.sheassure.net\"} 3.0"
            wait_until(lambda: spent in monitor.metrics(), 10,  # re-rendered within a second
                       "/metrics to show the spent budget", alive=monitor.process)
            monitor.process.send_signal(signal.SIGKILL)
            monitor.process.wait(5)
            day = datetime.now(UTC).strftime("%Y-%m-%d")
            state = json.loads((tmp_path / "state" / "ping-budget.json").read_text())
            assert state["day"] == day and list(state["spent"].values()) == [3]
            assert sandbox.key not in json.dumps(state)
            again = MonitorProcess(args, tmp_path / "state")
            try:
                wait_until(lambda: again.log_says("today's ping budget (3) is spent"), 20,
                           "the restarted monitor to find the budget spent",
                           alive=again.process)
                assert sandbox.traffic.keyed == 3  # the restart spent nothing more
            finally:
                again.stop()
        finally:
            monitor.stop()


THROTTLED = Scenario("throttled-3s", "429 with Retry-After: 3",
                     reply=Reply(429, '{"message": "Too Many Requests"}', {"Retry-After": "3"}),
                     expect=Expect("ping", "http_throttled", "rate_limited"))


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    with Sandbox(THROTTLED) as sandbox:
        args = [*sandbox.check_args(), "--interval", "5", "--ping-interval", "0.3",
                "--ping-budget", "100", *FAST]
        monitor = MonitorProcess(args, tmp_path / "state")
        try:
            wait_until(lambda: sandbox.traffic.keyed >= 3, 20, "three throttled pings")
        finally:
            monitor.stop()
        times = [r["at"] for r in sandbox.traffic.requests if r["keyed"]]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert min(gaps) >= 2.9, gaps  # never sooner than Retry-After, though due every 0.3 s


def test_sigterm_stops_cleanly_and_saves_the_budget(tmp_path: Path) -> None:
    with Sandbox("http-slow") as sandbox:  # a ping in flight when the signal arrives
        args = [*sandbox.check_args(), "--interval", "5", "--ping-interval", "100000",
                *FAST, "--timeout", "30"]
        monitor = MonitorProcess(args, tmp_path / "state")
        wait_until(lambda: sandbox.traffic.keyed >= 1, 10, "the ping to start")
        start = time.monotonic()
        monitor.process.send_signal(signal.SIGTERM)
        code = monitor.process.wait(10)
        assert code == 0
        assert time.monotonic() - start < 5
        assert (tmp_path / "state" / "ping-budget.json").exists()
        assert "Stopped" in monitor.log.read_text()


def test_a_cadence_the_budget_cannot_pay_for_is_refused() -> None:
    run = run_cli("monitor", "--url", "https://127.0.0.1:9/v1/ping", "--ping-interval", "60",
                  "--listen", "127.0.0.1:0", env={**os.environ, "ASSURE_API_KEY": "k" * 24})
    assert run.returncode == 2
    assert "--ping-budget 100" in run.stderr and "--ping-interval 864" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_bad_config_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    for text, words in (("[[targets]]\nstack = 'uk 2'\n", "stack = 'uk 2'"),
                        ("[[targets]]\nurl = 'https://x/'\ncolour = 1\n", "colour"),
                        ("not toml at all [", "TOML"), ("interval = 5\n", "[[targets]]")):
        path.write_text(text)
        run = run_cli("monitor", "--config", str(path), "--listen", "127.0.0.1:0")
        assert run.returncode == 2 and words in run.stderr, run.stderr
        assert "Traceback" not in run.stderr


def test_config_file_settings_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text("intervall = 5\n[[targets]]\nurl = 'https://127.0.0.1:9/v1/ping'\n"
                    "no_ping = true\n")
    run = run_cli("monitor", "--config", str(path), "--listen", "127.0.0.1:0")
    assert run.returncode == 2 and "'intervall'" in run.stderr
