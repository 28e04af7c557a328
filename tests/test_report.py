"""`assure-doctor report`: the support bundle, its privacy, and commands that reproduce the ping."""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import certifi
import pytest

from assure_doctor.render import bundle
from assure_doctor.sandbox.stack import Sandbox
from tests.conftest import FAST, clean_env, run_cli
from tests.key_echo import PLANTED, KeyEcho

SandboxFactory = Callable[[str], Sandbox]


def report(sandbox: Sandbox, out: Path, *extra: str) -> tuple[int, str]:
    run = run_cli("report", *sandbox.check_args(), *FAST, "--retries", "0", "--out", str(out),
                  *extra)
    assert "Traceback" not in run.stderr
    return run.returncode, run.stdout


def test_report_writes_a_private_bundle(sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    sandbox = sandbox_factory("tls-unknown-issuer")
    out = tmp_path / "bundle"
    code, stdout = report(sandbox, out)
    assert code == 1
    assert str(out) in stdout.splitlines()[0]
    assert "tls" in stdout.splitlines()[1] and "tls_interception" in stdout.splitlines()[2]
    assert sorted(p.name for p in out.iterdir()) == sorted(bundle.FILES)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert sandbox.key not in path.read_text()
    document = json.loads((out / "report.json").read_text())
    assert document["diagnosis"]["condition"] == "tls_certificate_error"
    assert document["api_key"] == {"present": True, "source": "file", "length": len(sandbox.key),
                                   "sent": True}
    markdown = (out / "report.md").read_text()
    for heading in ("## Stages", "## Diagnosis: SSL certificate error", "## Evidence",
                    "## Environment"):
        assert heading in markdown
    assert "| certificate SHA-256 fingerprint | " in markdown
    assert "addresses tried (IPv4) | 127.0.0.1 connected" in markdown
    log = (out / "assure-doctor.log").read_text()
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} pid=\d+ tid=\d+ ", log, re.M)
    assert "ends …" not in log  # not even the key's last characters


def test_report_refuses_a_file_as_folder(tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    run = run_cli("report", "--url", "https://127.0.0.1:9/v1/ping", "--out", str(target))
    assert run.returncode == 2 and "--out" in run.stderr and "Traceback" not in run.stderr


def _commands(text: str) -> tuple[str, str]:
    """The curl line and the Python script of reproduce.txt."""
    curl = next(line for line in text.splitlines() if line.startswith("curl "))
    script = text.split("python3 - <<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    return curl, script


@pytest.mark.parametrize(("scenario", "status"), [("healthy", 200), ("http-401", 401)])
def test_reproduce_commands_get_the_status_the_check_got(
        scenario: str, status: int, sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    sandbox = sandbox_factory(scenario)
    out = tmp_path / "bundle"
    report(sandbox, out)
    document = json.loads((out / "report.json").read_text())
    stages = {stage["name"]: stage for stage in document["stages"]}
    assert stages["ping"]["evidence"]["status_code"] == status
    text = (out / "reproduce.txt").read_text()
    assert sandbox.key not in text and "$ASSURE_API_KEY" in text
    assert "$env:ASSURE_API_KEY" in text and "os.environ['ASSURE_API_KEY']" in text
    assert f"--resolve api.sandbox.sheassure.net:{sandbox.port}:127.0.0.1" in text
    assert "openssl s_client -connect 127.0.0.1:" in text and "Test-NetConnection" in text
    curl, script = _commands(text)
    env = clean_env(ASSURE_API_KEY=sandbox.key)
    keyed = sandbox.traffic.keyed
    done = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, env=env,
                          timeout=30)
    assert done.stdout.strip().endswith(f"HTTP {status}"), done.stdout + done.stderr
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=30)
    assert f"StatusCode={status}" in done.stdout, done.stdout + done.stderr
    assert sandbox.traffic.keyed == keyed + 2  # both really sent the key to the sandbox


def test_reproduce_quotes_hostile_values(tmp_path: Path) -> None:
    from assure_doctor import trust
    from assure_doctor.model import Report
    from assure_doctor.options import CheckOptions
    from assure_doctor.render import reproduce
    from assure_doctor.target import from_url

    bundle_path = str(tmp_path / "it's $(touch pwned) `x`.pem")
    # Options load their bundle when made: it must be a real one.
    Path(bundle_path).write_bytes(Path(certifi.where()).read_bytes())
    options = CheckOptions(trust=trust.load(bundle_path))
    text = reproduce.render(Report(from_url("https://api.uk2.sheassure.net/v1/ping"), (),
                                   "now", "system"), options)
    curl = next(line for line in text.splitlines() if line.startswith("curl "))
    done = subprocess.run(["bash", "-c", f"printf '%s\\n' {curl.split('--cacert ')[1]}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=10)
    assert done.stdout.splitlines()[0] == bundle_path
    assert not (tmp_path / "pwned").exists()


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[KeyEcho]:
    with KeyEcho(PLANTED, tmp_path) as server:
        yield server


@pytest.mark.slow
def test_no_secret_survives_in_any_file_of_the_bundle(hostile: KeyEcho, tmp_path: Path) -> None:
    key = hostile.planted
    out = tmp_path / "bundle"
    run = run_cli("report", "--url", f"https://127.0.0.1:{hostile.port}/v1/ping",
                  "--ca-bundle", str(hostile.ca_bundle), *FAST, "--retries", "0",
                  "--out", str(out), env=clean_env(ASSURE_API_KEY=key))
    assert run.returncode == 1, run.stdout + run.stderr
    document = json.loads((out / "report.json").read_text())
    assert document["diagnosis"]["condition"] == "http_redirect"  # the server was reached
    assert document["api_key"]["source"] == "ASSURE_API_KEY"
    for text in (run.stdout, run.stderr, *(p.read_text() for p in out.iterdir())):
        assert key not in text
        assert key[-8:] not in text  # not even part of it
        assert "\x1b" not in text and "\x07" not in text
    markdown = (out / "report.md").read_text()
    assert "Set-Cookie" not in markdown and "set-cookie" not in markdown
    assert "[REDACTED]" in markdown  # the certificate subject, redacted, not dropped


def test_check_json_carries_tool_platform_and_the_key_as_data(healthy: Sandbox) -> None:
    run = run_cli("check", *healthy.check_args(), "--json")
    document = run.json()
    assert document["tool"]["name"] == "assure-doctor" and document["tool"]["version"]
    assert set(document["platform"]) >= {"system", "release", "python"}
    assert document["api_key"]["present"] is True
    assert document["api_key"]["length"] == len(healthy.key)
    run = run_cli("check", "--url", healthy.url, "--resolver", healthy.resolver, "--json",
                  "--no-ping")
    assert run.json()["api_key"] == {"present": False, "source": None, "length": None,
                                     "sent": False}
