"""grafana/ for many sites: the dashboard's site view, and the hashmod sharding example run by a
real Prometheus (which target goes to which replica is Prometheus' own relabelling)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.monitoring import Prometheus, free_port, http_get, needs
from tests.waiting import wait_until

GRAFANA = Path(__file__).resolve().parent.parent / "grafana"
SHARDED = GRAFANA / "prometheus-sharded.yml"
REPLICAS = ("assure-monitor-0:10459", "assure-monitor-1:10459", "assure-monitor-2:10459")


def test_the_dashboard_filters_by_site_and_has_a_site_view() -> None:
    dashboard = json.loads((GRAFANA / "assure-doctor-dashboard.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["site"]["definition"] == "label_values(assure_stage_success, site)"
    assert variables["site"]["includeAll"] and variables["site"]["allValue"] == ".*"
    for panel in dashboard["panels"]:
        for query in panel["targets"]:
            if "assure_ledger" in query["expr"]:
                continue  # the customer's budget is one for every site
            for selector in re.findall(r"\{[^}]*\}", query["expr"]):
                assert 'site=~"$site"' in selector, (panel["title"], query["expr"])
    by_site = [panel for panel in dashboard["panels"]
               if any("by (site, target)" in q["expr"] for q in panel["targets"])]
    assert [panel["title"] for panel in by_site] == ["API up by site"]


def test_the_sharding_example_is_a_valid_config() -> None:
    promtool = needs("promtool", "prometheus")
    done = subprocess.run([promtool, "check", "config", SHARDED.name], cwd=GRAFANA,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def prometheus_hashmod(value: str, modulus: int) -> int:
    """Prometheus' hashmod: the last 8 bytes of the MD5, big-endian, modulo."""
    return int.from_bytes(hashlib.md5(value.encode()).digest()[8:], "big") % modulus


class ConfiguredPrometheus(Prometheus):
    """A real Prometheus on a given configuration file."""

    def __init__(self, config: Path, workdir: Path) -> None:
        self._start(config, workdir)

    def targets(self) -> list[dict[str, Any]]:
        answer = json.loads(http_get(f"{self.url}/api/v1/targets?state=active"))
        return list(answer["data"]["activeTargets"])


@pytest.mark.slow
def test_hashmod_gives_each_target_to_exactly_one_replica(tmp_path: Path) -> None:
    # The example as users copy it, with the replicas moved to loopback ports (never scraped
    # successfully: only the relabelling is under test) and the rule file beside it.
    text = SHARDED.read_text()
    local = {replica: f"127.0.0.1:{free_port()}" for replica in REPLICAS}
    for replica, address in local.items():
        text = text.replace(replica, address)
    (tmp_path / "prometheus.yml").write_text(text)
    (tmp_path / "alerts.yml").write_text((GRAFANA / "alerts.yml").read_text())
    wanted = re.findall(r"^ {10}- (\S+)", SHARDED.read_text(), re.MULTILINE)
    assert len(wanted) >= 3
    server = ConfiguredPrometheus(tmp_path / "prometheus.yml", tmp_path)
    try:
        probes = wait_until(lambda: [t for t in server.targets()
                                   if t["labels"]["job"] == "assure-probe"] or None,
                          30, "the probe targets")
    finally:
        server.stop()
    assert sorted(t["labels"]["instance"] for t in probes) == sorted(wanted)
    for target in probes:
        url = urlsplit(target["scrapeUrl"])
        probed = parse_qs(url.query)["target"]
        assert url.path == "/probe" and probed == [target["labels"]["instance"]]
        owner = local[REPLICAS[prometheus_hashmod(probed[0], len(REPLICAS))]]
        assert url.netloc == owner == target["labels"]["replica"], target
