"""Figures for `check` against the sandbox (a script that prints measurements, not a test).

- whole-process wall time of `assure-doctor check --json` (median of N runs)
- the engine's in-process time beside curl's time_total for the same URL, and their ratio
- how long a stealth firewall (dropped SYNs) takes to be reported, against timeout x attempts

Loopback only: the sandbox's DNS server and HTTPS on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from assure_doctor import apikey, logs
from assure_doctor.engine import run_check
from assure_doctor.sandbox.stack import HOST
from assure_doctor.target import from_url
from bench.served import Served, served


def whole_process(sandbox: Served, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "assure_doctor", "check", *sandbox.check_args,
                        "--json"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def engine(sandbox: Served, runs: int, between: Callable[[], object] | None = None
           ) -> list[float]:
    """The warm engine's time per check; `between` runs after each timed check, untimed (a
    peer's probe, so that both see the same load on a shared machine)."""
    target, options = from_url(sandbox.url), sandbox.options()
    key = apikey.from_file(sandbox.key_file)

    async def many() -> list[float]:
        await run_check(target, options, key)  # warm: imports and first-use costs
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            report = await run_check(target, options, key)
            times.append(time.perf_counter() - start)
            assert report.ok, report.diagnosis
            if between is not None:
                between()
        return times

    return asyncio.run(many())


def curl(sandbox: Served, runs: int, header_file: Path) -> list[float]:
    times = []
    for _ in range(runs):
        done = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{time_total}", "--resolve",
             f"{HOST}:{sandbox.port}:127.0.0.1", "--cacert", sandbox.ca_bundle,
             "-H", f"@{header_file}", sandbox.url],
            check=True, capture_output=True, text=True)
        times.append(float(done.stdout))
    return times


def stealth_firewall(timeout: float) -> tuple[float, float]:
    """(whole check seconds, tcp stage seconds) against dropped SYNs."""
    with served("tcp-timeout") as sandbox:
        options = sandbox.options(timeout=timeout)

        async def once() -> tuple[float, float]:
            start = time.perf_counter()
            report = await run_check(from_url(sandbox.url), options,
                                     apikey.from_file(sandbox.key_file))
            tcp = report.stage("tcp")
            assert tcp is not None and tcp.condition == "connect_timeout"
            return time.perf_counter() - start, tcp.duration_ms / 1000

        return asyncio.run(once())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=2.0, help="for the stealth firewall")
    args = parser.parse_args()
    logs.configure(stderr_level=logs.logging.CRITICAL)
    with served("healthy") as sandbox:
        header_file = Path(sandbox.key_file).with_name("curl-headers")
        header_file.write_text(f"x-api-key: {apikey.from_file(sandbox.key_file).reveal()}\n")
        process = whole_process(sandbox, max(args.runs // 2, 3))
        ours = engine(sandbox, args.runs)
        theirs = curl(sandbox, args.runs, header_file) if shutil.which("curl") else []
    ms = statistics.median
    print(f"check --json, whole process : median {ms(process) * 1000:7.1f} ms "
          f"(n={len(process)})")
    print(f"engine in-process (5 stages): median {ms(ours) * 1000:7.1f} ms (n={len(ours)})")
    if theirs:
        print(f"curl time_total (one GET)   : median {ms(theirs) * 1000:7.1f} ms "
              f"(n={len(theirs)})")
        print(f"engine / curl ratio         : {ms(ours) / ms(theirs):7.2f}  (aim: <= 2)")
    attempts = 1  # the tcp stage makes one attempt per address; retries are the ping's
    whole, tcp = stealth_firewall(args.timeout)
    bound = attempts * args.timeout * 1.1
    print(f"stealth firewall reported in: {whole:7.2f} s whole check, {tcp:.2f} s tcp stage "
          f"(bound attempts x timeout + 10% = {bound:.2f} s)")


if __name__ == "__main__":
    main()
