"""Soak figures for the monitor (prints; not a test): 1,000 cycles against a flapping target.

The real monitor (apscheduler jobs, exporter, file-locked budget) runs in this process with
short intervals against a sandbox in its own process whose ping answers 503 to every other
keyed request, so `assure_up` and `assure_diagnosis_info` flap all along. Printed: RSS, open
file descriptors and threads at cycles 50 and 1,000, job errors, tracebacks in the log, and
the keyed pings the server received against the budget.

Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from assure_doctor import apikey, logs, trust
from assure_doctor.monitor.config import MonitorConfig, watched_target
from assure_doctor.monitor.service import Monitor
from assure_doctor.options import CheckOptions
from assure_doctor.target import from_url, parse_resolver

# The sandbox child: a flapping scenario; prints where it is, then the keyed count at the end.
SANDBOX = """
import json, sys
from assure_doctor.sandbox.scenarios import Reply, Scenario
from assure_doctor.sandbox.stack import Sandbox
flapping = Scenario("flapping", "503 to every other keyed request",
                    reply=Reply(503, '{"message": "Service Unavailable"}', every=2))
with Sandbox(flapping) as sandbox:
    print(json.dumps({"url": sandbox.url, "resolver": sandbox.resolver,
                      "ca_bundle": str(sandbox.ca_bundle), "key_file": str(sandbox.key_file)}),
          flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    print(json.dumps({"keyed": sandbox.traffic.keyed}), flush=True)
"""


def process_figures() -> dict[str, float]:
    status = dict(line.split(":", 1) for line in
                  Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {"rss_mib": int(status["VmRSS"].split()[0]) / 1024,
            "fds": len(os.listdir("/proc/self/fd")),
            "threads": int(status["Threads"]), "py_threads": threading.active_count()}


@dataclass
class Soak:
    cycles: int
    monitor: Monitor
    done: int = 0
    samples: dict[int, dict[str, float]] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def counting(self, cycle: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def counted() -> None:
            await cycle()
            self.done += 1
            if self.done in (50, self.cycles):
                self.samples[self.done] = process_figures()
                self.scrape()
            if self.done >= self.cycles:
                self.monitor.stopping.set()
        return counted

    def scrape(self) -> None:
        """One scrape, so the exporter's threads and sockets are counted (it serves from
        memory in its own threads: blocking here for a moment is fine)."""
        exporter = self.monitor.exporter
        if exporter is not None:
            url = f"http://127.0.0.1:{exporter.port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                response.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--ping-interval", type=float, default=0.5)
    parser.add_argument("--budget", type=int, default=150)
    parser.add_argument("--log-file", help="keep the monitor's log here (default: discarded)")
    args = parser.parse_args()

    child = subprocess.Popen([sys.executable, "-c", SANDBOX], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdin is not None
    where = json.loads(child.stdout.readline())
    with tempfile.TemporaryDirectory() as state:
        log_file = Path(args.log_file or Path(state) / "soak.log")
        logs.configure(logs.logging.CRITICAL, str(log_file))
        options = CheckOptions(timeout=5.0, retries=0, retry_pause=0.05,
                               resolvers=(parse_resolver(where["resolver"]),),
                               trust=trust.load(where["ca_bundle"]))
        key = apikey.from_file(where["key_file"])
        config = MonitorConfig(
            targets=(watched_target(from_url(where["url"]), options, key, "flapping"),),
            interval=args.interval, ping_interval=args.ping_interval,
            ping_budget=args.budget, jitter=0.0, state_dir=Path(state),
            allow_exhaustion=True)
        monitor = Monitor(config, "127.0.0.1:0")
        soak = Soak(args.cycles, monitor)
        watch = monitor.watches[0]
        watch.network_cycle = soak.counting(watch.network_cycle)  # type: ignore[method-assign]
        asyncio.run(monitor.run())
        seconds = time.monotonic() - soak.started
        spent = monitor.budget.spent(key.fingerprint)
        codes = dict(watch.snapshot.ping_codes)
        tracebacks = log_file.read_text().count("Traceback")
    child.stdin.close()
    keyed = json.loads(child.stdout.readline())["keyed"]
    child.wait(10)

    first, last = soak.samples[50], soak.samples[args.cycles]
    print(f"cycles                       : {soak.done} network cycles in {seconds:.0f} s "
          f"(interval {args.interval:g} s, ping every {args.ping_interval:g} s)")
    at = f"at 50 / {args.cycles}"
    print(f"{'RSS ' + at + ' cycles':<29}: {first['rss_mib']:.1f} / "
          f"{last['rss_mib']:.1f} MiB ({(last['rss_mib'] / first['rss_mib'] - 1) * 100:+.1f}%, "
          "aim: within 10%)")
    print(f"{'open FDs ' + at:<29}: {first['fds']:.0f} / {last['fds']:.0f}")
    print(f"{'threads ' + at:<29}: {first['threads']:.0f} / "
          f"{last['threads']:.0f} (Python threads {first['py_threads']:.0f} / "
          f"{last['py_threads']:.0f})")
    print(f"job errors                   : {sum(monitor.health.job_errors.values())} "
          f"(skipped runs {sum(monitor.health.missed_runs.values())}); "
          f"tracebacks in the log: {tracebacks}")
    print(f"ping answers by code         : {codes}")
    print(f"keyed pings the server got   : {keyed} against a budget of {args.budget} "
          f"(spent per the state file: {spent}; overspend: {max(0, keyed - args.budget)})")


if __name__ == "__main__":
    main()
