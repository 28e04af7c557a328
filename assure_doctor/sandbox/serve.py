"""`assure-doctor sandbox`: serve one scenario until interrupted, and say how to check it."""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Protocol

from assure_doctor.sandbox import isolation, proxyserver
from assure_doctor.sandbox.scenarios import SCENARIOS, Scenario
from assure_doctor.sandbox.stack import HOST, Sandbox


class _Served(Protocol):
    """What is printed of a sandbox, served here or inside its namespaces."""

    scenario: Scenario
    port: int
    ipv6: bool
    ca_bundle: Path

    @property
    def resolver(self) -> str: ...

    @property
    def proxy_url(self) -> str | None: ...

    @property
    def pac_url(self) -> str | None: ...

    @property
    def enter(self) -> tuple[str, ...]: ...

    def check_args(self) -> list[str]: ...


def list_scenarios() -> str:
    width = max(map(len, SCENARIOS))
    lines = [f"{name:<{width}}  {s.guide_row}\n{'':<{width}}  expect: {s.expect}"
             for name, s in SCENARIOS.items()]
    return "\n".join(lines) + "\n"


def serve(name: str, list_only: bool = False) -> int:
    if list_only:
        sys.stdout.write(list_scenarios())
        return 0
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    isolated = name in SCENARIOS and SCENARIOS[name].isolated
    with isolation.Remote(name) if isolated else Sandbox(name) as sandbox:
        _describe(sandbox)
        stop.wait()
    return 0


def _describe(sandbox: _Served) -> None:
    scenario = sandbox.scenario
    print(f"assure-doctor sandbox: scenario {scenario.name}: {scenario.guide_row}")
    if scenario.isolated:
        print(f"  NAMESPACES  its own mount and network namespaces: /etc/hosts pins {HOST} "
              f"to {scenario.hosts_pin}; resolv.conf names the DNS server below")
    print(f"  DNS    udp/{sandbox.resolver} answers for {HOST}")
    print(f"  HTTPS  127.0.0.1:{sandbox.port}{' and [::1]' if sandbox.ipv6 else ''} "
          f"(CA {sandbox.ca_bundle})")
    issuer_url = getattr(sandbox, "issuer_url", None)  # a sandbox served here has one
    if issuer_url:
        print(f"  AIA    {issuer_url} (the issuing CA's certificate, not sent by the API)")
    if sandbox.proxy_url:
        login = (f"; it takes Basic {proxyserver.USER}:{proxyserver.PASSWORD}"
                 if scenario.proxy == "basic" else "")
        print(f"  PROXY  {sandbox.proxy_url} ({scenario.proxy}{login})")
    if sandbox.pac_url:
        print(f"  PAC    {sandbox.pac_url} ({scenario.pac})")
    print(f"  expect {scenario.expect}")
    print("Check it with" + (" (inside its namespaces):" if sandbox.enter else ":"))
    print(f"  {shlex.join([*sandbox.enter, 'assure-doctor', 'check', *sandbox.check_args()])}")
    print("Press Ctrl-C to stop.", flush=True)
