"""Helpers for the monitor's tests: a monitor process, a real Prometheus, free ports."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.conftest import assert_hygienic, clean_env, needs
from tests.waiting import wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode())


class MonitorProcess:
    """`assure-doctor monitor` in a subprocess, serving /metrics on a free port."""

    def __init__(self, args: list[str], state_dir: Path, env: dict[str, str] | None = None
                 ) -> None:
        self.port = free_port()
        self.state_dir = state_dir
        self.args = args
        self.env = env or clean_env()
        self.log = state_dir.parent / f"monitor-{self.port}.log"
        self.process = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "assure_doctor", "monitor", "--listen",
                   f"127.0.0.1:{self.port}", "--state-dir", str(self.state_dir),
                   "--log-file", str(self.log), *self.args]
        process = subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        try:
            wait_until(lambda: http_get(self.metrics_url, 1), 15, "the monitor's /metrics",
                       alive=process)
        except AssertionError as exc:
            process.kill()
            _, err = process.communicate()
            raise AssertionError(f"monitor did not start: {exc}\n{err.decode()[-2000:]}"
                                 ) from None
        return process

    def log_says(self, text: str) -> bool:
        """Whether the monitor's log file holds `text` yet."""
        return self.log.exists() and text in self.log.read_text()

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def metrics(self) -> str:
        return http_get(self.metrics_url)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log.exists():  # asyncio's and Python's own complaints reach our log too
            assert_hygienic(self.log.read_text(errors="replace"), "the monitor's log")


class Prometheus:
    """A real Prometheus server scraping one target every second."""

    def __init__(self, scrape_port: int, workdir: Path) -> None:
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: assure-doctor\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{scrape_port}']\n")
        self._start(config, workdir)

    def _start(self, config: Path, workdir: Path) -> None:
        """Run Prometheus on `config` with its data in `workdir`; wait until it is ready."""
        self.port = free_port()
        self.process = subprocess.Popen(
            [needs("prometheus"), f"--config.file={config}",
             f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: http_get(f"{self.url}/-/ready", 1), 30, "Prometheus to be ready",
                   alive=self.process)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query through the HTTP API; raises on any error Prometheus reports."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        answer = json.loads(http_get(url))
        if answer["status"] != "success":
            raise AssertionError(f"{expr}: {answer}")
        return list(answer["data"]["result"])

    def value(self, expr: str) -> float:
        result = self.query(expr)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)


@contextlib.contextmanager
def prometheus(scrape_port: int, workdir: Path) -> Iterator[Prometheus]:
    server = Prometheus(scrape_port, workdir)
    try:
        yield server
    finally:
        server.stop()
