"""The Prometheus collector: every scrape is built from the targets' latest snapshots."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from assure_doctor import __version__
from assure_doctor.model import Status
from assure_doctor.monitor.ledger import SERIES
from assure_doctor.monitor.watch import Snapshot
from assure_doctor.probes.registry import OPTIONAL_STAGES

_GAUGE, _COUNTER = GaugeMetricFamily, CounterMetricFamily
# Scrapes are answered from the last cycle's results: running a check per scrape would spend
# the customer's daily request quota (10,000 a day) at Prometheus' pace.
CACHED_NOTE = ("; cached between cycles (network stages every --interval, the keyed ping every "
           "--ping-interval), not measured at scrape time, to spare the API's daily quota")
# name, kind, help, labels: the contract's series first, then ours.
_TARGET_FAMILIES = (
    ("assure_up", _GAUGE, "1 when the last full check passed" + CACHED_NOTE, ("target",)),
    ("assure_stage_success", _GAUGE, "1 when the stage passed in the last check, 0 when it "
     "failed or was skipped" + CACHED_NOTE, ("target", "stage")),
    ("assure_stage_duration_seconds", _GAUGE, "How long each stage took in the last check"
     + CACHED_NOTE, ("target", "stage")),
    ("assure_tls_cert_not_after_timestamp_seconds", _GAUGE, "The certificate's expiry, as a "
     "Unix time" + CACHED_NOTE, ("target",)),
    ("assure_clock_skew_seconds", _GAUGE, "Server time minus local time" + CACHED_NOTE,
     ("target",)),
    ("assure_ping_requests", _COUNTER, "Key-carrying requests this monitor has spent, by HTTP "
     "status", ("target", "code")),
    ("assure_diagnosis_info", _GAUGE, "1 for the current failure's most likely cause; absent "
     "while healthy" + CACHED_NOTE, ("target", "stage", "condition", "cause")),
    ("assure_stage_last_run_timestamp_seconds", _GAUGE, "When each stage last ran, as a Unix "
     "time (after a restart: the persisted last result's own time)", ("target", "stage")),
    ("assure_ping_status_code", _GAUGE, "HTTP status of the last ping (0: no response)"
     + CACHED_NOTE, ("target",)),
    ("assure_ping_budget_spent", _GAUGE, "Key-carrying requests spent today (UTC) against the "
     "daily ping budget", ("target",)),
    ("assure_ping_budget_daily", _GAUGE, "The daily ping budget", ("target",)),
    # The ledger's input (summed by --ledger across sites) and its last decision.
    (SERIES, _GAUGE, "Key-carrying requests spent on `day` (UTC) with the key whose "
     "fingerprint is `key_id`, by every monitor sharing this state directory (`spender`)",
     ("target", "key_id", "day", "spender")),
    ("assure_ledger_up", _GAUGE, "1 when the last ask of the --ledger Prometheus answered; 0: "
     "only this monitor's own --ping-budget limits its pings", ("target",)),
    ("assure_ledger_spent", _GAUGE, "Key-carrying requests spent today by every site with "
     "this key: the ledger's count of the others plus this monitor's own (its own alone "
     "while the ledger is down)", ("target",)),
    ("assure_ledger_budget", _GAUGE, "The --customer-budget every site shares", ("target",)),
    # The path history (issue 17): when it last worked, and what changed since.
    ("assure_last_good_timestamp_seconds", _GAUGE, "When the last good check of this target "
     "ran, as a Unix time (kept across restarts)", ("target",)),
    ("assure_path_changes", _COUNTER, "Changes of the path to the API (addresses, proxy, "
     "certificate, ...) logged since this monitor started, by what changed", ("target",
                                                                              "what")),
    ("assure_path_change_info", _GAUGE, "1 for each difference between the latest check and "
     "the last good one: what changed, its value then and now; absent when nothing changed"
     + CACHED_NOTE, ("target", "what", "was", "now")),
)
Families = dict[str, GaugeMetricFamily | CounterMetricFamily]


JOB_KINDS = ("network", "ping")


def job_id(label: str, kind: str) -> str:
    return f"{label}:{kind}"


class Health:
    """The monitor's own health: job errors and missed runs, by job id (target:kind)."""

    def __init__(self) -> None:
        self.job_errors: Counter[str] = Counter()
        self.missed_runs: Counter[str] = Counter()


