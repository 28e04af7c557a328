"""The monitor's web interface as Prometheus users expect it: a real Prometheus scraping
through TLS and basic auth, the web config re-read when it changes, /-/healthy, /-/ready,
/-/reload and SIGHUP, /probe, and --check-config."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bcrypt
import pytest

from assure_doctor.errors import InputError
from assure_doctor.monitor.webconfig import load
from assure_doctor.sandbox import pki
from assure_doctor.sandbox.stack import Sandbox
from tests.conftest import assert_hygienic, clean_env, run_cli
from tests.monitoring import Prometheus, free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.slow  # monitor processes, a real Prometheus, TLS and basic auth

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--jitter", "0", "--retries", "0", "--timeout", "2", "--allow-budget-exhaustion"]


def hashed(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a server certificate for 127.0.0.1, as files."""
    where = tmp_path_factory.mktemp("certs")
    ca = pki.make_ca("web test CA")
    now = datetime.now(UTC)
    leaf = pki.make_leaf(["127.0.0.1", "localhost"], ca, now - timedelta(days=1),
                         now + timedelta(days=30))
    (where / "ca.pem").write_bytes(ca.cert_pem)
    (where / "server.pem").write_bytes(leaf.cert_pem)
    (where / "server.key").write_bytes(leaf.key_pem)
    return where


