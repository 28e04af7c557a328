"""A check that follows a proxy auto-configuration script (PAC): the route it chose, the routes
it passed over, a PAC that gives no route, a WPAD candidate that is not there, secrets in a
PAC URL, and what a check without a PAC never loads.

Real parts: the sandbox's API, proxy and DNS server, PACs served over HTTP on 127.0.0.1 by the
sandbox's PAC server, evaluated by pypac in a process of its own.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assure_doctor import apikey, proxyconfig, trust
from assure_doctor.engine import run_check
from assure_doctor.options import CheckOptions
from assure_doctor.pac.location import PacLocation, PacSource, from_flag
from assure_doctor.sandbox.pacserver import PacReply, PacServer, script_returning
from assure_doctor.sandbox.stack import Sandbox
from assure_doctor.target import from_url, parse_resolver
from tests.conftest import FAST, clean_env, run_cli

pytestmark = pytest.mark.slow  # whole checks against the sandbox, PAC evaluator processes


@pytest.fixture
def server() -> Iterator[PacServer]:
    with PacServer() as started:
        yield started


def check(sandbox: Sandbox, pac: str, *extra: str) -> dict[str, object]:
    args = [a for a in sandbox.check_args() if a not in ("--no-proxy", "--pac")
            and a != sandbox.pac_url]
    run = run_cli("check", *args, *FAST, "--pac", pac, "--json", *extra)
    assert run.returncode in (0, 1), run.stderr
    assert "Traceback" not in run.stderr and sandbox.key not in run.stdout + run.stderr
    document: dict[str, object] = run.json()
    return document


def stages(document: dict[str, object]) -> dict[str, dict[str, object]]:
    return {stage["name"]: stage for stage in document["stages"]}  # type: ignore[attr-defined]


def test_the_pacs_fallback_is_recorded_and_the_dead_proxy_never_reached_the_api(
        sandbox_factory: Callable[[str], Sandbox]) -> None:
    sandbox = sandbox_factory("pac-fallback")
    assert sandbox.pac_url is not None and sandbox.proxy is not None
    found = stages(check(sandbox, sandbox.pac_url))
    pac = found["proxy"]["evidence"]["pac"]  # type: ignore[index]
    port = sandbox.proxy_port
    assert pac["chosen"] == f"PROXY 127.0.0.1:{port}"
    assert pac["skipped"] == [{"route": f"PROXY 127.0.0.2:{port}",
                               "reason": "Connection refused (ECONNREFUSED)"}]
    assert pac["rule"] == f"PROXY 127.0.0.2:{port}; PROXY 127.0.0.1:{port}; DIRECT"
    assert [c["method"] for c in sandbox.proxy.log.connects] == ["CONNECT"]
    assert sandbox.traffic.connections == 1 and sandbox.traffic.keyed == 1


def test_a_pac_that_throws_fails_the_proxy_stage_and_nothing_is_sent(
        sandbox_factory: Callable[[str], Sandbox]) -> None:
    sandbox = sandbox_factory("pac-broken")
    assert sandbox.pac_url is not None
    document = check(sandbox, sandbox.pac_url)
    found = stages(document)
    assert [found[name]["status"] for name in found] == ["skip", "skip", "fail", "skip",
                                                         "skip", "skip"]
    proxy = found["proxy"]
    assert proxy["condition"] == "proxy_connect_failed"
    assert [c["id"] for c in proxy["causes"]] == ["proxy", "config"]  # type: ignore[union-attr]
    pac = proxy["evidence"]["pac"]  # type: ignore[index]
    assert pac["source"] == "--pac" and pac["url"] == sandbox.pac_url and pac["rule"] is None
    assert "pac-broken: the script fails" in pac["error"]
    advice = proxy["causes"][0]["advice"]  # type: ignore[index]
    assert sandbox.pac_url in advice and "the --pac option" in advice
    assert sandbox.traffic.connections == 0 and sandbox.traffic.keyed == 0


def test_a_slow_pac_server_is_a_fetch_timeout_with_the_firewall_second(
        healthy: Sandbox, server: PacServer) -> None:
    # The server waits longer than the check's timeout (1.5 s) before it answers.
    server.set("/slow.pac", PacReply(script_returning("DIRECT"), delay=30))
    proxy = stages(check(healthy, server.url("/slow.pac")))["proxy"]
    assert proxy["status"] == "fail" and proxy["condition"] == "proxy_connect_failed"
    assert [c["id"] for c in proxy["causes"]] == ["proxy", "firewall",  # type: ignore[union-attr]
                                                  "config"]
    assert "in time" in proxy["causes"][0]["advice"]  # type: ignore[index]
    assert 1500 <= proxy["duration_ms"] < 10_000  # type: ignore[operator]


def test_a_pac_naming_only_socks_is_no_route_and_says_so(healthy: Sandbox,
                                                         server: PacServer) -> None:
    server.set("/socks.pac", PacReply(script_returning("SOCKS5 127.0.0.1:1080")))
    proxy = stages(check(healthy, server.url("/socks.pac")))["proxy"]
    assert proxy["condition"] == "proxy_connect_failed"
    pac = proxy["evidence"]["pac"]  # type: ignore[index]
    assert pac["rule"] == "SOCKS5 127.0.0.1:1080"
    assert pac["skipped"][0]["route"] == "SOCKS5 127.0.0.1:1080"
    assert "'SOCKS5 127.0.0.1:1080'" in proxy["causes"][0]["advice"]  # type: ignore[index]
    assert healthy.traffic.connections == 0


def test_a_pac_choosing_direct_skips_the_proxy_stage_with_its_evidence(
        healthy: Sandbox, server: PacServer) -> None:
    server.set("/direct.pac", PacReply(script_returning("DIRECT")))
    document = check(healthy, server.url("/direct.pac"))
    assert document["ok"] is True
    proxy = stages(document)["proxy"]
    assert proxy["status"] == "skip" and "chose DIRECT" in proxy["summary"]  # type: ignore[operator]
    assert proxy["evidence"]["pac"]["chosen"] == "DIRECT"  # type: ignore[index]
    assert healthy.traffic.connections == 1


def test_a_pac_urls_password_is_shown_nowhere(healthy: Sandbox, server: PacServer,
                                              tmp_path: Path) -> None:
    secret = "pac-Secret-77"
    server.set("/proxy.pac", PacReply(script_returning("DIRECT")))
    url = server.url().replace("http://", f"http://alice:{secret}@")
    log = tmp_path / "doctor.log"
    args = [a for a in healthy.check_args() if a != "--no-proxy"]
    for extra in (["--json"], [], ["-v"]):
        run = run_cli("check", *args, *FAST, "--pac", url, "--log-file", str(log), *extra)
        assert run.returncode == 0, run.stdout + run.stderr
        assert secret not in run.stdout + run.stderr, extra
        assert "alice:****@" in run.stdout, extra
    assert secret not in log.read_text()
    assert server.requests[0].headers["authorization"].startswith("Basic ")


def test_a_wpad_candidate_that_is_not_there_leaves_the_route_direct(healthy: Sandbox,
                                                                    server: PacServer) -> None:
    """As discovery does: a WPAD URL that answers 404 is no error, and no PAC applies."""
    wpad = PacLocation(PacSource.WPAD, server.url("/wpad.dat"))
    options = CheckOptions(timeout=1.5, retry_pause=0.1,
                           resolvers=(parse_resolver(healthy.resolver),),
                           trust=trust.load(str(healthy.ca_bundle)),
                           proxy=proxyconfig.ProxyRules(pac=(wpad,)))
    report = asyncio.run(run_check(from_url(healthy.url), options,
                                   apikey.from_file(healthy.key_file)))
    assert report.ok, report.to_dict()
    proxy = report.stage("proxy")
    assert proxy is not None and proxy.status.value == "skip"
    assert "no PAC at the 1 WPAD location(s) tried" in proxy.summary
    assert "pac" not in proxy.evidence
    assert [r.path for r in server.requests] == ["/wpad.dat"]


def test_the_flag_given_pac_is_in_the_command_the_report_repeats(healthy: Sandbox,
                                                                  server: PacServer) -> None:
    server.set("/proxy.pac", PacReply(script_returning("DIRECT")))
    location = from_flag(server.url())
    args = [a for a in healthy.check_args() if a != "--no-proxy"]
    run = run_cli("check", *args, *FAST, "--pac", location.text)
    assert run.stdout.splitlines()[0].endswith(f"--pac {location.shown} --resolver "
                                               f"{healthy.resolver} --ca-bundle "
                                               f"{healthy.ca_bundle}")


# --- a check without a PAC loads nothing of it ------------------------------------------------
WRAPPER = """
import json, sys
out, argv = sys.argv[1], sys.argv[2:]
from assure_doctor import cli
try:
    cli.main(argv)
