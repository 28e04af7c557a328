"""Hostile clients: an idle-connection flood under a small descriptor limit must not starve
the scrapes nor the probes."""

from __future__ import annotations

import os
import re
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assure_doctor.monitor.web import connection_cap
from assure_doctor.sandbox.stack import Sandbox
from tests.conftest import clean_env
from tests.monitoring import free_port, http_get
from tests.waiting import wait_until

pytestmark = pytest.mark.slow  # a monitor process under a connection flood

LIMIT = 256
FLOOD = 600  # idle connections: more than the monitor has descriptors


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))  # soft and hard: no way up


def test_idle_connection_flood_under_ulimit_256(tmp_path: Path, healthy: Sandbox) -> None:
    port = free_port()
    log = tmp_path / "monitor.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "assure_doctor", "monitor", "--web.listen-address",
         f"127.0.0.1:{port}", "--state-dir", str(tmp_path / "state"), "--log-file", str(log),
         *healthy.check_args(), "--interval", "1", "--ping-interval", "1", "--jitter", "0",
         "--retries", "0", "--timeout", "2", "--ping-budget", "10000",
         "--allow-budget-exhaustion"],
        env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_limit)
    url = f"http://127.0.0.1:{port}/metrics"
    idle: list[socket.socket] = []
    try:
        up = 'assure_up{target="api.sandbox.sheassure.net"} 1.0'
        wait_until(lambda: up in http_get(url, 1), 20, "the first full cycle", alive=process)
        pings_before = healthy.traffic.keyed
        deadline = time.monotonic() + 15  # a server that stops accepting must not hang us
        for _ in range(FLOOD):
            if time.monotonic() > deadline:
                break
            sock = socket.socket()
            sock.settimeout(0.5)
            try:
                sock.connect(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            idle.append(sock)
        held = len(os.listdir(f"/proc/{process.pid}/fd"))
        # Scrapes still answer within about a second while the flood is connected.
        worst = 0.0
        for _ in range(5):
            start = time.monotonic()
            text = http_get(url, timeout=2)
            worst = max(worst, time.monotonic() - start)
            assert "assure_up" in text
        print(f"\nflood: {len(idle)} idle connections opened; the monitor held {held} "
              f"descriptors (limit {LIMIT}, web cap {connection_cap(LIMIT)}); slowest scrape "
              f"{worst * 1000:.0f} ms")
        assert worst < 1.0
        assert held < LIMIT - 64  # the probes' reserve is untouched
        # The probes keep their sockets: new cycles pass, pings go on, no job fails.
        flooded, pings_flooded = time.time(), healthy.traffic.keyed
        wait_until(lambda: healthy.traffic.keyed >= max(pings_before, pings_flooded) + 2, 10,
                   "two more pings", alive=process)
        text = wait_until(lambda: ran_since(http_get(url, timeout=2), "tcp", flooded), 10,
                          "a tcp stage run after the flood in /metrics", alive=process)
        assert 'assure_up{target="api.sandbox.sheassure.net"} 1.0' in text
        assert 'assure_stage_success{stage="tcp",target="api.sandbox.sheassure.net"} 1.0' in text
        assert "job_errors_total{cadence=\"network\",target=\"api.sandbox.sheassure.net\"} 0.0" \
            in text
    finally:
        for sock in idle:
            sock.close()
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0
    everything = err.decode() + log.read_text()
    assert "Too many open files" not in everything and "EMFILE" not in everything


def ran_since(metrics: str, stage: str, since: float) -> str:
    """`metrics` when they show `stage` run after `since` (a Unix time), else ''."""
    series = re.escape(f'assure_stage_last_run_timestamp_seconds{{stage="{stage}",')
    found = re.search(series + r"[^}]*\} (\S+)$", metrics, re.M)
    return metrics if found and float(found[1]) > since else ""


def test_the_connection_cap_leaves_room_for_the_probes() -> None:
    assert connection_cap(1024) == 64
    assert connection_cap(256) < 256 - 128
    assert connection_cap(64) >= 4
