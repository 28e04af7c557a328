"""`assure-doctor demo`: start the sandbox in-process and diagnose its faults, one by one.

A scenario the operating system's resolver must decide runs in namespaces of its own
(`isolation`), or is skipped, with the reason, where they cannot be made.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from assure_doctor import apikey, proxyconfig, trust
from assure_doctor.engine import run_check
from assure_doctor.errors import InputError
from assure_doctor.history.record import Record
from assure_doctor.history.store import History
from assure_doctor.options import CheckOptions
from assure_doctor.render import human
from assure_doctor.sandbox import isolation
from assure_doctor.sandbox.scenarios import DEMO_SET, SCENARIOS
from assure_doctor.sandbox.stack import Sandbox
from assure_doctor.target import from_url, parse_resolver


def demo(name: str | None) -> int:
    """Run the scenarios; exit 0 when every diagnosis made is the expected one."""
    if name is None:
        names = list(DEMO_SET)
    elif name == "all":
        names = list(SCENARIOS)
    elif name in SCENARIOS:
        names = [name]
    else:
        raise InputError(f"scenario {name!r}: unknown; see `assure-doctor sandbox --list`")
    colour = human.use_colour(sys.stdout)
    results = {n: _one(n, colour) for n in names}
    misses = [n for n, met in results.items() if met is False]
    skipped = [n for n, met in results.items() if met is None]
    run = len(names) - len(skipped)
    noun = "scenario" if run == 1 else "scenarios"
    print(f"{run - len(misses)} of {run} {noun} diagnosed as expected"
          + (f"; not: {', '.join(misses)}" if misses else "")
          + (f"; skipped: {', '.join(skipped)}" if skipped else ""))
    return 1 if misses else 0


def _one(name: str, colour: bool) -> bool | None:
    """Whether the diagnosis was the expected one; None: skipped."""
    if SCENARIOS[name].isolated:
        return isolation.demo(name, colour)
    return diagnose(name, colour)


def diagnose(name: str, colour: bool) -> bool:
    """One scenario's sandbox and check, in this process; prints the report."""
    with Sandbox(name) as sandbox:
        scenario = sandbox.scenario
        print(f"━━ scenario {scenario.name}: {scenario.guide_row}", flush=True)
        # Short waits, so that a demo of every fault takes seconds, not minutes. Isolated,
        # the system's resolver decides, in the scenario's namespace.
        pac = None
        if sandbox.pac_url:
            from assure_doctor.pac.location import from_flag

            pac = from_flag(sandbox.pac_url)
        proxy = proxyconfig.load(None if pac else sandbox.proxy_url,
                                 sandbox.proxy_url is None and pac is None, {}, pac=pac)
        resolvers = () if scenario.isolated else (parse_resolver(sandbox.resolver),)
        options = CheckOptions(timeout=2.0, retries=1, retry_pause=0.5, resolvers=resolvers,
                               trust=trust.load(str(sandbox.ca_bundle)), proxy=proxy)
        key = apikey.from_file(sandbox.key_file)
        target = from_url(sandbox.url)
        # A path history of its own, thrown away after: a good check, then the change.
        with tempfile.TemporaryDirectory(prefix="assure-demo-") as state:
            store, record = History(Path(state)), Record()
            for _ in range(scenario.checks):
                report = asyncio.run(run_check(target, options, key, history=record))
                record, _new = store.keep(target.url, record, report, datetime.now(UTC))
    sys.stdout.write(human.render(report, options, colour=colour))
    met = scenario.expect.met_by(report.to_dict())
    print(f"expected: {scenario.expect} … {'as expected' if met else 'NOT AS EXPECTED'}\n",
          flush=True)
    return met
