"""The Prometheus collector: every scrape is built from the targets' latest snapshots."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from assure_doctor import __version__
from assure_doctor.model import Status
from assure_doctor.monitor.watch import Snapshot


class Health:
    """The monitor's own health: job errors and missed runs, by job kind."""

    def __init__(self) -> None:
        self.job_errors: Counter[str] = Counter()
        self.missed_runs: Counter[str] = Counter()


class AssureCollector(Collector):
    """Yields the contract's metrics (and a few more) from immutable snapshots."""

    def __init__(self, snapshots: Callable[[], Iterable[Snapshot]], health: Health) -> None:
        self.snapshots = snapshots
        self.health = health

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | InfoMetricFamily]:
        snapshots = list(self.snapshots())
        up = GaugeMetricFamily("assure_up", "1 when the last full check passed",
                               labels=["target"])
        success = GaugeMetricFamily("assure_stage_success", "1 when the stage passed in the "
                                    "last check, 0 when it failed or was skipped",
                                    labels=["target", "stage"])
        duration = GaugeMetricFamily("assure_stage_duration_seconds", "How long each stage "
                                     "took in the last check", labels=["target", "stage"])
        ran = GaugeMetricFamily("assure_stage_last_run_timestamp_seconds", "When each stage "
                                "last ran, as a Unix time", labels=["target", "stage"])
        not_after = GaugeMetricFamily("assure_tls_cert_not_after_timestamp_seconds",
                                      "The certificate's expiry, as a Unix time",
                                      labels=["target"])
        skew = GaugeMetricFamily("assure_clock_skew_seconds", "Server time minus local time",
                                 labels=["target"])
        requests = CounterMetricFamily("assure_ping_requests", "Key-carrying requests this "
                                       "monitor has spent, by HTTP status",
                                       labels=["target", "code"])
        last_code = GaugeMetricFamily("assure_ping_status_code", "HTTP status of the last "
                                      "ping (0: no response)", labels=["target"])
        diagnosis = GaugeMetricFamily("assure_diagnosis_info", "1 for the current failure's "
                                      "most likely cause; absent while healthy",
                                      labels=["target", "stage", "condition", "cause"])
        spent = GaugeMetricFamily("assure_ping_budget_spent", "Key-carrying requests spent "
                                  "today (UTC) against the daily ping budget",
                                  labels=["target"])
        budget = GaugeMetricFamily("assure_ping_budget_daily", "The daily ping budget",
                                   labels=["target"])
        for snap in snapshots:
            self._target(snap, up, success, duration, ran, not_after, skew, requests,
                         last_code, diagnosis, spent, budget)
        yield from (up, success, duration, ran, not_after, skew, requests, last_code,
                    diagnosis, spent, budget)
        yield from self._own_health()

    @staticmethod
    def _target(snap: Snapshot, up: GaugeMetricFamily, success: GaugeMetricFamily,
                duration: GaugeMetricFamily, ran: GaugeMetricFamily,
                not_after: GaugeMetricFamily, skew: GaugeMetricFamily,
                requests: CounterMetricFamily, last_code: GaugeMetricFamily,
                diagnosis: GaugeMetricFamily, spent: GaugeMetricFamily,
                budget: GaugeMetricFamily) -> None:
        label = snap.label
        if snap.up is not None:
            up.add_metric([label], 1.0 if snap.up else 0.0)
        for name, stage in snap.stages.items():
            ok = stage.status in (Status.PASS, Status.WARN)
            success.add_metric([label, name], 1.0 if ok else 0.0)
            duration.add_metric([label, name], stage.duration_ms / 1000)
            ran.add_metric([label, name], snap.ran_at[name])
        tls = snap.stages.get("tls")
        if tls is not None and tls.evidence.get("not_after"):
            expiry = datetime.fromisoformat(tls.evidence["not_after"]).timestamp()
            not_after.add_metric([label], expiry)
        clock = snap.stages.get("clock")
        if clock is not None and clock.evidence.get("skew_seconds") is not None:
            skew.add_metric([label], float(clock.evidence["skew_seconds"]))
        for code, count in sorted(snap.ping_codes.items()):
            requests.add_metric([label, code], float(count))
        ping = snap.stages.get("ping")
        if ping is not None and ping.evidence.get("attempts"):
            last_code.add_metric([label], float(ping.evidence.get("status_code") or 0))
        found = snap.diagnosis
        if found is not None and found.condition and found.causes:
            diagnosis.add_metric([label, found.name, found.condition, found.causes[0].id], 1.0)
        if snap.pings:
            spent.add_metric([label], float(snap.budget_spent))
            budget.add_metric([label], float(snap.budget_daily))

    def _own_health(self) -> Iterator[CounterMetricFamily | InfoMetricFamily]:
        errors = CounterMetricFamily("assure_monitor_job_errors", "Monitor jobs that raised",
                                     labels=["job"])
        missed = CounterMetricFamily("assure_monitor_missed_runs", "Scheduled runs that were "
                                     "missed or skipped because the previous one was running",
                                     labels=["job"])
        for job in ("network", "ping"):
            errors.add_metric([job], float(self.health.job_errors[job]))
            missed.add_metric([job], float(self.health.missed_runs[job]))
        yield errors
        yield missed
        yield InfoMetricFamily("assure_monitor_build", "The monitor's version",
                               value={"version": __version__})
