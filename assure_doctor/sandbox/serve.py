"""`assure-doctor sandbox`: serve one scenario until interrupted, and say how to check it."""

from __future__ import annotations

import shlex
import signal
import sys
import threading

from assure_doctor.sandbox import proxyserver
from assure_doctor.sandbox.scenarios import SCENARIOS
from assure_doctor.sandbox.stack import HOST, Sandbox


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
    with Sandbox(name) as sandbox:
        scenario = sandbox.scenario
        print(f"assure-doctor sandbox: scenario {scenario.name}: {scenario.guide_row}")
        print(f"  DNS    udp/{sandbox.resolver} answers for {HOST}")
        print(f"  HTTPS  127.0.0.1:{sandbox.port}{' and [::1]' if sandbox.ipv6 else ''} "
              f"(CA {sandbox.ca_bundle})")
        if sandbox.issuer_url:
            print(f"  AIA    {sandbox.issuer_url} (the issuing CA's certificate, not sent by "
                  "the API)")
        if sandbox.proxy_url:
            login = (f"; it takes Basic {proxyserver.USER}:{proxyserver.PASSWORD}"
                     if scenario.proxy == "basic" else "")
            print(f"  PROXY  {sandbox.proxy_url} ({scenario.proxy}{login})")
        print(f"  expect {scenario.expect}")
        print("Check it with:")
        print(f"  assure-doctor check {shlex.join(sandbox.check_args())}")
        print("Press Ctrl-C to stop.", flush=True)
        stop.wait()
    return 0
