"""Proxies end to end through the command line: where the setting comes from, NO_PROXY,
credentials kept secret, an unreachable proxy, bad proxy input, and the monitor's keys."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assure_doctor.errors import InputError
from assure_doctor.monitor import config as monitor_config
from assure_doctor.options import CheckOptions
from assure_doctor.sandbox import proxyserver
from assure_doctor.sandbox.stack import HOST, Sandbox
from tests.conftest import FAST, clean_env, run_cli

pytestmark = pytest.mark.slow  # whole checks of the sandbox through its proxy


def direct_args(sandbox: Sandbox) -> list[str]:
    """The sandbox's target options without --proxy / --no-proxy: the environment decides."""
    args = sandbox.check_args()
    if "--proxy" in args:
        index = args.index("--proxy")
        return args[:index] + args[index + 2:]
    return [a for a in args if a != "--no-proxy"]


def stages(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {stage["name"]: stage for stage in document["stages"]}


def test_https_proxy_from_the_environment_is_honoured_though_direct_works(
        sandbox_factory: Callable[[str], Sandbox]) -> None:
    """The issue's trap: a direct route exists, but every proxy-honouring client gets 403."""
    sandbox = sandbox_factory("proxy-denied")
    assert sandbox.proxy_url is not None
    env = clean_env(HTTPS_PROXY=sandbox.proxy_url)
    run = run_cli("check", *direct_args(sandbox), *FAST, "--json", env=env)
    found = stages(run.json())
    assert run.returncode == 1
    assert found["proxy"]["condition"] == "proxy_refused"
    assert found["proxy"]["evidence"]["source"] == "HTTPS_PROXY"
    assert "web filter" in found["proxy"]["evidence"]["error_page_title"]

    direct = run_cli("check", *direct_args(sandbox), *FAST, "--json", "--no-proxy", env=env)
    assert direct.returncode == 0, direct.stdout
    assert stages(direct.json())["proxy"]["summary"].startswith("direct: no proxy applies")


def test_no_proxy_exempts_the_api_host(sandbox_factory: Callable[[str], Sandbox]) -> None:
    sandbox = sandbox_factory("proxy-denied")
    assert sandbox.proxy_url is not None
    env = clean_env(https_proxy=sandbox.proxy_url, NO_PROXY="example.com,.sheassure.net")
    run = run_cli("check", *direct_args(sandbox), *FAST, "--json", env=env)
    proxy = stages(run.json())["proxy"]
    assert run.returncode == 0
    assert proxy["status"] == "skip" and proxy["evidence"]["source"] == "NO_PROXY"
    assert sandbox.proxy is not None and sandbox.proxy.log.connects == []


def test_proxy_credentials_never_show(sandbox_factory: Callable[[str], Sandbox],
                                      log_file: Path) -> None:
    sandbox = sandbox_factory("proxy-auth-basic")
    url = f"http://{proxyserver.USER}:{proxyserver.PASSWORD}@127.0.0.1:{sandbox.proxy_port}"
    run = run_cli("check", *direct_args(sandbox), *FAST, "--json", "-v", "--log-file",
                  str(log_file), env=clean_env(HTTPS_PROXY=url))
    assert run.returncode == 0, run.stdout
    proxy = stages(run.json())["proxy"]
    assert proxy["evidence"]["proxy"] == (
        f"http://{proxyserver.USER}:****@127.0.0.1:{sandbox.proxy_port}")
    assert sandbox.proxy is not None and all(c["credentials"]
                                             for c in sandbox.proxy.log.connects)
    for text in (run.stdout, run.stderr, log_file.read_text()):
        assert proxyserver.PASSWORD not in text
        assert "c2FuZGJveC11c2Vy" not in text  # the Basic token's start
        assert sandbox.key not in text


def test_tls_clock_and_ping_all_go_through_the_tunnel(
        sandbox_factory: Callable[[str], Sandbox]) -> None:
    sandbox = sandbox_factory("proxy-open")
    run = run_cli("check", *sandbox.check_args(), *FAST, "--json")
    found = stages(run.json())
    assert run.returncode == 0, run.stdout
    assert found["dns"]["evidence"]["api_host"]["status"] == "fail"  # only the proxy resolves
    assert sandbox.proxy is not None
    authorities = {c["authority"] for c in sandbox.proxy.log.connects}
    assert authorities == {f"{HOST}:{sandbox.port}"}
    assert [r["keyed"] for r in sandbox.traffic.requests] == [False, True]  # clock, ping
    assert sandbox.traffic.keyed == 1


def test_an_unreachable_proxy_is_named(healthy: Sandbox) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        port = sock.getsockname()[1]
        run = run_cli("check", *direct_args(healthy), *FAST, "--json", "--proxy",
                      f"http://127.0.0.1:{port}")
    found = stages(run.json())
    assert run.returncode == 1
    assert found["tcp"]["condition"] == "proxy_connect_failed"
    assert found["tcp"]["evidence"]["port"] == port
    assert found["tcp"]["causes"][0]["id"] == "proxy"
    assert found["proxy"]["status"] == "skip"


def test_a_proxy_name_that_does_not_resolve_fails_at_dns(healthy: Sandbox) -> None:
    run = run_cli("check", *direct_args(healthy), *FAST, "--json", "--proxy",
                  "http://proxy.nowhere.invalid:3128")
    dns = stages(run.json())["dns"]
    assert run.returncode == 1
    assert dns["condition"] == "proxy_connect_failed"
    assert [c["id"] for c in dns["causes"]][:1] == ["proxy"]


@pytest.mark.parametrize(("env", "args", "named"), [
    ({}, ["--proxy", "https://proxy:443"], "--proxy"),
    ({}, ["--proxy", "http://proxy:8080", "--no-proxy"], "--no-proxy"),
    ({"HTTPS_PROXY": "socks5://user:hunter2-secret@proxy:1080"}, [], "HTTPS_PROXY"),
    ({"ALL_PROXY": "http://proxy:notaport"}, [], "ALL_PROXY"),
])
def test_bad_proxy_input_is_one_line_and_exit_2(env: dict[str, str], args: list[str],
                                                named: str) -> None:
    run = run_cli("check", "--stack", "uk2", "--no-ping", *args, env=clean_env(**env))
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and named in run.stderr
    assert "hunter2" not in run.stderr and "Traceback" not in run.stderr


def test_monitor_targets_take_proxy_and_no_proxy(tmp_path: Path) -> None:
    config = tmp_path / "targets.toml"
    config.write_text('[[targets]]\nstack = "uk2"\nno_ping = true\n'
                      'proxy = "http://svc:pw-Secret-9@proxy.corp:8080"\n'
                      '[[targets]]\nstack = "anz"\nno_ping = true\nno_proxy = true\n'
                      '[[targets]]\nstack = "na"\nno_ping = true\n')
    base = CheckOptions(proxy=monitor_config.proxyconfig.load(None, False, {
        "HTTPS_PROXY": "http://env-proxy:3128"}))
    uk2, anz, na = monitor_config.load_file(str(config), base)[0]
    route = uk2.options.proxy.route(uk2.target.host, 443)
    assert route.proxy is not None and route.proxy.masked_url == "http://svc:****@proxy.corp:8080"
    assert anz.options.proxy.route(anz.target.host, 443).proxy is None
    assert na.options.proxy == base.proxy
    config.write_text('[[targets]]\nstack = "uk2"\nno_proxy = "yes"\n')
    with pytest.raises(InputError, match="no_proxy"):
        monitor_config.load_file(str(config), base)
