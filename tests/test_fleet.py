"""Many sites, one customer: the `site` label and the ledger that shares one daily budget."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from assure_doctor.errors import InputError
from assure_doctor.model import StageResult, Status
from assure_doctor.monitor import fleet, ledger
from assure_doctor.monitor.budget import PingBudget
from assure_doctor.monitor.collector import AssureCollector, Health
from assure_doctor.monitor.server import REFRESH
from assure_doctor.monitor.watch import Snapshot
from assure_doctor.sandbox.stack import Sandbox
from tests.conftest import clean_env, run_cli
from tests.monitoring import MonitorProcess, Prometheus, free_port
from tests.waiting import wait_until

KEY_ID = "0123456789ab"
DASHBOARD = Path(__file__).resolve().parent.parent / "grafana" / "assure-doctor-dashboard.json"
TODAY = datetime.now(UTC).strftime("%Y-%m-%d")


# --- the site label ---------------------------------------------------------------------
def render(site: str | None) -> str:
    stages = {name: StageResult(name, Status.PASS, 3.0, "ok")
              for name in ("dns", "tcp", "tls", "clock", "ping")}
    snap = Snapshot("uk2", stages=stages, ran_at=dict.fromkeys(stages, 1.7e9),
                    ping_codes={"200": 2}, budget_spent=2, budget_daily=100, key_id=KEY_ID,
                    budget_day=TODAY, ledger=ledger.LedgerView(True, 7, 20))
    registry = CollectorRegistry()
    registry.register(AssureCollector(lambda: [snap], Health(), site, "feedfacefeedface"))
    return generate_latest(registry).decode()


def test_every_series_carries_the_site() -> None:
    text = render("london-office")
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(samples) > 20
    assert all('site="london-office"' in line for line in samples), text
    assert (f'assure_ping_key_spent{{day="{TODAY}",key_id="{KEY_ID}",site="london-office",'
            'spender="feedfacefeedface",target="uk2"} 2.0') in text
    assert 'assure_ledger_spent{site="london-office",target="uk2"} 7.0' in text
    assert "site=" not in render(None)  # no --site: no label, the series as before


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, 'a"b', "a\nb", "-lead", "a{b}", "é", 5])
def test_a_bad_site_name_is_refused(name: object) -> None:
    with pytest.raises(InputError):
        fleet.site(name)


def test_a_good_site_name_passes() -> None:
    assert fleet.site("eu-west/dc1:rack@2.a_b") == "eu-west/dc1:rack@2.a_b"


@pytest.mark.slow
@pytest.mark.parametrize(("args", "words"), [
    (["--site", "a b"], "--site"),
    (["--ledger", "http://127.0.0.1:9090"], "go together"),
    (["--customer-budget", "5"], "go together"),
    (["--ledger", "ftp://x", "--customer-budget", "5"], "--ledger"),
    (["--ledger", "http://u:secretpw@x", "--customer-budget", "5"], "credentials"),
    (["--ledger", "http://x", "--customer-budget", "-1"], "--customer-budget"),
    (["--ledger", "http://x", "--customer-budget", "10001"], "--customer-budget"),
])
def test_bad_fleet_flags_are_exit_2(args: list[str], words: str) -> None:
    run = run_cli("monitor", "--url", "https://127.0.0.1:9/v1/ping", "--no-ping",
                  "--listen", "127.0.0.1:0", *args)
    assert run.returncode == 2 and words in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert "secretpw" not in run.stderr


@pytest.mark.slow
def test_fleet_settings_in_the_config_file_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "targets.toml"
    # Errors name the TOML key, not the flag.
    for setting, words in (('site = 5', "site = 5"), ('customer_budget = 2.5\nledger = "http://x"',
                                                     "customer_budget = 2.5")):
        path.write_text(f"{setting}\n[[targets]]\nurl = 'https://127.0.0.1:9/v1/ping'\n"
                        "no_ping = true\n")
        run = run_cli("monitor", "--config", str(path), "--listen", "127.0.0.1:0")
        assert run.returncode == 2 and words in run.stderr, run.stderr


# --- the ledger's answer, parsed totally ------------------------------------------------
def answer(*rows: object, status: str = "success", kind: str = "vector") -> bytes:
    return json.dumps({"status": status, "data": {"resultType": kind,
                                                  "result": list(rows)}}).encode()


def test_a_good_answer_is_read() -> None:
    body = answer({"metric": {"spender": "a"}, "value": [1.7e9, "4"]},
                  {"metric": {"spender": "b"}, "value": [1.7e9, "2.2"]})
    assert ledger.parse_answer(body) == {"a": 4, "b": 3}  # a fraction rounds up: safe side


@pytest.mark.parametrize("body", [
    b"", b"<html>", b"[]", answer(status="error"), answer(kind="matrix"),
    answer({"metric": {"spender": "a"}, "value": [1, "NaN"]}),
    answer({"metric": {"spender": "a"}, "value": [1, "+Inf"]}),
    answer({"metric": {"spender": "a"}, "value": [1, "-1"]}),
    answer({"metric": {"spender": "a"}, "value": [1, 4]}),
    answer({"metric": {"spender": "a"}, "value": [1]}),
    answer({"metric": {"spender": 7}, "value": [1, "1"]}),
    answer({"value": [1, "1"]}), answer("row"),
    answer(*({"metric": {"spender": str(i)}, "value": [1, "1"]} for i in range(1001))),
])
def test_a_bad_answer_is_an_error_never_a_number(body: bytes) -> None:
    with pytest.raises(ledger.LedgerError):
        ledger.parse_answer(body)


JSON = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
VALUE = st.tuples(st.floats(), st.sampled_from(["1", "2.5", "NaN", "-3", "+Inf", "1e12", "x"])
                  ).map(list)


@settings(max_examples=120, deadline=None)
@given(st.one_of(JSON, st.builds(lambda rows: {"status": "success", "data": {
    "resultType": "vector", "result": rows}}, st.lists(JSON | st.fixed_dictionaries(
        {"metric": st.dictionaries(st.text(max_size=8), JSON, max_size=3),
         "value": VALUE | st.lists(JSON, max_size=3)}), max_size=4))))
def test_any_answer_is_read_or_refused_never_crashes(document: object) -> None:
    try:
        rows = ledger.parse_answer(json.dumps(document).encode())
    except ledger.LedgerError:
        return
    assert all(isinstance(k, str) and isinstance(v, int) and 0 <= v <= 10**9
               for k, v in rows.items())


@contextlib.contextmanager
def fake_prometheus(body: bytes, queries: list[str]) -> Iterator[str]:
    """A real HTTP server on loopback that answers every query with `body`."""

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # the head and the body are two writes: no 40 ms stall

        def do_GET(self) -> None:
            queries.append(parse_qs(urlsplit(self.path).query)["query"][0])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # shutdown() waits for serve_forever's next poll: 0.5 s by default, at every test's end.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_the_cap_is_the_customer_budget_less_the_other_sites(tmp_path: Path) -> None:
    queries: list[str] = []
    rows = answer({"metric": {"spender": "other1"}, "value": [1, "9"]},
                  {"metric": {"spender": "other2"}, "value": [1, "6"]},
                  {"metric": {"spender": "me"}, "value": [1, "1"]})  # stale: own is exact
    budget = PingBudget(tmp_path)
    budget.reserve(KEY_ID, 3, 100)
    with fake_prometheus(rows, queries) as url:
        cap = asyncio.run(ledger.Ledger(url.rstrip("/"), 20, "me").cap(
            KEY_ID, TODAY, 100, budget.spent(KEY_ID)))
    assert (cap.daily, cap.customer) == (5, True)  # 20 - (9 + 6)
    assert cap.view == ledger.LedgerView(True, 18, 20)  # 15 others + 3 own
    assert budget.reserve(KEY_ID, 3, cap.daily) == 2  # own 3 + 2 = 5: 15 + 5 = 20
    assert queries == [f'max by (spender) (last_over_time(assure_ping_key_spent{{key_id="{KEY_ID}"'
                       f',day="{TODAY}"}}[1d]))']


def test_an_oversized_answer_is_refused(tmp_path: Path) -> None:
    with fake_prometheus(b" " * (ledger.MAX_BODY + 10), []) as url:
        cap = asyncio.run(ledger.Ledger(url, 20, "me").cap(KEY_ID, TODAY, 7, 0))
    assert (cap.daily, cap.customer, cap.view.up) == (7, False, False)


def test_the_spender_id_survives_a_restart(tmp_path: Path) -> None:
    first = ledger.spender_id(tmp_path)
    assert ledger.spender_id(tmp_path) == first and len(first) == 16
    (tmp_path / ledger.SPENDER_FILE).write_text("garbage\n")
    assert ledger.spender_id(tmp_path) not in ("garbage", first)


# --- three sites, one real Prometheus as the ledger ------------------------------------
SITES = 3
ATTEMPTS = 1  # --retries 0
CUSTOMER_BUDGET = 20
SCRAPE = 1.0  # Prometheus scrapes every site every second
PING_SPACING = 0.98  # a site pings at most every 0.98 x --ping-interval (1 s)
# How long a reservation can stay invisible to the other sites: /metrics is re-rendered at
# most REFRESH after it, Prometheus scrapes it at most SCRAPE after that, plus slack for the
# scrape and the query themselves.
LAG = REFRESH + SCRAPE + 0.5
# While a site's latest reservations are invisible, each other site may still reserve its own
# next ping: the last ping granted can overshoot the budget by what the other sites reserved
# within one LAG (a site's own spend is read exactly, never from the ledger).
PINGS_IN_LAG = math.floor(LAG / PING_SPACING) + 1
BOUND = CUSTOMER_BUDGET + (SITES - 1) * ATTEMPTS * PINGS_IN_LAG  # 20 + 2 x 1 x 3 = 26


class SiteMonitor(MonitorProcess):
    """A monitor on a port chosen before it starts (Prometheus must know it first)."""

    def __init__(self, port: int, args: list[str], state_dir: Path) -> None:
        self.port, self.state_dir, self.args, self.env = port, state_dir, args, clean_env()
        self.log = state_dir.parent / f"monitor-{port}.log"
        self.process = self._spawn()


class LedgerPrometheus(Prometheus):
    """A real Prometheus scraping every site every second."""

    def __init__(self, ports: list[int], workdir: Path) -> None:
        config = workdir / "prometheus.yml"
        targets = ", ".join(f"'127.0.0.1:{port}'" for port in ports)
        config.write_text(
            f"global:\n  scrape_interval: {SCRAPE:g}s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: assure-doctor\n    static_configs:\n"
            f"      - targets: [{targets}]\n")
        self._start(config, workdir)


def site_args(sandbox: Sandbox, site: str, ledger_url: str, ping_budget: int) -> list[str]:
    return [*sandbox.check_args(), "--site", site, "--ledger", ledger_url,
            "--customer-budget", str(CUSTOMER_BUDGET), "--ping-budget", str(ping_budget),
            "--ping-interval", "1", "--interval", "60", "--jitter", "0", "--retries", "0",
            "--timeout", "2", "--allow-budget-exhaustion"]


@pytest.mark.slow
def test_three_sites_never_overspend_one_customer_budget(tmp_path: Path) -> None:
    """Each of 3 sites wants a ping every second, with --ping-budget 100 of its own; together
    they stay within --customer-budget 20 plus the scrape lag: at most BOUND (26) keyed
    requests reach the API."""
    ports = [free_port() for _ in range(SITES)]
    server = LedgerPrometheus(ports, tmp_path)
    monitors: list[SiteMonitor] = []
    try:
        with Sandbox("healthy") as sandbox:
            for index, port in enumerate(ports):
                monitors.append(SiteMonitor(port, site_args(sandbox, f"site{index}", server.url,
                                                            100), tmp_path / f"state{index}"))
            alive = [m.process for m in monitors]
            wait_until(lambda: sandbox.traffic.keyed >= CUSTOMER_BUDGET, 40,
                       f"{CUSTOMER_BUDGET} pings", alive=alive)
            # Every site must see the others' spend: each asks again, is refused by the
            # customer's budget and says so; then nothing more can be sent.
            spent_text = f"today's customer budget ({CUSTOMER_BUDGET}, all sites) is spent"
            wait_until(lambda: all(m.log_says(spent_text) for m in monitors), 20 * LAG,
                       "every site to find the customer's budget spent", alive=alive)
            settled = sandbox.traffic.keyed
            print(f"keyed pings: {settled} (customer budget {CUSTOMER_BUDGET}, bound {BOUND})")
            assert CUSTOMER_BUDGET <= settled <= BOUND, (settled, BOUND)
            ledger_up = server.query("assure_ledger_up == 1")
            assert {row["metric"]["site"] for row in ledger_up} == {"site0", "site1", "site2"}
            # The ledger agrees with the API, once Prometheus has scraped the last spend.
            wait_until(lambda: float(server.query(
                'sum(max by (spender) (assure_ping_key_spent))')[0]["value"][1]) == settled,
                10 * LAG, "the ledger to count every keyed ping", alive=alive)
            assert sandbox.traffic.keyed == settled, "pings continued past the budget"
            assert sandbox.key not in "".join(m.metrics() + m.log.read_text() for m in monitors)
            fleet_panels = 0  # the per-site view and the ledger's (test_monitor: the rest)
            for panel in json.loads(DASHBOARD.read_text())["panels"]:
                for query in panel["targets"]:
                    expr = re.sub(r"\$\w+", ".*", query["expr"])
                    if "by (site" in expr or "assure_ledger" in expr:
                        fleet_panels += 1
                        assert server.query(expr), f"{panel['title']!r}: {expr}: no data"
            assert fleet_panels == 2
    finally:
        for monitor in monitors:
            monitor.stop()
        server.stop()


@pytest.mark.slow
def test_an_unreachable_ledger_falls_back_to_the_own_budget(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with Sandbox("healthy") as sandbox:
        monitor = MonitorProcess(site_args(sandbox, "lonely", dead, 3), tmp_path / "state")
        try:
            wait_until(lambda: sandbox.traffic.keyed >= 3, 20, "three pings",
                       alive=monitor.process)
            wait_until(lambda: monitor.log_says("today's ping budget (3) is spent"), 20,
                       "the site to find its own budget spent", alive=monitor.process)
            assert sandbox.traffic.keyed == 3  # the own --ping-budget, not the customer's 20
            text = monitor.metrics()
            assert 'assure_ledger_up{site="lonely",target="api.sandbox.sheassure.net"} 0.0' \
                in text
            log = monitor.log.read_text()
            assert log.count("cannot be asked") == 1  # said once, not at every ping
        finally:
            monitor.stop()


@pytest.mark.slow
def test_a_stopped_site_stays_counted_all_day(tmp_path: Path) -> None:
    """Site a spends 5 with --customer-budget 8 and stops; site b, started after, sees a's
    spend in the ledger though a is no longer scraped, and spends exactly the 3 left."""
    ports = [free_port(), free_port()]
    server = LedgerPrometheus(ports, tmp_path)
    try:
        with Sandbox("healthy") as sandbox:
            args = [arg if arg != str(CUSTOMER_BUDGET) else "8"
                    for arg in site_args(sandbox, "a", server.url, 5)]
            first = SiteMonitor(ports[0], args, tmp_path / "state-a")
            try:
                wait_until(lambda: sandbox.traffic.keyed >= 5, 20, "site a's five pings")
                wait_until(lambda: server.query('assure_ping_key_spent{site="a"} == 5'), 10,
                         "the ledger to see site a's five")
            finally:
                first.stop()
            wait_until(lambda: not server.query('assure_ping_key_spent{site="a"}'), 10,
                     "site a's series to go stale")
            args = [arg if arg != "a" else "b" for arg in args]
            args[args.index("--ping-budget") + 1] = "100"
            second = SiteMonitor(ports[1], args, tmp_path / "state-b")
            try:
                wait_until(lambda: sandbox.traffic.keyed >= 8, 20, "site b's three pings",
                           alive=second.process)
                wait_until(lambda: second.log_says("customer budget (8, all sites) is spent"),
                           20, "site b to find the customer's budget spent",
                           alive=second.process)
                assert sandbox.traffic.keyed == 8
            finally:
                second.stop()
    finally:
        server.stop()
