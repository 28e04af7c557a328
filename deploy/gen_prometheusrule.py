"""Write deploy/kubernetes/prometheusrule.yaml from grafana/alerts.yml: the same rules, as the
Prometheus Operator's PrometheusRule. Run after changing the alerts; `--check` exits 1 when
the file is out of date (CI and tests/test_deploy.py run it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "grafana" / "alerts.yml"
OUTPUT = ROOT / "deploy" / "kubernetes" / "prometheusrule.yaml"
HEADER = """\
# Generated from grafana/alerts.yml by deploy/gen_prometheusrule.py: do not edit by hand.
# Your Prometheus' ruleSelector must match these labels (kube-prometheus-stack's default:
# release: <its Helm release>).
"""


def rule(alerts: dict[str, Any]) -> dict[str, Any]:
    """The PrometheusRule resource holding `alerts`' groups unchanged."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "assure-doctor",
                     "labels": {"app.kubernetes.io/name": "assure-doctor"}},
        "spec": {"groups": alerts["groups"]},
    }


def render() -> str:
    alerts = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    body = str(yaml.safe_dump(rule(alerts), sort_keys=False, allow_unicode=True, width=100))
    return HEADER + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the PrometheusRule differs from alerts.yml's rules")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            sys.stderr.write(f"{OUTPUT.relative_to(ROOT)} is out of date: run "
                             "python deploy/gen_prometheusrule.py\n")
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
