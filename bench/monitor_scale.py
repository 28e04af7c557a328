"""Figures for the monitor with many targets against the sandbox (prints; not a test).

- one cycle's wall time for N targets beside the slowest single target's
- RSS after 50 cycles and after 500 cycles
- /metrics latency (p50, p99) while the cycles run
- CPU seconds per check (this process's user+sys over the checks run) beside
  blackbox_exporter's CPU per probe of the same target, and what 500 targets checked every
  60 s would cost as a share of one core

Loopback only: the sandbox runs in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from assure_doctor import apikey, logs
from assure_doctor.errors import InputError
from assure_doctor.monitor.budget import PingBudget
from assure_doctor.monitor.collector import AssureCollector, Health
from assure_doctor.monitor.config import watched_target
from assure_doctor.monitor.server import Exporter, Exposition
from assure_doctor.monitor.watch import TargetWatch
from assure_doctor.target import from_url
from bench import blackbox
from bench.served import Served, served

FLEET, INTERVAL = 500, 60.0  # the fleet the CPU figure is projected to


class MetricsOnly:
    """The exporter's backend for this benchmark: it measures /metrics only, so there is no
    monitor to reload or probe and no target is ever waited for."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()  # never runs: nothing is sent to it

    def waiting_for(self) -> tuple[str, ...]:
        return ()

    async def reload(self) -> str:
        raise InputError("no monitor in this benchmark")

    async def probe(self, target: str) -> bytes:
        raise InputError("no monitor in this benchmark")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# Prometheus scrapes from another process; so does this scraper, so that its own GIL waits
# do not count against the exporter.
SCRAPER = """
import sys, time, urllib.request
url, latencies = sys.argv[1], []
try:
    while True:
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=5) as response:
            response.read()
        latencies.append(time.perf_counter() - start)
        time.sleep(0.05)
except KeyboardInterrupt:
    print(" ".join(f"{value:.6f}" for value in latencies))
"""


class Scraper:
    """GET /metrics in a loop from another process, recording each answer's latency."""

    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", SCRAPER, url],
                                        stdout=subprocess.PIPE, text=True)

    def finish(self) -> list[float]:
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=10)
        return [float(value) for value in out.split()]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(watches: list[TargetWatch], cycles: int) -> float:
    """Print the cycle figures; return CPU seconds per check."""
    singles = []
    for watch in watches:
        start = time.perf_counter()
        await watch.network_cycle()
        singles.append(time.perf_counter() - start)
    slowest = max(singles)
    walls, rss = [], {}
    cpu_start = time.process_time()
    for number in range(1, cycles + 1):
        start = time.perf_counter()
        await asyncio.gather(*(watch.network_cycle() for watch in watches))
        walls.append(time.perf_counter() - start)
        if number in (50, cycles):
            rss[number] = rss_mib()
    cpu_per_check = (time.process_time() - cpu_start) / (cycles * len(watches))
    assert all(w.snapshot.up for w in watches), "a target failed during the benchmark"
    cycle = statistics.median(walls)
    print(f"targets                      : {len(watches)}")
    print(f"slowest single target        : {slowest * 1000:8.1f} ms")
    print(f"one cycle of all (median)    : {cycle * 1000:8.1f} ms  "
          f"= {cycle / slowest:.1f}x the slowest single (aim: <= 2x)")
    if 50 in rss:
        print(f"RSS after 50 / {cycles} cycles    : {rss[50]:.1f} / {rss[cycles]:.1f} MiB "
              f"({(rss[cycles] / rss[50] - 1) * 100:+.1f}%, aim: within 10%)")
    return cpu_per_check


def blackbox_cpu(sandbox: Served, probes: int) -> float | str:
    """blackbox_exporter's CPU seconds per probe of the sandbox, or why it could not run."""
    why_not = blackbox.missing()
    if why_not is not None:
        return why_not
    key = apikey.from_file(sandbox.key_file).reveal()
    with blackbox.running(sandbox.port, sandbox.ca_bundle, key) as box:
        box.probe()  # warm
        before = box.cpu_seconds()
        for _ in range(probes):
            box.probe()
        return (box.cpu_seconds() - before) / probes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--probes", type=int, default=200, help="blackbox probes for its CPU")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval for this run (seconds)")
    args = parser.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    logs.configure(stderr_level=logging.CRITICAL)
    with served("healthy") as sandbox, tempfile.TemporaryDirectory() as state:
        budget = PingBudget(Path(state))
        target, options = from_url(sandbox.url), sandbox.options(timeout=10.0)
        watches = [TargetWatch(watched_target(target, options, None, f"t{n:03d}"), budget,
                               900.0, 100) for n in range(args.targets)]
        registry = CollectorRegistry()
        registry.register(AssureCollector(lambda: [w.snapshot for w in watches], Health()))
        exposition = Exposition(registry, lambda: tuple(w.generation for w in watches))
        backend = MetricsOnly()
        exporter = Exporter(exposition, "127.0.0.1:0", backend)
        exporter.start()
        scraper = Scraper(f"http://127.0.0.1:{exporter.port}/metrics")
        try:
            cpu = asyncio.run(measure(watches, args.cycles))
        finally:
            latencies = scraper.finish()
            exporter.stop()
            backend.loop.close()
        theirs = blackbox_cpu(sandbox, args.probes)
    print(f"/metrics while probing       : p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms over {len(latencies)} scrapes "
          "(aim: p99 < 20 ms)")
    print(f"CPU per check (dns..clock)   : {cpu * 1000:8.2f} ms")
    if isinstance(theirs, float):
        print(f"blackbox CPU per probe       : {theirs * 1000:8.2f} ms  "
              f"(ours = {cpu / theirs:.1f}x, aim: <= 2x)")
    else:
        print(f"blackbox CPU per probe       : skipped: {theirs}")
    share = cpu * FLEET / INTERVAL
    print(f"{FLEET} targets every {INTERVAL:.0f} s       : {share:8.1%} of one core")


if __name__ == "__main__":
    main()
