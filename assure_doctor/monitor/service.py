"""Wire it together: apscheduler jobs per target, the exporter, and a clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry

from assure_doctor import logs
from assure_doctor.monitor.budget import PingBudget
from assure_doctor.monitor.collector import AssureCollector, Health, job_id
from assure_doctor.monitor.config import MonitorConfig
from assure_doctor.monitor.ledger import fleet_ledger
from assure_doctor.monitor.server import Exporter, Exposition
from assure_doctor.monitor.watch import TargetWatch

PING_TICK = 30.0  # how often a ping job asks "is a ping due?" (the cadence is its own)
SHUTDOWN_GRACE = 3.0
log = logs.get("monitor")


class Monitor:
    """The scheduler, the targets' watches and the exporter of one monitor process."""

    def __init__(self, config: MonitorConfig, listen: str | None) -> None:
        self.config = config
        self.budget = PingBudget(config.state_dir)
        spender, ledger = fleet_ledger(config)
        self.watches = [TargetWatch(t, self.budget, config.ping_interval, config.ping_budget,
                                    ledger) for t in config.targets]
        self.health = Health()
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(AssureCollector(lambda: [w.snapshot for w in self.watches],
                                               self.health, config.site, spender))
        exposition = Exposition(self.registry, self._version)
        self.exporter = Exporter(exposition, listen) if listen else None
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.stopping = asyncio.Event()

    def _version(self) -> tuple[object, ...]:
        """Changes whenever what /metrics shows would change."""
        return (tuple(w.generation for w in self.watches),
                tuple(sorted(self.health.job_errors.items())),
                tuple(sorted(self.health.missed_runs.items())))

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stopping.set)
        if self.exporter is not None:
            self.exporter.start()
            log.info("Serving metrics on port %d", self.exporter.port)
        for watch in self.watches:
            if watch.watched.key is None and not watch.watched.options.no_ping:
                log.warning("%s: no API key, so no ping: only the network stages are watched "
                            "(give key_env / key_file, or no_ping = true to silence this)",
                            watch.label)
        self._schedule()
        self.scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        self.scheduler.start()
        log.info("Monitoring %d target(s): network every %g s, ping every %g s within %d a "
                 "day per key", len(self.watches), self.config.interval,
                 self.config.ping_interval, self.config.ping_budget)
        await self.stopping.wait()
        await self.shutdown()
        return 0

    def _schedule(self) -> None:
        now = datetime.now().astimezone()
        tick = min(PING_TICK, self.config.ping_interval)
        for watch in self.watches:
            # Spread the first runs so that many targets do not all start at once.
            start = now + timedelta(seconds=random.uniform(0, min(self.config.jitter, 1.0)))
            self._add(watch.network_cycle, job_id(watch.label, "network"),
                      IntervalTrigger(seconds=self.config.interval, jitter=self.config.jitter
                                      or None), start)
            if watch.watched.pings:
                self._add(watch.ping_cycle, job_id(watch.label, "ping"),
                          IntervalTrigger(seconds=tick), start)

    def _add(self, job: Callable[[], Awaitable[None]], name: str, trigger: IntervalTrigger,
             start: datetime) -> None:
        async def guarded() -> None:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:  # counted and logged: one bad run must not stop the monitor
                self.health.job_errors[name] += 1
                log.exception("Job %s failed", name)

        self.scheduler.add_job(guarded, trigger, id=name, name=name, max_instances=1,
                               coalesce=True, misfire_grace_time=None, next_run_time=start)

    def _on_missed(self, event: JobEvent) -> None:
        self.health.missed_runs[event.job_id] += 1
        log.info("Run of %s skipped: the previous one is still running", event.job_id)

    async def shutdown(self) -> None:
        log.info("Stopping: letting running checks end (at most %g s)", SHUTDOWN_GRACE)
        self.scheduler.shutdown(wait=False)
        if self.exporter is not None:
            await asyncio.to_thread(self.exporter.stop)
        current = asyncio.current_task()
        running = [task for task in asyncio.all_tasks() if task is not current]
        if running:
            _, pending = await asyncio.wait(running, timeout=SHUTDOWN_GRACE)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)
        log.info("Stopped; the ping budget is saved in %s", self.budget.path)


def run(config: MonitorConfig, listen: str | None) -> int:
    return asyncio.run(_main(config, listen))


async def _main(config: MonitorConfig, listen: str | None) -> int:
    return await Monitor(config, listen).run()