class AssureCollector(Collector):
    """Yields the contract's metrics (and a few more) from immutable snapshots; with a
    `site`, every sample carries it as a label."""

    def __init__(self, snapshots: Callable[[], Iterable[Snapshot]], health: Health,
                 site: str | None = None, spender: str = "") -> None:
        self.snapshots = snapshots
        self.health = health
        self.site = site
        self.spender = spender

    def collect(self) -> Iterator[Metric]:
        return with_site(self._collect(), self.site)

    def _collect(self) -> Iterator[Metric]:
        snapshots = list(self.snapshots())
        families: Families = {name: kind(name, text, labels=list(labels))
                              for name, kind, text, labels in _TARGET_FAMILIES}
        for snapshot in snapshots:
            _add_target(snapshot, families)
            _add_ledger(snapshot, self.spender, families)
        yield from families.values()
        yield from self._own_health([snapshot.label for snapshot in snapshots])

    def _own_health(self, labels: list[str]) -> Iterator[Metric]:
        """Per target too: every series carries a `target` label. (`cadence`, not `job`:
        Prometheus reserves `job` for the scrape job.)"""
        errors = CounterMetricFamily("assure_monitor_job_errors", "Monitor jobs that raised",
                                     labels=["target", "cadence"])
        missed = CounterMetricFamily("assure_monitor_missed_runs", "Scheduled runs that were "
                                     "missed or skipped because the previous one was running",
                                     labels=["target", "cadence"])
        build = InfoMetricFamily("assure_monitor_build", "The monitor's version",
                                 labels=["target"])
        for label in labels:
            for kind in JOB_KINDS:
                errors.add_metric([label, kind], float(self.health.job_errors[job_id(label,
                                                                                      kind)]))
                missed.add_metric([label, kind],
                                  float(self.health.missed_runs[job_id(label, kind)]))
            build.add_metric([label], {"version": __version__})
        yield errors
        yield missed
        yield build


def with_site(metrics: Iterable[Metric], site: str | None) -> Iterator[Metric]:
    """Every sample of `metrics` with a `site` label (--site); unchanged without one. Any
    collector of the monitor's (and /probe) passes its metrics through this."""
    for metric in metrics:
        if site is not None:
            metric.samples = [sample._replace(labels={**sample.labels, "site": site})
                              for sample in metric.samples]
        yield metric


def _add_target(snap: Snapshot, families: Families) -> None:
    """One target's samples, from its snapshot alone: nothing outlives a change of state."""
    label = snap.label
    if snap.up is not None:
        families["assure_up"].add_metric([label], 1.0 if snap.up else 0.0)
    for name, stage in snap.stages.items():
        if name in OPTIONAL_STAGES and stage.status is Status.SKIP:
            continue  # direct: no proxy applies, so there is no proxy stage to report on
        ok = stage.status in (Status.PASS, Status.WARN)
        families["assure_stage_success"].add_metric([label, name], 1.0 if ok else 0.0)
        families["assure_stage_duration_seconds"].add_metric([label, name],
                                                             stage.duration_ms / 1000)
        families["assure_stage_last_run_timestamp_seconds"].add_metric([label, name],
                                                                       snap.ran_at[name])
    figures = snap.figures
    if figures.cert_not_after is not None:
        families["assure_tls_cert_not_after_timestamp_seconds"].add_metric(
            [label], figures.cert_not_after)
    if figures.clock_skew is not None:
        families["assure_clock_skew_seconds"].add_metric([label], figures.clock_skew)
    for code, count in sorted(snap.ping_codes.items()):
        families["assure_ping_requests"].add_metric([label, code], float(count))
    if figures.ping_status is not None:
        families["assure_ping_status_code"].add_metric([label], float(figures.ping_status))
    if snap.last_good_unix is not None:
        families["assure_last_good_timestamp_seconds"].add_metric([label], snap.last_good_unix)
    for what, count in sorted(snap.path_changes.items()):
        families["assure_path_changes"].add_metric([label, what], float(count))
    for change in snap.changes:
        families["assure_path_change_info"].add_metric(
            [label, change.what.value, change.was, change.now], 1.0)
    found = snap.diagnosis
    if found is not None and found.condition and found.causes:
        families["assure_diagnosis_info"].add_metric(
            [label, found.name, found.condition, found.causes[0].id], 1.0)
    if snap.pings:
        families["assure_ping_budget_spent"].add_metric([label], float(snap.budget_spent))
        families["assure_ping_budget_daily"].add_metric([label], float(snap.budget_daily))


def _add_ledger(snap: Snapshot, spender: str, families: Families) -> None:
    """What this monitor adds to the ledger, and what the ledger last told it."""
    if snap.pings and snap.key_id and snap.budget_day and spender:
        families[SERIES].add_metric([snap.label, snap.key_id, snap.budget_day, spender],
                                    float(snap.budget_spent))
    if snap.ledger is not None:
        families["assure_ledger_up"].add_metric([snap.label], 1.0 if snap.ledger.up else 0.0)
        families["assure_ledger_spent"].add_metric([snap.label], float(snap.ledger.spent))
        families["assure_ledger_budget"].add_metric([snap.label], float(snap.ledger.budget))
