"""The system's resolver through real components: a client namespace whose /etc/hosts and
resolv.conf are its own (`ip netns exec` bind-mounts /etc/netns/NAME/*), the sandbox's DNS
server and a real TLS server in a server namespace. `check` runs without --resolver, so
getaddrinfo reads that hosts file and asks that server, as the integration would.

Root only (skipped with the reason otherwise); only 198.18.0.0/15 is used, and no query can
leave the namespaces (they have no other network).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from assure_doctor.sandbox import pki
from tests import netns

pytestmark = pytest.mark.slow  # each test runs a check in network namespaces of its own

HOST = "api.lab.sheassure.net"
SERVER_IP = "198.18.0.2"
OTHER_IP = "198.18.0.3"  # the server's too, where nothing listens on 443 (or it is dropped)
GATEWAY = "gw-lab.platform.example.net"
RESOLV_CONF = f"nameserver {SERVER_IP}\noptions timeout:1 attempts:1\n"
HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost\n# the old installation's:\n"


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    work = tmp_path_factory.mktemp("netns-dns-pki")
    ca = pki.make_ca("netns dns test CA")
    now = datetime.now(UTC)
    leaf = pki.make_leaf([HOST], ca, now - timedelta(days=1), now + timedelta(days=30))
    paths = work / "ca.pem", work / "server.pem", work / "server.key"
    for path, data in zip(paths, (ca.cert_pem, leaf.cert_pem, leaf.key_pem), strict=True):
        path.write_bytes(data)
    return paths


def require() -> None:
    netns.require()
    # glibc asks a running nscd before the namespace's own files: it would resolve outside.
    for socket_path in ("/run/nscd/socket", "/var/run/nscd/socket"):
        if os.path.exists(socket_path):
            pytest.skip(f"nscd runs on this machine ({socket_path}): it would answer instead")


def lab_with(lab: netns.Lab, pem: tuple[Path, Path, Path], hosts: str,
             zone: dict[str, Any], resolv_conf: str = RESOLV_CONF) -> str:
    """Client and server namespaces; the server runs DNS (`zone`) and TLS on SERVER_IP, and
    has OTHER_IP too. Returns the client, whose /etc has `hosts` and our resolv.conf."""
    client, server = lab.namespace("c"), lab.namespace("s")
    lab.link(client, "198.18.0.1/24", server, f"{SERVER_IP}/24")
    netns.sh("ip", "addr", "add", f"{OTHER_IP}/32", "dev", "lo", ns=server)
    lab.etc(client, {"hosts": HOSTS + hosts, "resolv.conf": resolv_conf,
                     "nsswitch.conf": "hosts: files dns\n"})
    lab.dns_server(server, SERVER_IP, {"host": HOST, "ipv4": [SERVER_IP], **zone})
    lab.tls_server(server, SERVER_IP, 443, pem[1], pem[2])
    return client


def check(ns: str, ca: Path) -> dict[str, Any]:
    """`check --json --no-ping` inside the client namespace, without --resolver."""
    return {stage["name"]: stage for stage in json.loads(check_run(ns, ca).stdout)["stages"]}


def check_run(ns: str, ca: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "assure_doctor", "check", "--url",
         f"https://{HOST}/v1/ping", "--no-ping", "--no-proxy", "--json", "--timeout", "1.5",
         "--ca-bundle", str(ca)], capture_output=True, text=True, timeout=60,
        cwd=Path(__file__).parent.parent)
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.mark.parametrize(("drop", "condition"), [(False, "connect_failed"),
                                                  (True, "connect_timeout")])
def test_a_pinned_address_that_fails_is_blamed_on_the_hosts_file(
        pem: tuple[Path, Path, Path], drop: bool, condition: str) -> None:
    require()
    if drop:
        netns.require("iptables")
    with netns.lab() as lab:
        client = lab_with(lab, pem, f"{OTHER_IP}\t{HOST}\n", {"behaviour": "answer"})
        if drop:
            netns.sh("iptables", "-A", "INPUT", "-d", OTHER_IP, "-p", "tcp", "--dport", "443",
                     "-j", "DROP", ns=lab.namespaces[1])
        stages = check(client, pem[0])
    dns, tcp = stages["dns"], stages["tcp"]
    assert dns["status"] == "pass", dns
    assert dns["evidence"]["os_source"] == "hosts" and dns["evidence"]["hosts_line"] == 4
    assert dns["evidence"]["addresses"] == [OTHER_IP]
    assert dns["evidence"]["dns_addresses"] == [SERVER_IP]  # our DNS server was asked
    assert tcp["status"] == "fail" and tcp["condition"] == condition, tcp
    assert tcp["causes"][0]["id"] == "config", tcp["causes"]
    advice = tcp["causes"][0]["advice"]
    assert f"/etc/hosts line 4 pins {HOST} to {OTHER_IP}" in advice
    assert f"DNS answers {SERVER_IP}" in advice


def test_without_the_pin_dns_decides_and_the_check_passes(pem: tuple[Path, Path, Path]
                                                         ) -> None:
    require()
    with netns.lab() as lab:
        stages = check(lab_with(lab, pem, "", {"behaviour": "answer"}), pem[0])
    dns = stages["dns"]
    assert dns["evidence"]["os_source"] == "dns" and dns["evidence"]["dns_agrees"] is True
    assert dns["evidence"]["addresses"] == [SERVER_IP]
    assert "hosts_file" not in dns["evidence"]
    assert [stages[s]["status"] for s in ("dns", "tcp", "tls")] == ["pass"] * 3, stages


def test_a_dangling_cname_is_the_platforms_dns(pem: tuple[Path, Path, Path]) -> None:
    require()
    with netns.lab() as lab:
        client = lab_with(lab, pem, "", {"behaviour": "nxdomain", "aliases": [GATEWAY]})
        stages = check(client, pem[0])
    dns = stages["dns"]
    assert dns["status"] == "fail" and dns["condition"] == "dns_lookup_failed"
    assert [c["id"] for c in dns["causes"]] == ["platform", "dns_service", "config"]
    assert dns["evidence"]["chain"] == [
        {"name": HOST, "target": GATEWAY, "status": "ok"},
        {"name": GATEWAY, "target": None, "status": "nxdomain"}]
    assert dns["evidence"]["os_error"].startswith("EAI_NONAME")
    assert f"alias of {GATEWAY}, which does not exist" in dns["causes"][0]["advice"]


def test_a_hosts_file_disagreeing_with_dns_is_reported(pem: tuple[Path, Path, Path]) -> None:
    """The hosts file gives the working server while DNS says another address: the check
    goes where the system goes, and says DNS disagrees."""
    require()
    with netns.lab() as lab:
        client = lab_with(lab, pem, f"{SERVER_IP}\t{HOST}\n",
                          {"behaviour": "answer", "ipv4": [OTHER_IP]})
        stages = check(client, pem[0])
    dns = stages["dns"]
    assert dns["status"] == "pass" and dns["evidence"]["dns_agrees"] is False
    assert dns["evidence"]["dns_addresses"] == [OTHER_IP]
    assert f"(from /etc/hosts line 4; DNS answers {OTHER_IP} instead)" in dns["summary"]
    assert stages["tcp"]["status"] == "pass"
    assert stages["tcp"]["evidence"]["address"] == SERVER_IP


def test_a_silent_dns_server_is_the_dns_service_and_never_holds_the_check_up(
        pem: tuple[Path, Path, Path]) -> None:
    """glibc waits 5 s twice for a silent server here; the check reports within its own
    deadline and exits at once (getaddrinfo's thread is abandoned, not joined)."""
    require()
    with netns.lab() as lab:
        client = lab_with(lab, pem, "", {"behaviour": "silent"},
                          resolv_conf=f"nameserver {SERVER_IP}\noptions timeout:5 attempts:2\n")
        start = time.monotonic()
        done = check_run(client, pem[0])
        took = time.monotonic() - start
    dns = json.loads(done.stdout)["stages"][0]
    assert dns["condition"] == "dns_lookup_failed" and dns["causes"][0]["id"] == "dns_service"
    assert dns["evidence"]["os_error"].startswith("no answer from the system's resolver")
    assert dns["duration_ms"] < 2 * 1500 + 500  # the stage's deadline, in ms
    assert took < 8.0, f"the check took {took:.1f} s: something waited for glibc"
