"""Figures for the monitor with many targets against the sandbox (prints; not a test).

- one cycle's wall time for N targets beside the slowest single target's
- RSS after 50 cycles and after 500 cycles
- /metrics latency (p50, p99) while the cycles run

Loopback only: the sandbox runs in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from assure_doctor import logs
from assure_doctor.monitor.budget import PingBudget
from assure_doctor.monitor.collector import AssureCollector, Health
from assure_doctor.monitor.config import watched_target
from assure_doctor.monitor.server import Exporter, Exposition
from assure_doctor.monitor.watch import TargetWatch
from assure_doctor.target import from_url
from bench.served import served


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


async def measure(watches: list[TargetWatch], cycles: int) -> None:
    singles = []
    for watch in watches:
        start = time.perf_counter()
        await watch.network_cycle()
        singles.append(time.perf_counter() - start)
    slowest = max(singles)
    walls, rss = [], {}
    for number in range(1, cycles + 1):
        start = time.perf_counter()
        await asyncio.gather(*(watch.network_cycle() for watch in watches))
        walls.append(time.perf_counter() - start)
        if number in (50, cycles):
            rss[number] = rss_mib()
    assert all(w.snapshot.up for w in watches), "a target failed during the benchmark"
    cycle = statistics.median(walls)
    print(f"targets                      : {len(watches)}")
    print(f"slowest single target        : {slowest * 1000:8.1f} ms")
    print(f"one cycle of all (median)    : {cycle * 1000:8.1f} ms  "
          f"= {cycle / slowest:.1f}x the slowest single (aim: <= 2x)")
    if 50 in rss:
        print(f"RSS after 50 / {cycles} cycles    : {rss[50]:.1f} / {rss[cycles]:.1f} MiB "
              f"({(rss[cycles] / rss[50] - 1) * 100:+.1f}%, aim: within 10%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval for this run (seconds)")
    args = parser.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    logs.configure(stderr_level=logs.logging.CRITICAL)
    with served("healthy") as sandbox, tempfile.TemporaryDirectory() as state:
        budget = PingBudget(Path(state))
        target, options = from_url(sandbox.url), sandbox.options(timeout=10.0)
        watches = [TargetWatch(watched_target(target, options, None, f"t{n:03d}"), budget,
                               900.0, 100) for n in range(args.targets)]
        registry = CollectorRegistry()
        registry.register(AssureCollector(lambda: [w.snapshot for w in watches], Health()))
        exposition = Exposition(registry, lambda: tuple(w.generation for w in watches))
        exporter = Exporter(exposition, "127.0.0.1:0")
        exporter.start()
        scraper = Scraper(f"http://127.0.0.1:{exporter.port}/metrics")
        try:
            asyncio.run(measure(watches, args.cycles))
        finally:
            latencies = scraper.finish()
            exporter.stop()
    print(f"/metrics while probing       : p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms over {len(latencies)} scrapes "
          "(aim: p99 < 20 ms)")


if __name__ == "__main__":
    main()
