"""One target's two cadences: the keyless network stages and the budgeted, authenticated ping.

Each run ends by publishing a new immutable `Snapshot`; the exporter only ever reads the
latest one, so a scrape never waits for a probe.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from assure_doctor import logs
from assure_doctor.engine import run_check
from assure_doctor.history.changes import Change
from assure_doctor.history.record import Record
from assure_doctor.history.store import History
from assure_doctor.kinds import Condition
from assure_doctor.model import Report, StageResult, Status
from assure_doctor.monitor.budget import PingBudget, utc_day
from assure_doctor.monitor.config import WatchedTarget
from assure_doctor.monitor.figures import Figures
from assure_doctor.monitor.ledger import Ledger, LedgerView
from assure_doctor.probes.registry import NETWORK_STAGES, OPTIONAL_STAGES
from assure_doctor.probes.registry import STAGE_NAMES as STAGES
from assure_doctor.probes.results import PingFound

MAX_BACKOFF = 64  # the ping interval grows at most to 64x after repeated 429s
ALERT_AFTER = 3  # the guide: alert operators after three failed attempts
log = logs.get("monitor")


@dataclass(frozen=True)
class Snapshot:
    """What the exporter shows for one target; replaced whole, never changed."""

    label: str
    stages: dict[str, StageResult] = field(default_factory=dict)
    ran_at: dict[str, float] = field(default_factory=dict)
    figures: Figures = field(default_factory=Figures)
    ping_codes: dict[str, int] = field(default_factory=dict)
    # The path history: when the target was last good, the changes logged since this
    # monitor started (by what), and the differences the latest check found.
    last_good_unix: float | None = None
    path_changes: dict[str, int] = field(default_factory=dict)
    changes: tuple[Change, ...] = ()
    budget_spent: int = 0
    budget_daily: int = 0
    pings: bool = True
    key_id: str = ""  # the key's fingerprint: what the ledger sums by
    budget_day: str = ""  # the UTC day budget_spent belongs to
    ledger: LedgerView | None = None

    @property
    def up(self) -> bool | None:
        wanted = STAGES if self.pings else NETWORK_STAGES
        if not all(name in self.stages for name in wanted):
            return None
        return all(self.stages[name].status in (Status.PASS, Status.WARN)
                   # a direct target skips the proxy stage: nothing is wrong with that
                   or (name in OPTIONAL_STAGES and self.stages[name].status is Status.SKIP)
                   for name in wanted)

    @property
    def diagnosis(self) -> StageResult | None:
        return next((self.stages[n] for n in STAGES
                     if n in self.stages and self.stages[n].failed), None)


class TargetWatch:
    """Runs the two jobs for one target and keeps its latest snapshot."""

    def __init__(self, watched: WatchedTarget, budget: PingBudget, ping_interval: float,
                 daily_budget: int, ledger: Ledger | None = None,
                 history: History | None = None) -> None:
        self.watched = watched
        self.history = history
        # Kept per ping URL, as `check` keeps it: both see the same path from this machine.
        self.record = history.load(watched.target.url) if history else Record()
        self._path_changes: Counter[str] = Counter()
        self.ledger = ledger
        self.budget = budget
        self.ping_interval = ping_interval
        self.daily_budget = daily_budget
        self.backoff = 1
        self.not_before = 0.0  # no ping before this time (Retry-After)
        self.failures_in_a_row = 0
        self.generation = 0  # bumped with every new snapshot, so the exporter re-renders
        self._spent_day = ""  # the UTC day whose spent budget was last reported
        self._codes: Counter[str] = Counter()
        key_id = watched.key.fingerprint if watched.key else ""
        self.key_id = key_id
        spent, day = self._spend()
        self.snapshot = Snapshot(watched.label, pings=watched.pings, budget_daily=daily_budget,
                                 budget_spent=spent, key_id=key_id, budget_day=day,
                                 last_good_unix=self.record.last_good_unix)

    @property
    def label(self) -> str:
        return self.watched.label

    # --- the jobs ------------------------------------------------------------------------
    async def network_cycle(self) -> None:
        """dns, tcp, tls, clock: no key, no quota."""
        options = replace(self.watched.options, no_ping=True)
        report = await run_check(self.watched.target, options, None, history=self._history())
        self._publish(report, NETWORK_STAGES)

    async def ping_cycle(self) -> None:
        """The full check with the key, when due and within the budget."""
        if not self.watched.pings:
            return
        now = time.time()
        if now < self.not_before:
            log.info("%s: no ping before %.0f s from now (Retry-After)", self.label,
                     self.not_before - now)
            return
        last = self.budget.last_ping(self.label)
        interval = self.ping_interval * self.backoff
        if last is not None and now - last < interval * 0.98:  # jitter-sized slack
            return
        attempts = self.watched.options.attempts
        daily, spent_what = self.daily_budget, f"ping budget ({self.daily_budget})"
        if self.ledger is not None:  # the other sites' spend, as the ledger sees it
            cap = await self.ledger.cap(self.key_id, utc_day(now), daily,
                                        self.budget.spent(self.key_id))
            self.snapshot = replace(self.snapshot, ledger=cap.view)
            if cap.customer:
                daily, spent_what = cap.daily, f"customer budget ({cap.view.budget}, all sites)"
        granted = self.budget.reserve(self.key_id, attempts, daily)
        self._refresh_budget()  # the reservation shows in /metrics at once: other sites' ledger
        if granted == 0:
            today = utc_day(now)
            if self._spent_day != today:  # once a day, not at every tick
                self._spent_day = today
                log.warning("%s: today's %s is spent; no ping until 00:00 UTC", self.label,
                            spent_what)
            return
        self.budget.record_ping(self.label, now)
        options = replace(self.watched.options, retries=granted - 1)
        report = await run_check(self.watched.target, options, self.watched.key,
                                 history=self._history())
        stage, found = report.stage("ping"), report.found(PingFound)
        sent = found.attempts if found else 0
        self.budget.refund(self.key_id, granted - sent)
        if stage is not None and found is not None and sent:
            self._count(found)
            self._adapt(stage, found)
        self._publish(report, STAGES)

    # --- bookkeeping ---------------------------------------------------------------------
    def _count(self, ping: PingFound) -> None:
        for attempt in ping.history:
            code = attempt.status_code
            self._codes["error" if code is None else str(code)] += 1

    def _adapt(self, stage: StageResult, ping: PingFound) -> None:
        """429: wait for Retry-After and back off until a success."""
        if stage.condition is Condition.HTTP_THROTTLED and stage.failed:
            retry_after = ping.retry_after or 0.0
            self.not_before = time.time() + retry_after
            self.backoff = min(self.backoff * 2, MAX_BACKOFF)
            log.warning("%s: throttled (429); next ping no sooner than Retry-After %.0f s, "
                        "interval now %.0f s", self.label, retry_after,
                        self.ping_interval * self.backoff)
        elif not stage.failed:
            self.backoff = 1

    def _spend(self) -> tuple[int, str]:
        """Today's spend of the key and the UTC day it belongs to, read together."""
        if not self.key_id:
            return 0, ""
        while True:
            day = utc_day(time.time())
            spent = self.budget.spent(self.key_id)
            if utc_day(time.time()) == day:  # not across midnight: the pair is consistent
                return spent, day

    def _refresh_budget(self) -> None:
        spent, day = self._spend()
        self.snapshot = replace(self.snapshot, budget_spent=spent, budget_day=day)
        self.generation += 1

    def _history(self) -> Record | None:
        return self.record if self.history is not None else None

    def _keep(self, report: Report) -> None:
        """Move the path history on (the network cadence's healthy checks too: what they
        did not learn, the ping's status, is kept from before)."""
        if self.history is None:
            return
        self.record, new = self.history.keep(self.watched.target.url, self.record, report,
                                             datetime.now(UTC))
        for change in new:
            self._path_changes[change.what.value] += 1
            log.warning("%s: the path changed since the last good check: %s", self.label,
                        change.text)

    def _publish(self, report: Report, names: tuple[str, ...]) -> None:
        self._keep(report)
        now = time.time()
        stages = dict(self.snapshot.stages)
        ran_at = dict(self.snapshot.ran_at)
        for stage in report.stages:
            if stage.name in names:
                stages[stage.name] = stage
                ran_at[stage.name] = now
        spent, day = self._spend()
        self.snapshot = replace(
            self.snapshot, stages=stages, ran_at=ran_at, ping_codes=dict(self._codes),
            figures=self.snapshot.figures.updated(report, names),
            last_good_unix=self.record.last_good_unix,
            path_changes=dict(self._path_changes), changes=report.changes or (),
            budget_spent=spent, budget_day=day)
        self.generation += 1
        diagnosis = self.snapshot.diagnosis
        if diagnosis is None:
            self.failures_in_a_row = 0
            return
        self.failures_in_a_row += 1
        cause = diagnosis.causes[0].id if diagnosis.causes else "unknown"
        if self.failures_in_a_row == ALERT_AFTER or self.failures_in_a_row % 60 == 0:
            log.error("ALERT: %s has failed %d checks in a row at the %s stage: %s (most "
                      "likely %s): %s", self.label, self.failures_in_a_row, diagnosis.name,
                      diagnosis.condition, cause, diagnosis.summary)