except SystemExit:
    pass
json.dump(sorted(sys.modules), open(out, "w"))
"""
PAC_MODULES = ("assure_doctor.pac", "pypac", "dukpy", "publicsuffixlist",
               "assure_doctor.probes.pacroute")


def modules_after(tmp_path: Path, *argv: str) -> set[str]:
    out = tmp_path / "modules.json"
    subprocess.run([sys.executable, "-c", WRAPPER, str(out), *argv], env=clean_env(),
                   capture_output=True, timeout=60, check=False)
    loaded: set[str] = set(json.loads(out.read_text()))
    assert "assure_doctor.cli" in loaded  # it ran
    return loaded


def pac_modules(loaded: set[str]) -> set[str]:
    return {name for name in loaded if name.startswith(PAC_MODULES)}


def test_help_and_a_check_without_a_pac_load_no_pac_module(tmp_path: Path,
                                                           healthy: Sandbox) -> None:
    assert pac_modules(modules_after(tmp_path, "--help")) == set()
    assert pac_modules(modules_after(tmp_path, "check", "--help")) == set()
    loaded = modules_after(tmp_path, "check", *healthy.check_args(), "--json")
    assert "assure_doctor.engine" in loaded and healthy.traffic.keyed == 1
    assert pac_modules(loaded) == set()


def test_a_check_with_a_pac_loads_the_evaluator_only_in_its_own_process(
        tmp_path: Path, healthy: Sandbox, server: PacServer) -> None:
    server.set("/proxy.pac", PacReply(script_returning("DIRECT")))
    args = [a for a in healthy.check_args() if a != "--no-proxy"]
    loaded = modules_after(tmp_path, "check", *args, "--pac", server.url(), "--json")
    assert "assure_doctor.probes.pacroute" in loaded and healthy.traffic.keyed == 1
    assert not {"pypac", "dukpy"} & {name.split(".")[0] for name in loaded}


def test_a_pac_over_https_is_trusted_as_the_systems_own_stack_trusts_it(
        sandbox_factory: Callable[[str], Sandbox], tmp_path: Path) -> None:
    """The PAC's server has a certificate from an internal CA that only the machine's store
    holds (SSL_CERT_FILE here; the Windows or macOS store there): the system fetches the PAC
    with it, and so does the check, though neither certifi nor --ca-bundle knows that CA."""
    import ssl
    from datetime import UTC, datetime, timedelta

    from assure_doctor.sandbox import pki

    sandbox = sandbox_factory("healthy")
    internal = pki.make_ca("Internal PAC CA 42")
    now = datetime.now(UTC)
    leaf = pki.make_leaf(["127.0.0.1"], internal, now - timedelta(days=1),
                         now + timedelta(days=30))
    (tmp_path / "cert.pem").write_bytes(leaf.cert_pem)
    (tmp_path / "key.pem").write_bytes(leaf.key_pem)
    (tmp_path / "store.pem").write_bytes(internal.cert_pem)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    with PacServer(tls=tls) as server:
        server.set("/proxy.pac", PacReply(script_returning("DIRECT")))
        args = [a for a in sandbox.check_args() if a != "--no-proxy"]
        trusted = run_cli("check", *args, *FAST, "--pac", server.url(), "--json",
                          env=clean_env(SSL_CERT_FILE=str(tmp_path / "store.pem")))
        untrusted = run_cli("check", *args, *FAST, "--pac", server.url(), "--json")
    proxy = stages(trusted.json())["proxy"]
    assert trusted.returncode == 0, proxy
    assert proxy["evidence"]["pac"]["rule"] == "DIRECT"  # type: ignore[index]
    refused = stages(untrusted.json())["proxy"]
    assert refused["condition"] == "proxy_connect_failed"
    assert "certificate" in refused["evidence"]["pac"]["error"]  # type: ignore[index]
