"""Side by side with the fastest prober, in one run (prints figures; not a test).

- blackbox_exporter's probe_duration_seconds against our warm engine (in-process loop), and
  curl's time_total, for the same sandbox ping
- TLS connections the server accepted for one healthy `check`, one blackbox probe, one curl
- the whole `check --json` process against the import floor of its dependencies
- `--help` against `python -c pass`
- those processes again with bytecode cached, as a package installed by pip runs (this
  environment sets PYTHONDONTWRITEBYTECODE, so our modules are otherwise compiled at each start
  while the dependencies' bytecode was compiled at install)

Measurements are interleaved (one of each in turn), so that on a machine others share each
side sees the same load; wall-clock and CPU time are both printed. Loopback only. The sandbox
that is timed runs in its own process (no GIL sharing); the one that counts connections runs
in this process, where its counter can be read.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass
class Timings:
    """One command's runs: wall-clock and CPU (user + system) seconds."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def interleaved(runs: int, commands: dict[str, list[str]],
                env: dict[str, str] | None = None) -> dict[str, Timings]:
    """Each command once a round, `runs` rounds: on a machine others share, every command
    sees the same load, so their ratios hold even when the load moves."""
    found = {name: Timings() for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            start = time.perf_counter()
            child = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=env)
            _, status, usage = os.wait4(child.pid, 0)
            found[name].wall.append(time.perf_counter() - start)
            found[name].cpu.append(usage.ru_utime + usage.ru_stime)
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode not in (0, 1):
                raise RuntimeError(f"{name} exited {child.returncode}")
    return found


def python(*args: str) -> Callable[[], object]:
    def run() -> object:
        return subprocess.run([sys.executable, *args], check=True, capture_output=True)
    return run


def cached_bytecode(workdir: str) -> dict[str, str]:
    """The environment with bytecode written (to a folder of its own) and read back: how a
    package installed by pip runs, its modules compiled at install time, not at each start."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = workdir
    return env


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
    print(f"peer figures, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.runs} runs each, "
          f"interleaved (load average {os.getloadavg()[0]:.1f} at the start)")
    theirs: list[float] = []
    with served("healthy") as sandbox:
        if why_not is None:
            with blackbox.running(sandbox.port, sandbox.ca_bundle,
                                  apikey.from_file(sandbox.key_file).reveal()) as box:
                box.probe()  # warm
                # One of theirs after each of ours: both see the same load.
                ours = engine(sandbox, args.runs, between=lambda: theirs.append(box.probe()))
        else:
            ours = engine(sandbox, args.runs)
        curl = []
        if has_curl:
            curl_cmd = curl_args(sandbox.port, sandbox.ca_bundle,
                                 header_file(sandbox.key_file), sandbox.url)
            curl = [float(subprocess.run(curl_cmd, check=True, capture_output=True,
                                         text=True).stdout) for _ in range(args.runs)]
        check = [sys.executable, "-m", "assure_doctor", "check", *sandbox.check_args, "--json"]
        commands = {"check": check, "floor": [sys.executable, "-c", FLOOR],
                    "help": [sys.executable, "-m", "assure_doctor", "--help"],
                    "pass": [sys.executable, "-c", "pass"]}
        runs = interleaved(args.runs, commands)
        with tempfile.TemporaryDirectory(prefix="assure-pyc-") as pyc:
            env = cached_bytecode(pyc)
            interleaved(1, commands, env)  # compile once, as pip does at install
            cached = interleaved(args.runs, commands, env)
    counts = connections(has_curl, why_not is None)

    print(f"warm engine (5 stages), median  : {median_ms(ours):7.1f} ms")
    if theirs:
        ratio = statistics.median(ours) / statistics.median(theirs)
        print(f"blackbox probe_duration, median : {median_ms(theirs):7.1f} ms")
        print(f"engine / blackbox               : {ratio:7.2f}x  (aim: <= 2.5x)")
    else:
        print(f"blackbox_exporter               : skipped: {why_not}")
    if curl:
        print(f"curl time_total, median         : {median_ms(curl):7.1f} ms")
    for client, count in counts.items():
        aim = "  (aim: 1)" if client == "check" else ""
        print(f"TLS connections, {client:15}: {count:7d}{aim}")
    for label, found in (("", runs), (" (bytecode cached, as installed)", cached)):
        check_t, floor_t, help_t, bare_t = (found[name] for name in commands)
        ratio = statistics.median(check_t.wall) / statistics.median(floor_t.wall)
        cpu = statistics.median(check_t.cpu) / statistics.median(floor_t.cpu)
        print(f"--- processes{label}")
        print(f"check --json process, median    : {median_ms(check_t.wall):7.1f} ms "
              f"(CPU {median_ms(check_t.cpu):.1f} ms)")
        print(f"import floor, median            : {median_ms(floor_t.wall):7.1f} ms "
              f"(CPU {median_ms(floor_t.cpu):.1f} ms)  (python -c {FLOOR!r})")
        print(f"check / import floor            : {ratio:7.2f}x  (CPU {cpu:.2f}x)  "
              "(aim: <= 1.5x)")
        extra = median_ms(help_t.wall) - median_ms(bare_t.wall)
        extra_cpu = median_ms(help_t.cpu) - median_ms(bare_t.cpu)
        print(f"--help, median                  : {median_ms(help_t.wall):7.1f} ms; python -c "
              f"pass {median_ms(bare_t.wall):.1f} ms; +{extra:.1f} ms (CPU +{extra_cpu:.1f} ms) "
              "(aim: <= +30 ms)")


if __name__ == "__main__":
    main()
