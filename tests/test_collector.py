"""The collector renders exactly the latest snapshots: no stale label sets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from assure_doctor.model import Cause, StageResult, Status
from assure_doctor.monitor.collector import AssureCollector, Health
from assure_doctor.monitor.watch import Snapshot

STAGE_NAMES = ("dns", "tcp", "proxy", "tls", "clock", "ping")


def snapshot(failing: str | None) -> Snapshot:
    stages = {}
    for name in STAGE_NAMES:
        if name == failing:
            stages[name] = StageResult(name, Status.FAIL, 12.0, "failed", "connect_timeout",
                                       (Cause("firewall", "Firewall", "ask"),))
        else:
            stages[name] = StageResult(name, Status.PASS, 3.0, "ok")
    return Snapshot("uk2", stages=stages, ran_at=dict.fromkeys(STAGE_NAMES, 1.7e9),
                    ping_codes={"200": 4}, budget_spent=4, budget_daily=100)


def render(snap: Snapshot) -> str:
    registry = CollectorRegistry()
    registry.register(AssureCollector(lambda: [snap], Health()))
    return generate_latest(registry).decode()


def test_a_failure_shows_its_diagnosis_and_recovery_removes_it() -> None:
    failing = render(snapshot("tcp"))
    assert 'assure_up{target="uk2"} 0.0' in failing
    assert ('assure_diagnosis_info{cause="firewall",condition="connect_timeout",stage="tcp",'
            'target="uk2"} 1.0') in failing
    assert 'assure_stage_success{stage="tcp",target="uk2"} 0.0' in failing
    healthy = render(snapshot(None))
    assert 'assure_up{target="uk2"} 1.0' in healthy
    assert "assure_diagnosis_info{" not in healthy
    assert 'assure_ping_requests_total{code="200",target="uk2"} 4.0' in healthy
    assert 'assure_ping_budget_spent{target="uk2"} 4.0' in healthy


def test_up_is_unknown_until_every_stage_has_run() -> None:
    partial = Snapshot("uk2", stages={"dns": StageResult("dns", Status.PASS, 1.0, "ok")},
                       ran_at={"dns": 1.7e9})
    assert partial.up is None
    assert "assure_up{" not in render(partial)
