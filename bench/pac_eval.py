"""What following a PAC costs (a script that prints measurements, not a test).

- evaluating FindProxyForURL in its own process (Python start-up, pypac, dukpy's QuickJS), for
  a one-line PAC and for a corporate-sized one (200 rules): wall time (median, 90th
  percentile) and the evaluating process's CPU time
- beside the floor: starting a bare `python -I`
- fetching it over HTTP from the sandbox's PAC server on 127.0.0.1

Loopback only; the PACs make no DNS lookup.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import ssl
import statistics
import sys
import time

import certifi

from assure_doctor.pac.evaluate import evaluate
from assure_doctor.pac.fetch import PacScript, fetch
from assure_doctor.pac.location import PacLocation, PacSource
from assure_doctor.sandbox.pacserver import PacReply, PacServer, script_returning

URL = "https://api.uk2.sheassure.net/v1/ping"


def corporate(rules: int) -> bytes:
    """A PAC of `rules` name tests before the rule that matches the API, as large sites
    write them."""
    tests = "\n".join(f'  if (dnsDomainIs(host, ".site{n}.corp.example")) return "DIRECT";'
                      for n in range(rules))
    return (f"function FindProxyForURL(url, host) {{\n{tests}\n"
            '  if (shExpMatch(host, "*.sheassure.net")) return "PROXY 127.0.0.1:3128; DIRECT";\n'
            '  return "DIRECT";\n}\n').encode()


async def evaluations(body: bytes, runs: int) -> tuple[list[float], float]:
    """Wall milliseconds of each evaluation, and the evaluator's mean CPU milliseconds (less
    sensitive than wall time to a machine shared with other work)."""
    script = PacScript(PacLocation(PacSource.FLAG, "bench.pac"), body.decode(), len(body),
                       None, 0)
    times = []
    cpu_before = children_cpu()
    for _ in range(runs):
        start = time.perf_counter()
        await evaluate(script, URL, timeout=10)
        times.append((time.perf_counter() - start) * 1000)
    return times, (children_cpu() - cpu_before) * 1000 / runs


async def fetches(server: PacServer, runs: int) -> list[float]:
    context = ssl.create_default_context(cafile=certifi.where())
    location = PacLocation(PacSource.FLAG, server.url())
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await fetch(location, timeout=10, ssl_context=context)
        times.append((time.perf_counter() - start) * 1000)
    return times


def children_cpu() -> float:
    """CPU seconds (user + system) used by finished child processes so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


async def bare_starts(runs: int) -> tuple[list[float], float]:
    """The floor: starting and ending `python -I -c pass` the same way."""
    times = []
    cpu_before = children_cpu()
    for _ in range(runs):
        start = time.perf_counter()
        process = await asyncio.create_subprocess_exec(sys.executable, "-I", "-c", "pass")
        await process.wait()
        times.append((time.perf_counter() - start) * 1000)
    return times, (children_cpu() - cpu_before) * 1000 / runs


def line(what: str, times: list[float]) -> str:
    p90 = statistics.quantiles(times, n=10)[-1] if len(times) >= 2 else times[0]
    return (f"{what:<38}: median {statistics.median(times):6.1f} ms, "
            f"p90 {p90:6.1f} ms (n={len(times)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    one_line = script_returning("PROXY 127.0.0.1:3128; DIRECT")
    big = corporate(200)
    times, cpu = asyncio.run(bare_starts(runs))
    print(line("python -I start-up alone (the floor)", times) + f", its CPU {cpu:5.1f} ms")
    for what, body in (("evaluate, one-line PAC", one_line),
                       (f"evaluate, {len(big) // 1024} KiB PAC (200 rules)", big)):
        times, cpu = asyncio.run(evaluations(body, runs))
        print(line(what, times) + f", evaluator CPU {cpu:5.1f} ms")
    with PacServer({"/proxy.pac": PacReply(big)}) as server:
        print(line("fetch over HTTP on 127.0.0.1", asyncio.run(fetches(server, runs))))


if __name__ == "__main__":
    main()
