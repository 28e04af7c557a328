"""Wire it together: apscheduler jobs per target, the exporter, reloads and a clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from assure_doctor import logs, sanitize
from assure_doctor.errors import InputError
from assure_doctor.history.store import History
from assure_doctor.monitor import signals
from assure_doctor.monitor.budget import PingBudget
from assure_doctor.monitor.collector import AssureCollector, Health, job_id, with_site
from assure_doctor.monitor.config import MonitorConfig, WatchedTarget
from assure_doctor.monitor.laststate import LastState
from assure_doctor.monitor.ledger import fleet_ledger
from assure_doctor.monitor.probe import Prober
from assure_doctor.monitor.server import Exporter, Exposition
from assure_doctor.monitor.watch import TargetWatch
from assure_doctor.monitor.web import connection_cap, raise_fd_limit
from assure_doctor.monitor.webconfig import WebConfigFile
from assure_doctor.options import CheckOptions

PING_TICK = 30.0  # how often a ping job asks "is a ping due?" (the cadence is its own)
SHUTDOWN_GRACE = 3.0
PROG = "assure-doctor monitor"
log = logs.get("monitor")


@dataclass(frozen=True)
class WebSettings:
    """Where and how to serve: the flags of the exporter conventions."""

    listen: str | None
    config_file: Path | None = None


class ReloadState(Collector):
    """`assure_monitor_config_last_reload_successful` and its timestamp, per target."""

    def __init__(self, labels: Callable[[], list[str]], site: str | None = None) -> None:
        self.labels = labels
        self.site = site
        self.successful = True
        self.at = time.time()

    def collect(self) -> Iterator[Metric]:
        ok = GaugeMetricFamily("assure_monitor_config_last_reload_successful", "1 when the "
                               "last reload of --config succeeded (0: the previous config "
                               "still runs; the log says why)", labels=["target"])
        at = GaugeMetricFamily("assure_monitor_config_last_reload_success_timestamp_seconds",
                               "When --config was last loaded successfully", labels=["target"])
        for label in self.labels():
            ok.add_metric([label], 1.0 if self.successful else 0.0)
            at.add_metric([label], self.at)
        yield from with_site((ok, at), self.site)


class Monitor:
    """The scheduler, the targets' watches and the exporter of one monitor process."""

    def __init__(self, config: MonitorConfig, web: WebSettings, base: CheckOptions,
                 reload_config: Callable[[], MonitorConfig] | None = None) -> None:
        self.config = config
        self.base = base
        self.reload_config = reload_config
        self.budget = PingBudget(config.state_dir)
        self.last = LastState(config.state_dir)
        self.history = History(config.state_dir)
        self.spender, self.ledger = fleet_ledger(config)
        self.watches = [self._watch(t) for t in config.targets]
        self.cycled: set[str] = set()  # targets whose network cycle has run since start
        self.health = Health()
        self.reloads = ReloadState(lambda: [w.label for w in self.watches], config.site)
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(AssureCollector(lambda: [w.snapshot for w in self.watches],
                                               self.health, config.site, self.spender))
        self.registry.register(self.reloads)
        self.prober = Prober(lambda: [w.watched for w in self.watches], base, config.site,
                             config.probe_allow)
        self.fd_limit = raise_fd_limit()
        exposition = Exposition(self.registry, self._version)
        self.exporter = None
        if web.listen:
            self.exporter = Exporter(exposition, web.listen, self, WebConfigFile(
                web.config_file), connection_cap(self.fd_limit))
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.stopping = asyncio.Event()
        self.loop = asyncio.get_running_loop()  # built inside asyncio.run, on its loop

    def _watch(self, watched: WatchedTarget) -> TargetWatch:
        """A watch that shows its persisted last result at once, with when it really ran."""
        watch = TargetWatch(watched, self.budget, self.config.ping_interval,
                            self.config.ping_budget, self.ledger, self.history)
        restored = self.last.load(watch.label)
        if restored is not None:
            stages, ran_at, figures = restored
            if not watch.watched.pings:
                stages.pop("ping", None)
                figures = replace(figures, ping_status=None)
            watch.snapshot = replace(watch.snapshot, stages=stages, ran_at=ran_at,
                                     figures=figures)
            watch.generation += 1
        return watch

    def _version(self) -> tuple[object, ...]:
        """Changes whenever what /metrics shows would change."""
        return (tuple((w.label, w.generation) for w in self.watches),
                tuple(sorted(self.health.job_errors.items())),
                tuple(sorted(self.health.missed_runs.items())),
                self.reloads.successful, self.reloads.at)

    # --- the web side's backend -----------------------------------------------------------
    def waiting_for(self) -> tuple[str, ...]:
        return tuple(w.label for w in self.watches if w.label not in self.cycled)

    async def probe(self, target: str) -> bytes:
        return await self.prober.probe(target)

    async def reload(self) -> str:
        """Re-read --config; on any problem keep the running config and say why."""
        if self.reload_config is None:
            raise InputError("no --config to reload: the targets came from the command line")
        try:
            config = self.reload_config()
        except InputError as exc:
            self.reloads.successful = False
            log.error("Reload failed, the running config is kept: %s", exc)
            raise
        if config.state_dir != self.config.state_dir:
            log.warning("Reload: state_dir changes only at a restart; still using %s",
                        self.config.state_dir)
            config = replace(config, state_dir=self.config.state_dir)
        old = {w.label: w for w in self.watches}
        self.config = config
        self.watches = [self._keep_or_new(old.get(t.label), t) for t in config.targets]
        for job in self.scheduler.get_jobs():
            job.remove()
        self._schedule()
        self.reloads.successful, self.reloads.at = True, time.time()
        summary = f"Reloaded: {len(self.watches)} target(s)"
        log.warning("%s", summary)
        return summary

    def _keep_or_new(self, old: TargetWatch | None, watched: WatchedTarget) -> TargetWatch:
        """An unchanged target keeps its watch; a changed one keeps what the API told us
        (Retry-After, the 429 backoff) and its latest results, when the URL is the same."""
        if old is None:
            return self._watch(watched)
        if (old.watched == watched and old.ping_interval == self.config.ping_interval
                and old.daily_budget == self.config.ping_budget):
            return old
        watch = self._watch(watched)
        if old.watched.target == watched.target:
            watch.not_before, watch.backoff = old.not_before, old.backoff
            stages = {name: stage for name, stage in old.snapshot.stages.items()
                      if watched.pings or name != "ping"}
            watch.snapshot = replace(watch.snapshot, stages=stages,
                                     ran_at=dict(old.snapshot.ran_at))
            watch.generation += 1
        return watch

    def _reload_signal(self) -> None:
        async def reload() -> None:
            with contextlib.suppress(InputError):  # reload() said why, and set the metric
                await self.reload()

        self.loop.create_task(reload())

    # --- running --------------------------------------------------------------------------
    async def run(self) -> int:
        self.loop = asyncio.get_running_loop()
        undo = signals.install(self.loop, self.stopping.set, self._reload_signal)
        if self.exporter is not None:
            self.exporter.start()
        self._announce()
        self._schedule()
        self.scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        self.scheduler.start()
        try:
            await self.stopping.wait()
            await self.shutdown()
        finally:
            undo()
        return 0

    def _announce(self) -> None:
        """One line per fact a person needs, on stderr once (and in the log file)."""
        if self.exporter is not None:
            _say(f"listening on {self.exporter.url} (also /-/healthy, /-/ready, /probe)")
        else:
            _say("not serving metrics (no listen address)")
        for watch in self.watches:
            watched = watch.watched
            if watched.pings:
                ping = f"ping every {self.config.ping_interval:g} s"
            elif watched.key is None and not watched.options.no_ping:
                ping = ("no ping: no API key (set ASSURE_API_KEY or --api-key-file; in --config, "
                        "key_env or key_file, or no_ping = true to silence this)")
            else:
                ping = "no ping (no_ping)"
            _say(f"target {sanitize.text(watch.label, 80)} "
                 f"({sanitize.text(watched.target.url, 200)}): network stages every "
                 f"{self.config.interval:g} s (jitter {self.config.jitter:g} s), {ping}")
        _say(f"ping budget: {self.config.ping_budget} key-carrying requests a day per key "
             "(UTC days)")
        _say(f"state dir: {self.config.state_dir}")

    def _schedule(self) -> None:
        now = datetime.now().astimezone()
        tick = min(PING_TICK, self.config.ping_interval)
        for watch in self.watches:
            # Spread the first runs so that many targets do not all start at once.
            start = now + timedelta(seconds=random.uniform(0, min(self.config.jitter, 1.0)))
            self._add(watch, "network", watch.network_cycle,
                      IntervalTrigger(seconds=self.config.interval, jitter=self.config.jitter
                                      or None), start)
            if watch.watched.pings:
                self._add(watch, "ping", watch.ping_cycle, IntervalTrigger(seconds=tick), start)

    def _add(self, watch: TargetWatch, kind: str, job: Callable[[], Awaitable[None]],
             trigger: IntervalTrigger, start: datetime) -> None:
        name = job_id(watch.label, kind)

        async def guarded() -> None:
            generation = watch.generation
            try:
                await job()
            except asyncio.CancelledError:
                # Only at shutdown, after the grace: end quietly (apscheduler would print
                # the cancellation as an error with a traceback).
                log.info("Job %s cancelled: the monitor is stopping", name)
                return
            except Exception:  # counted and logged: one bad run must not stop the monitor
                self.health.job_errors[name] += 1
                log.exception("Job %s failed", name)
            if kind == "network":
                self.cycled.add(watch.label)
            if watch.generation != generation:
                self._persist(watch)

        self.scheduler.add_job(guarded, trigger, id=name, name=name, max_instances=1,
                               coalesce=True, misfire_grace_time=None, next_run_time=start)

    def _persist(self, watch: TargetWatch) -> None:
        try:
            snapshot = watch.snapshot
            self.last.save(watch.label, snapshot.stages, snapshot.ran_at, snapshot.figures)
        except OSError as exc:
            log.warning("%s: cannot keep the last result in %s (%s)", watch.label,
                        self.last.directory, exc.strerror)

    def _on_missed(self, event: JobEvent) -> None:
        self.health.missed_runs[event.job_id] += 1
        log.info("Run of %s skipped: the previous one is still running", event.job_id)

    async def shutdown(self) -> None:
        log.info("Stopping: letting running checks end (at most %g s)", SHUTDOWN_GRACE)
        # Pause first: apscheduler's shutdown cancels running jobs at once, with no grace.
        self.scheduler.pause()
        current = asyncio.current_task()
        running = [task for task in asyncio.all_tasks() if task is not current]
        if running:
            _, pending = await asyncio.wait(running, timeout=SHUTDOWN_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self.scheduler.shutdown(wait=False)
        if self.exporter is not None:
            await asyncio.to_thread(self.exporter.stop)
        log.info("Stopped; the ping budget is saved in %s", self.budget.path)


def _say(message: str) -> None:
    """A start-up fact: on stderr exactly once, and in the log file."""
    log.info("%s", message)
    root = logging.getLogger(logs.LOGGER_NAME)
    shown = any(type(h) is logging.StreamHandler and h.level <= logging.INFO
                for h in root.handlers)
    if not shown:
        sys.stderr.write(f"{PROG}: {message}\n")
        sys.stderr.flush()


def adopt_library_logs() -> None:
    """apscheduler's and asyncio's records go through our handlers (and so the redaction
    filter); their routine chatter stays out, our own jobs' errors are logged by us."""
    root = logging.getLogger(logs.LOGGER_NAME)
    for name in ("apscheduler", "asyncio"):
        library = logging.getLogger(name)
        library.handlers = list(root.handlers)
        library.propagate = False
        library.setLevel(logging.ERROR)


def run(config: MonitorConfig, web: WebSettings, base: CheckOptions,
        reload_config: Callable[[], MonitorConfig] | None = None) -> int:
    adopt_library_logs()
    return asyncio.run(_main(config, web, base, reload_config))


async def _main(config: MonitorConfig, web: WebSettings, base: CheckOptions,
                reload_config: Callable[[], MonitorConfig] | None) -> int:
    return await Monitor(config, web, base, reload_config).run()
