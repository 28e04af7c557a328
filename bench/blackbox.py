"""Debian's blackbox_exporter as the peer to measure against: probes, durations, its CPU.

Started on 127.0.0.1 on a free port, with a generated config whose one module GETs the
sandbox's ping over HTTPS, trusting only the sandbox CA and sending the sandbox key.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from assure_doctor.sandbox.stack import HOST

COMMAND = "prometheus-blackbox-exporter"


def missing() -> str | None:
    """Why the peer cannot run here, or None."""
    if shutil.which(COMMAND) is None:
        return f"{COMMAND} is not installed (Debian package prometheus-blackbox-exporter)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Blackbox:
    """A running blackbox_exporter and the target its `ping` module probes."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, target: str) -> None:
        self.process = process
        self.base = f"http://127.0.0.1:{port}"
        self.target = target

    def probe(self) -> float:
        """One probe; its probe_duration_seconds. Raises if the probe failed."""
        query = urllib.parse.urlencode({"module": "ping", "target": self.target})
        with urllib.request.urlopen(f"{self.base}/probe?{query}", timeout=10) as response:
            text = response.read().decode()
        values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                  if line and not line.startswith("#") and "{" not in line}
        if values.get("probe_success") != 1.0:
            raise RuntimeError(f"blackbox probe failed: {values}")
        return values["probe_duration_seconds"]

    def cpu_seconds(self) -> float:
        """user+sys CPU the exporter has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def running(port: int, ca_bundle: str, key: str) -> Iterator[Blackbox]:
    """blackbox_exporter probing https://127.0.0.1:<port>/v1/ping as the sandbox's host."""
    workdir = Path(tempfile.mkdtemp(prefix="assure-blackbox-"))
    config = {"modules": {"ping": {"prober": "http", "timeout": "5s", "http": {
        "method": "GET", "headers": {"x-api-key": key}, "valid_status_codes": [200],
        "preferred_ip_protocol": "ip4", "ip_protocol_fallback": False,
        "tls_config": {"ca_file": ca_bundle, "server_name": HOST}}}}}
    (workdir / "blackbox.yml").write_text(json.dumps(config))  # JSON is YAML
    os.chmod(workdir / "blackbox.yml", 0o600)  # it holds the (sandbox) key
    listen = _free_port()
    process = subprocess.Popen(
        [COMMAND, f"--config.file={workdir / 'blackbox.yml'}",
         f"--web.listen-address=127.0.0.1:{listen}", "--log.level=error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        box = Blackbox(process, listen, f"https://127.0.0.1:{port}/v1/ping")
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"{box.base}/metrics", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("blackbox_exporter did not start") from None
                time.sleep(0.05)
        yield box
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
