"""Side by side with the fastest prober, in one run (prints figures; not a test).

- blackbox_exporter's probe_duration_seconds against our warm engine (in-process loop), and
  curl's time_total, for the same sandbox ping
- TLS connections the server accepted for one healthy `check`, one blackbox probe, one curl
- the whole `check --json` process against the import floor of its dependencies
- `--help` against `python -c pass`

Loopback only. The sandbox that is timed runs in its own process (no GIL sharing); the one
that counts connections runs in this process, where its counter can be read.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from assure_doctor import apikey, logs
from assure_doctor.sandbox.stack import HOST, Sandbox
from bench import blackbox
from bench.check_latency import engine  # the same warm loop, measured the same way
from bench.served import served

FLOOR = "import httpx, dns.asyncresolver, cryptography.x509"


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def timed(runs: int, once: Callable[[], object]) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return times


def python(*args: str) -> Callable[[], object]:
    def run() -> object:
        return subprocess.run([sys.executable, *args], check=True, capture_output=True)
    return run


def curl_args(port: int, ca_bundle: str, header_file: Path, url: str) -> list[str]:
    return ["curl", "-sS", "-o", "/dev/null", "-w", "%{time_total}", "--resolve",
            f"{HOST}:{port}:127.0.0.1", "--cacert", ca_bundle, "-H", f"@{header_file}", url]


def header_file(key_file: str) -> Path:
    path = Path(key_file).with_name("curl-headers")
    path.write_text(f"x-api-key: {apikey.from_file(key_file).reveal()}\n")
    return path


def connections(
        has_curl: bool, has_blackbox: bool) -> dict[str, int]:
    """TLS connections the API side accepted for one of each client's checks."""
    counts: dict[str, int] = {}
    with Sandbox("healthy") as sandbox:
        def count(run: Callable[[], object]) -> int:
            before = sandbox.traffic.connections
            run()
            time.sleep(0.2)  # let the server's loop count a late accept
            return sandbox.traffic.connections - before

        counts["check"] = count(python("-m", "assure_doctor", "check",
                                                     *sandbox.check_args(), "--json"))
        if has_curl:
            args = curl_args(sandbox.port, str(sandbox.ca_bundle),
                             header_file(str(sandbox.key_file)), sandbox.url)
            counts["curl"] = count(lambda: subprocess.run(args, check=True,
                                                          capture_output=True))
        if has_blackbox:
            with blackbox.running(sandbox.port, str(sandbox.ca_bundle), sandbox.key) as box:
                counts["blackbox"] = count(box.probe)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    logs.configure(stderr_level=logging.CRITICAL)
    why_not = blackbox.missing()
    has_curl = shutil.which("curl") is not None
    print(f"peer figures, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.runs} runs each")
    with served("healthy") as sandbox:
        ours = engine(sandbox, args.runs)
        theirs: list[float] = []
        if why_not is None:
            with blackbox.running(sandbox.port, sandbox.ca_bundle,
                                  apikey.from_file(sandbox.key_file).reveal()) as box:
                box.probe()  # warm
                theirs = [box.probe() for _ in range(args.runs)]
        curl = []
        if has_curl:
            curl_cmd = curl_args(sandbox.port, sandbox.ca_bundle,
                                 header_file(sandbox.key_file), sandbox.url)
            curl = [float(subprocess.run(curl_cmd, check=True, capture_output=True,
                                         text=True).stdout) for _ in range(args.runs)]
        process = timed(args.runs, python("-m", "assure_doctor", "check", *sandbox.check_args,
                                          "--json"))
    floor = timed(args.runs, python("-c", FLOOR))
    helps = timed(args.runs, python("-m", "assure_doctor", "--help"))
    bare = timed(args.runs, python("-c", "pass"))
    counts = connections(has_curl, why_not is None)

    print(f"warm engine (5 stages), median  : {median_ms(ours):7.1f} ms")
    if theirs:
        ratio = statistics.median(ours) / statistics.median(theirs)
        print(f"blackbox probe_duration, median : {median_ms(theirs):7.1f} ms")
        print(f"engine / blackbox               : {ratio:7.2f}x  (aim: <= 2x)")
    else:
        print(f"blackbox_exporter               : skipped: {why_not}")
    if curl:
        print(f"curl time_total, median         : {median_ms(curl):7.1f} ms")
    for client, count in counts.items():
        aim = "  (aim: 1)" if client == "check" else ""
        print(f"TLS connections, {client:15}: {count:7d}{aim}")
    ratio = statistics.median(process) / statistics.median(floor)
    print(f"check --json process, median    : {median_ms(process):7.1f} ms")
    print(f"import floor, median            : {median_ms(floor):7.1f} ms  (python -c {FLOOR!r})")
    print(f"check / import floor            : {ratio:7.2f}x  (aim: <= 1.25x)")
    extra = median_ms(helps) - median_ms(bare)
    print(f"--help, median                  : {median_ms(helps):7.1f} ms; python -c pass "
          f"{median_ms(bare):.1f} ms; +{extra:.1f} ms (aim: <= +30 ms)")


if __name__ == "__main__":
    main()