class Web:
    """A monitor subprocess with the given flags, and a client for its web interface."""

    def __init__(self, args: list[str], workdir: Path, *, scheme: str = "http",
                 ca: Path | None = None, auth: tuple[str, str] | None = None,
                 wait: bool = True) -> None:
        self.port = free_port()
        self.scheme, self.auth = scheme, auth
        self.context = ssl.create_default_context(cafile=str(ca)) if ca else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "assure_doctor", "monitor", "--web.listen-address",
             f"127.0.0.1:{self.port}", "--state-dir", str(workdir / "state"), *args],
            env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if wait:
            wait_until(lambda: self.get("/-/healthy")[0] == 200, 15, "/-/healthy",
                       alive=self.process)

    def get(self, path: str, *, method: str = "GET", auth: tuple[str, str] | None = None,
            timeout: float = 5) -> tuple[int, str]:
        request = urllib.request.Request(f"{self.scheme}://127.0.0.1:{self.port}{path}",
                                         method=method)
        user = auth or self.auth
        if user:
            token = base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self.context) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def stop(self) -> str:
        """Stop it; returns its stderr."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        assert_hygienic(err.decode(errors="replace"), "the monitor's stderr")
        return err.decode()


@contextlib.contextmanager
def web(args: list[str], workdir: Path, **kwargs: object) -> Iterator[Web]:
    server = Web(args, workdir, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


def showing(monitor: Web, text: str) -> str:
    """/metrics when it shows `text` (it is re-rendered within a second of a change), else ''."""
    metrics = monitor.get("/metrics")[1]
    return metrics if text in metrics else ""


class SecurePrometheus(Prometheus):
    """A real Prometheus scraping one target over https with basic auth."""

    def __init__(self, port: int, workdir: Path, ca: Path, user: str, password: str) -> None:
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: assure\n    scheme: https\n"
            f"    tls_config:\n      ca_file: {ca}\n"
            f"    basic_auth:\n      username: {user}\n      password: {password}\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
        self._start(config, workdir)


def test_prometheus_scrapes_through_tls_and_basic_auth(tmp_path: Path, certs: Path,
                                                       healthy: Sandbox) -> None:
    config = tmp_path / "web.yml"
    # Relative paths are relative to the file, as in exporter-toolkit.
    (tmp_path / "tls").symlink_to(certs)
    config.write_text("tls_server_config:\n  cert_file: tls/server.pem\n"
                      "  key_file: tls/server.key\n"
                      f"basic_auth_users:\n  prom: '{hashed('s3cret')}'\n")
    args = ["--web.config.file", str(config), *healthy.check_args(), "--no-ping",
            "--interval", "1", *FAST]
    with web(args, tmp_path, scheme="https", ca=certs / "ca.pem",
             auth=("prom", "s3cret")) as monitor:
        assert monitor.get("/metrics")[0] == 200
        assert monitor.get("/metrics", auth=("prom", "wrong"))[0] == 401
        assert monitor.get("/metrics", auth=("nobody", "s3cret"))[0] == 401
        monitor.auth = None
        status, _ = monitor.get("/metrics")
        assert status == 401
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # no plain HTTP
            urllib.request.urlopen(f"http://127.0.0.1:{monitor.port}/metrics", timeout=3)
        server = SecurePrometheus(monitor.port, tmp_path, certs / "ca.pem", "prom", "s3cret")
        try:
            wait_until(lambda: server.query('assure_stage_success{stage="tls"} == 1'), 30,
                     "Prometheus to scrape through TLS and basic auth")
            assert server.value('up{job="assure"}') == 1
        finally:
            server.stop()


def edit(path: Path, text: str) -> None:
    """Rewrite a file with a modification time of its own: one second after the last, as
    an editor a second later would leave it (the filesystem's clock may be coarse)."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def test_web_config_is_reread_when_it_changes(tmp_path: Path, healthy: Sandbox) -> None:
    config = tmp_path / "web.yml"
    log = tmp_path / "monitor.log"
    config.write_text(f"basic_auth_users:\n  alice: '{hashed('one')}'\n")
    args = ["--web.config.file", str(config), *healthy.check_args(), "--no-ping", *FAST,
            "--log-file", str(log)]
    with web(args, tmp_path, auth=("alice", "one")) as monitor:
        assert monitor.get("/metrics")[0] == 200
        edit(config, f"basic_auth_users:\n  alice: '{hashed('two')}'\n")
        # Re-checked at most every second, on a request: each look below is one.
        wait_until(lambda: monitor.get("/metrics")[0] == 401, 10, "the old password refused",
                   alive=monitor.process)
        assert monitor.get("/metrics", auth=("alice", "two"))[0] == 200
        edit(config, "basic_auth_users: [not, a, mapping]\n")  # a broken edit
        wait_until(lambda: monitor.get("/metrics", auth=("alice", "two"))[0] == 200
                   and "keeping the previous web configuration" in log.read_text(), 10,
                   "the broken edit to be read and refused", alive=monitor.process)
        assert monitor.get("/metrics", auth=("alice", "two"))[0] == 200  # the last good one
    assert "keeping the previous web configuration" in monitor.stop()


@pytest.mark.parametrize(("text", "words"), [
    ("tls_server_config:\n  cert_file: a.pem\n  key_file: a.key\n  colour: 1\n",
     "tls_server_config.colour"),
    ("basic_auth_users:\n  bob: plain-text\n", "not a bcrypt hash"),
    ("listen: 1\n", "unknown setting 'listen'"),
    ("tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n",
     "cannot load cert_file"),
    ("tls_server_config: [\n", "not valid YAML"),
    ("tls_server_config:\n  cert: inline\n", "not supported"),
])
def test_a_bad_web_config_is_refused_in_one_line(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(InputError, match=r"--web\.config\.file"):
        load(path)
    run = run_cli("monitor", "--url", "https://127.0.0.1:9/v1/ping", "--no-ping",
                  "--web.config.file", str(path), "--check-config")
    assert run.returncode == 2, run.stderr
    assert words in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "Traceback" not in run.stderr


def test_client_certificates_need_a_policy_and_a_ca(tmp_path: Path, certs: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text(f"tls_server_config:\n  cert_file: {certs}/server.pem\n"
                    f"  key_file: {certs}/server.key\n  client_ca_file: {certs}/ca.pem\n")
    with pytest.raises(InputError, match="NoClientCert"):
        load(path)
    path.write_text(path.read_text() + "  client_auth_type: RequireAndVerifyClientCert\n")
    context = load(path).tls
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED


def test_check_config_validates_without_starting(tmp_path: Path) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text("[[targets]]\nurl = 'https://127.0.0.1:9/v1/ping'\nno_ping = true\n")
    port = free_port()
    run = run_cli("monitor", "--config", str(targets), "--check-config",
                  "--web.listen-address", f"127.0.0.1:{port}")
    assert run.returncode == 0 and "valid" in run.stdout, run.stderr
    assert not (tmp_path / "state").exists()
    targets.write_text("[[targets]]\nurl = 'http://nope'\n")
    run = run_cli("monitor", "--config", str(targets), "--check-config")
    assert run.returncode == 2 and "--config" in run.stderr


def test_healthy_ready_and_the_index(tmp_path: Path) -> None:
    import socket

    # A resolver that never answers: the first network cycle takes the whole timeout.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        resolver = f"127.0.0.1:{silent.getsockname()[1]}"
        args = ["--url", "https://api.test.invalid/v1/ping", "--resolver", resolver,
                "--no-ping", "--timeout", "3", "--jitter", "0", "--interval", "60"]
        with web(args, tmp_path) as monitor:
            assert monitor.get("/-/healthy") == (200, "Healthy\n")
            status, body = monitor.get("/-/ready")
            assert status == 503 and "api.test.invalid" in body
            wait_until(lambda: monitor.get("/-/ready")[0] == 200, 15, "ready")
            assert monitor.get("/-/reload")[0] == 405  # GET: reload only by POST
            assert monitor.get("/nothing")[0] == 404
            assert '<a href="/metrics">' in monitor.get("/")[1]


def test_reload_and_sighup_reread_the_config(tmp_path: Path, healthy: Sandbox) -> None:
    def target(name: str) -> str:
        return (f'[[targets]]\nname = "{name}"\nurl = "{healthy.url}"\nno_ping = true\n'
                f'resolvers = ["{healthy.resolver}"]\nca_bundle = "{healthy.ca_bundle}"\n')

    path = tmp_path / "targets.toml"
    path.write_text(target("one"))
    with web(["--config", str(path), "--interval", "1", *FAST], tmp_path) as monitor:
        path.write_text(target("one") + target("two"))
        status, body = monitor.get("/-/reload", method="POST")
        assert (status, body) == (200, "Reloaded: 2 target(s)\n")
        wait_until(lambda: 'assure_up{target="two"} 1.0' in monitor.get("/metrics")[1], 10,
                 "the new target's first cycle")
        path.write_text("ping_budget = 'lots'\n" + target("one"))
        status, body = monitor.get("/-/reload", method="POST")
        assert status == 500 and "ping_budget" in body and "kept" in body
        failed = 'assure_monitor_config_last_reload_successful{target="two"} 0.0'
        metrics = wait_until(lambda: showing(monitor, failed), 5, "the failed reload's metric")
        assert 'assure_up{target="two"}' in metrics  # the running config is kept
        path.write_text(target("three"))
        monitor.process.send_signal(signal.SIGHUP)
        wait_until(lambda: 'assure_up{target="three"} 1.0' in monitor.get("/metrics")[1], 10,
                 "SIGHUP to load the third target")
        metrics = monitor.get("/metrics")[1]
        assert 'target="two"' not in metrics
        assert 'assure_monitor_config_last_reload_successful{target="three"} 1.0' in metrics
    errors = monitor.stop()
    assert "Reload failed, the running config is kept" in errors and "ping_budget" in errors
    assert "Traceback" not in errors


def test_probe_runs_the_network_stages_now_and_never_sends_the_key(
        tmp_path: Path, sandbox_factory: Callable[[str], Sandbox]) -> None:
    configured, other = sandbox_factory("healthy"), sandbox_factory("tls-expired")
    path = tmp_path / "targets.toml"
    path.write_text(f'[[targets]]\nname = "prod"\nurl = "{configured.url}"\n'
                    f'resolvers = ["{configured.resolver}"]\n'
                    f'ca_bundle = "{configured.ca_bundle}"\nkey_file = "{configured.key_file}"\n')
    # The URL not configured is checked with the base options: the other sandbox's resolver.
    args = ["--config", str(path), "--resolver", other.resolver, "--ca-bundle",
            str(other.ca_bundle), "--interval", "3600", "--ping-interval", "100000", *FAST]
    with web(args, tmp_path) as monitor:
        wait_until(lambda: configured.traffic.keyed == 1, 10, "the monitor's own first ping")
        keyed = configured.traffic.keyed
        status, body = monitor.get("/probe?target=prod")
        assert status == 200, body
        assert 'assure_probe_success{target="prod"} 1.0' in body
        assert 'assure_stage_success{stage="tls",target="prod"} 1.0' in body
        assert 'stage="ping"' not in body and "assure_monitor_" not in body
        assert configured.traffic.keyed == keyed  # no key on a probe
        status, body = monitor.get(f"/probe?target={other.url}")
        assert status == 200, body
        assert 'assure_probe_success{target="api.sandbox.sheassure.net"} 0.0' in body
        assert 'assure_stage_success{stage="tls",target="api.sandbox.sheassure.net"} 0.0' in body
        assert other.traffic.keyed == 0
        for bad in ("", "?target=", "?target=http://plain.example/", "?target=nobody",
                    "?target=a&target=b", "?target=https://"):
            status, body = monitor.get(f"/probe{bad}")
            assert status == 400, (bad, status, body)
        assert monitor.get("/probe?target=" + "x" * 3000)[0] == 400


class ProbingPrometheus(Prometheus):
    """A real Prometheus running grafana/prometheus-probe.yml against our monitor and URLs."""

    def __init__(self, port: int, workdir: Path, targets: list[str]) -> None:
        text = (ROOT / "grafana" / "prometheus-probe.yml").read_text()
        assert "127.0.0.1:10459" in text and "uk2-prod" in text
        listed = "\n".join(f"          - {target}" for target in targets)
        text = re.sub(r"(      - targets:\n)(          - .*\n)+", lambda m: m.group(1) + listed
                      + "\n", text)
        text = text.replace("127.0.0.1:10459", f"127.0.0.1:{port}").replace("60s", "1s")
        text = text.replace("scrape_timeout: 30s", "scrape_timeout: 1s")
        config = workdir / "prometheus.yml"
        config.write_text(text)
        self._start(config, workdir)


def test_the_documented_probe_scrape_config_works(tmp_path: Path, healthy: Sandbox) -> None:
    path = tmp_path / "targets.toml"
    path.write_text(f'[[targets]]\nname = "prod"\nurl = "{healthy.url}"\nno_ping = true\n'
                    f'resolvers = ["{healthy.resolver}"]\nca_bundle = "{healthy.ca_bundle}"\n')
    args = ["--config", str(path), "--resolver", healthy.resolver, "--ca-bundle",
            str(healthy.ca_bundle), "--interval", "3600", *FAST]
    with web(args, tmp_path) as monitor:
        server = ProbingPrometheus(monitor.port, tmp_path, ["prod", healthy.url])
        try:
            wait_until(lambda: len(server.query("assure_probe_success == 1")) == 2, 30,
                     "both targets probed through relabelling")
            instances = {r["metric"]["instance"] for r in server.query("assure_probe_success")}
            assert instances == {"prod", healthy.url}
        finally:
            server.stop()
    assert healthy.traffic.keyed == 0
