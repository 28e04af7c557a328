"""`check` through a real squid (Debian's package): open, Basic authentication, CONNECT denied.

Squid runs on a free loopback port with a generated config; it resolves the API's name from
its own hosts file and asks no DNS server (its nameserver is 127.0.0.1, where none listens).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from assure_doctor.sandbox.stack import HOST, Sandbox
from tests.conftest import FAST, needs, run_cli
from tests.waiting import wait_until

pytestmark = pytest.mark.slow  # a real squid and whole checks through it

USER, PASSWORD = "integration", "squid-Secret-42"
OPEN = "http_access allow localhost\n"
AUTH = ("auth_param basic program {helper} {dir}/htpasswd\n"
        "auth_param basic realm assure-doctor test\n"
        "acl authed proxy_auth REQUIRED\nhttp_access allow authed\n")
DENY_API = f"acl api dstdomain {HOST}\nhttp_access deny CONNECT api\nhttp_access allow localhost\n"


def _squid() -> str:
    return needs("squid", where="/usr/sbin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def squid() -> Iterator[Callable[[str], str]]:
    """Start squid with an access policy; returns its proxy URL (no credentials)."""
    binary = _squid()
    started: list[subprocess.Popen[bytes]] = []
    # Not pytest's tmp_path: run as root, squid drops to its own user, which cannot enter
    # pytest's private directories.
    base = Path(tempfile.mkdtemp(prefix="assure-squid-"))
    base.chmod(0o755)

    def start(policy: str) -> str:
        work = base / f"squid{len(started)}"
        work.mkdir()
        work.chmod(0o777)
        (work / "hosts").write_text(f"127.0.0.1 {HOST}\n")
        hashed = subprocess.run(["openssl", "passwd", "-apr1", PASSWORD], capture_output=True,
                                text=True, check=True).stdout.strip()
        (work / "htpasswd").write_text(f"{USER}:{hashed}\n")
        port = _free_port()
        helper = Path("/usr/lib/squid/basic_ncsa_auth")
        (work / "squid.conf").write_text(
            f"http_port 127.0.0.1:{port}\npid_filename {work}/squid.pid\n"
            "cache deny all\ncache_mem 8 MB\ncache_store_log none\n"
            f"access_log stdio:{work}/access.log\ncache_log {work}/cache.log\n"
            f"coredump_dir {work}\nhosts_file {work}/hosts\ndns_nameservers 127.0.0.1\n"
            "pinger_enable off\nshutdown_lifetime 0 seconds\n"
            "acl localhost src 127.0.0.1/32\n"
            + policy.format(helper=helper, dir=work) + "http_access deny all\n")
        with (work / "stderr").open("wb") as stderr:
            process = subprocess.Popen([binary, "-N", "-f", str(work / "squid.conf")],
                                       stdout=subprocess.DEVNULL, stderr=stderr,
                                       start_new_session=True)
        started.append(process)

        def listening() -> bool:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True

        try:
            wait_until(listening, 20, "squid to listen", alive=process)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{(work / 'stderr').read_text()[-2000:]}") from None
        return f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    shutil.rmtree(base, ignore_errors=True)


def _check(sandbox: Sandbox, proxy: str) -> dict[str, Any]:
    args = [a for a in sandbox.check_args() if a != "--no-proxy"]
    run = run_cli("check", *args, *FAST, "--proxy", proxy, "--json")
    assert run.returncode in (0, 1), run.stderr
    assert PASSWORD not in run.stdout + run.stderr and sandbox.key not in run.stdout
    document = run.json()
    return {stage["name"]: stage for stage in document["stages"]} | {"ok": document["ok"]}


def test_open_squid_tunnels_the_whole_check(squid: Callable[[str], str], healthy: Sandbox
                                            ) -> None:
    proxy = squid(OPEN)
    stages = _check(healthy, proxy)
    assert stages["ok"] is True
    assert stages["proxy"]["status"] == "pass"
    assert stages["proxy"]["evidence"]["connect_status"] == 200
    assert stages["proxy"]["evidence"]["source"] == "--proxy"
    assert stages["tls"]["evidence"]["trust"]["ca_bundle"] is True
    assert healthy.traffic.keyed == 1  # the ping went through squid too


def test_squid_basic_auth_wants_credentials_and_takes_them(
        squid: Callable[[str], str], healthy: Sandbox) -> None:
    proxy = squid(AUTH)
    stages = _check(healthy, proxy)
    assert stages["proxy"]["condition"] == "proxy_auth_required"
    assert stages["proxy"]["evidence"]["proxy_authenticate"] == ["Basic"]
    assert stages["proxy"]["causes"][0]["id"] == "proxy"
    assert healthy.traffic.keyed == 0

    with_credentials = proxy.replace("http://", f"http://{USER}:{PASSWORD}@")
    stages = _check(healthy, with_credentials)
    assert stages["ok"] is True, stages
    masked = proxy.replace("http://", f"http://{USER}:****@")
    assert stages["proxy"]["evidence"]["proxy"] == masked
    assert healthy.traffic.keyed == 1


def test_squid_denying_connect_is_a_refusal_with_its_page_title(
        squid: Callable[[str], str], healthy: Sandbox) -> None:
    proxy = squid(DENY_API)
    stages = _check(healthy, proxy)
    assert stages["ok"] is False
    proxy_stage = stages["proxy"]
    assert proxy_stage["condition"] == "proxy_refused"
    assert proxy_stage["evidence"]["connect_status"] == 403
    assert proxy_stage["evidence"]["error_page_title"].startswith("ERROR")
    assert proxy_stage["causes"][0]["id"] == "proxy"
    assert stages["tls"]["status"] == "skip"
