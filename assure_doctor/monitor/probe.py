"""`/probe?target=NAME_OR_URL`: blackbox_exporter's multi-target pattern.

The network stages (dns, tcp, tls, clock) run now for one target and come back as its
series, so Prometheus' service discovery and relabelling can drive any number of targets.
No key is ever sent: a probe is keyless whatever the target's configuration says. A URL that
is not configured is checked with the monitor's base options (resolvers, trust anchors,
timeout, proxy), and only when the allow-list permits it (`allow`); anything else is refused
before any lookup or connection. Probes are bounded: a few at once, a short queue, and a
deadline each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from assure_doctor import urls
from assure_doctor.engine import run_check
from assure_doctor.errors import InputError
from assure_doctor.monitor import allow
from assure_doctor.monitor.collector import CACHED_NOTE, AssureCollector, Health, with_site
from assure_doctor.monitor.config import WatchedTarget
from assure_doctor.monitor.figures import Figures
from assure_doctor.monitor.watch import Snapshot
from assure_doctor.options import CheckOptions
from assure_doctor.probes.registry import NETWORK_STAGES
from assure_doctor.target import STACK_DOMAIN, Target, from_url

MAX_RUNNING = 4
MAX_WAITING = 16
MAX_PARAMETER = 2048
STAGE_BUDGET = 4  # a probe's deadline: this many timeouts (dns, tcp, tls, clock), plus slack


class Busy(Exception):
    """Too many probes are already running or waiting."""


class NotAllowed(Exception):
    """The URL is not on the allow-list (`allow`): refused before any lookup or connection."""


class Prober:
    """Runs keyless network checks on demand, within bounds, for allowed targets only."""

    def __init__(self, targets: Callable[[], Sequence[WatchedTarget]], base: CheckOptions,
                 site: str | None = None, allowed: Sequence[allow.Allowed] = ()) -> None:
        self.targets = targets
        self.base = base
        self.site = site
        self.allowed = tuple(allowed)
        self._running = asyncio.Semaphore(MAX_RUNNING)
        self._waiting = 0

    def resolve(self, parameter: str) -> tuple[str, Target, CheckOptions]:
        """A configured target's name, or an allowed https URL; InputError for anything
        else, NotAllowed for a URL off the allow-list (the parameter is never echoed)."""
        if len(parameter) > MAX_PARAMETER:
            raise InputError("target: too long")
        watched = list(self.targets())
        for one in watched:
            if parameter == one.label:
                return one.label, one.target, one.options
        if not parameter.startswith("https://"):
            raise InputError("target: not a configured target's name, nor an https:// URL")
        if urls.has_userinfo(parameter):  # refused unread: a stranger's secret is not ours
            raise InputError("target: must not carry credentials (user:password@)")
        target = from_url(parameter, "target")  # TargetError (an InputError) when malformed
        for one in watched:
            if one.target == target:
                return one.label, one.target, one.options
        configured = [allow.Allowed(allow.canonical(one.target.host), one.target.port)
                      for one in watched]
        if not allow.permits([*self.allowed, *configured], target.host, target.port):
            raise NotAllowed("target: not allowed here (only the configured targets, hosts "
                             f"under {STACK_DOMAIN} and --probe.allow HOST[:PORT] ones)")
        return target.label, target, self.base

    async def probe(self, parameter: str) -> bytes:
        label, target, options = self.resolve(parameter)
        if self._waiting >= MAX_WAITING:
            raise Busy("too many probes waiting")
        self._waiting += 1
        try:
            await self._running.acquire()
        finally:
            self._waiting -= 1
        try:
            return await self._run(label, target, replace(options, no_ping=True))
        finally:
            self._running.release()

    async def _run(self, label: str, target: Target, options: CheckOptions) -> bytes:
        started = time.monotonic()
        deadline = options.timeout * STAGE_BUDGET + 5
        try:
            report = await asyncio.wait_for(run_check(target, options, None), deadline)
            stages = {s.name: s for s in report.stages if s.name in NETWORK_STAGES}
            figures = Figures().updated(report, NETWORK_STAGES)
        except TimeoutError:
            stages, figures = {}, Figures()
        now = time.time()
        snapshot = Snapshot(label, stages=stages, ran_at=dict.fromkeys(stages, now),
                            figures=figures, pings=False)
        registry = CollectorRegistry(auto_describe=True)
        registry.register(_ProbeCollector(snapshot, time.monotonic() - started, self.site))
        return generate_latest(registry)


class _ProbeCollector(Collector):
    """The target's series as the monitor shows them, without the monitor's own health."""

    def __init__(self, snapshot: Snapshot, seconds: float, site: str | None = None) -> None:
        self.snapshot = snapshot
        self.seconds = seconds
        self.site = site

    def collect(self) -> list[Metric]:
        families = [family for family in AssureCollector(lambda: [self.snapshot],
                                                         Health(), self.site).collect()
                    if not family.name.startswith("assure_monitor_")]
        for family in families:  # measured now, not cached
            family.documentation = family.documentation.removesuffix(CACHED_NOTE)
        success = GaugeMetricFamily("assure_probe_success", "1 when every network stage of "
                                    "this probe passed (no key is sent by /probe)",
                                    labels=["target"])
        success.add_metric([self.snapshot.label], 1.0 if self.snapshot.up else 0.0)
        duration = GaugeMetricFamily("assure_probe_duration_seconds", "How long the probe "
                                     "took", labels=["target"])
        duration.add_metric([self.snapshot.label], self.seconds)
        return [*families, *with_site((success, duration), self.site)]
