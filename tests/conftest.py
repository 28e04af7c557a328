"""Shared fixtures: the sandbox (a real DNS server and real HTTPS on loopback) and the CLI."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from assure_doctor.sandbox import isolation
from assure_doctor.sandbox.scenarios import SCENARIOS, Scenario
from assure_doctor.sandbox.stack import Sandbox

# Short waits keep the suite fast; every fault still takes its real path.
FAST = ["--timeout", "1.5", "--retry-pause", "0.1"]

# The fast tier (`pytest -m "not slow"`) leaves out what starts servers or processes to run
# a whole check or monitor. Whole files of such tests say so with a module-level `pytestmark`;
# elsewhere a test is slow when it uses one of these fixtures (a sandbox, a TUI snapshot, the
# traceroute's namespace lab, nginx), or marks itself.
SLOW_FIXTURES = frozenset({"sandbox_factory", "snap_compare", "lab_chain", "nginx"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@dataclass
class Run:
    """A finished `assure-doctor` process."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)

    def stage(self, name: str) -> dict[str, Any]:
        """One stage of the `check --json` document, by name."""
        found: dict[str, Any] = next(s for s in self.json()["stages"] if s["name"] == name)
        return found


# The machine's own proxy settings must not steer the tests; a test sets them when it means to.
_PROXY_VARIABLES = {"https_proxy", "all_proxy", "no_proxy"}

# --- asyncio hygiene ------------------------------------------------------------------------
# Event loops made in this process run in asyncio's debug mode (subprocesses do not: clean_env
# drops the variable, as debug mode's slow-callback lines would change what they print), and
# a test fails when asyncio reports an exception nobody retrieved, in any thread's loop.
# Unraisable exceptions (in __del__, in callbacks) fail too: pyproject's filterwarnings.
os.environ["PYTHONASYNCIODEBUG"] = "1"
UNRETRIEVED = ("exception was never retrieved",)  # "Future ..." and "Task ..."
_unretrieved: list[str] = []
_loops_made = [0]


def assert_hygienic(text: str, where: str) -> None:
    """Fail when a process wrote that an exception went unretrieved or was ignored."""
    for line in text.splitlines():
        if any(words in line for words in (*UNRETRIEVED, "Exception ignored in")):
            pytest.fail(f"{where}: {line[:300]}", pytrace=False)


def pytest_configure(config: pytest.Config) -> None:
    base = asyncio.BaseEventLoop
    handler, init = base.default_exception_handler, base.__init__

    def recording(self: asyncio.BaseEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if any(words in message for words in UNRETRIEVED):
            _unretrieved.append(f"{message}: {context.get('exception')!r}")
        handler(self, context)

    def counting(self: asyncio.BaseEventLoop) -> None:
        _loops_made[0] += 1
        init(self)

    base.default_exception_handler = recording  # type: ignore[method-assign]
    base.__init__ = counting  # type: ignore[method-assign, assignment]
    # Debug mode also logs every callback slower than 0.1 s: on a busy machine that is noise
    # in what a test reads, not a finding.
    logging.getLogger("asyncio").addFilter(
        lambda record: not str(record.msg).startswith("Executing "))


@pytest.fixture(autouse=True)
def secrets_of_this_test_only() -> Iterator[None]:
    """The secrets a test registers (every URL password is, even one refused as bad input)
    are forgotten after it: a test's short "pw" must not mask another test's text."""
    from assure_doctor import redact

    with redact._lock:
        before = set(redact._secrets)
    yield
    with redact._lock:
        redact._secrets.intersection_update(before)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The modules and tables imported by now live as long as the session: frozen out of the
    collector's sight, so the collection after each test that made an event loop (below)
    scans what tests made, not ~170,000 objects of imports (~100 ms each time)."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def asyncio_hygiene() -> Iterator[None]:
    """After a test that made an event loop, collect the garbage (a future is reported when it
    is freed) and fail on any exception asyncio says nobody retrieved."""
    made = _loops_made[0]
    yield
    if _loops_made[0] != made or _unretrieved:
        gc.collect()
    if _unretrieved:
        found = list(_unretrieved)
        _unretrieved.clear()
        pytest.fail(f"asyncio: {'; '.join(found[:3])}", pytrace=False)


def needs(binary: str, package: str | None = None, where: str | None = None) -> str:
    """The path of a Debian binary a test needs (`where`: a directory beside PATH, e.g.
    /usr/sbin). `.ci/run` installs it, so in CI a missing one fails; elsewhere it skips."""
    path = shutil.which(binary) or (shutil.which(binary, path=where) if where else None)
    if path is None:
        message = (f"{binary} is not installed (Debian's {package or binary} package; "
                   ".ci/run installs it)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


# Every check keeps a path history in the platform's state dir: never the real one in tests.
_STATE_HOME = tempfile.mkdtemp(prefix="assure-tests-state-")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ASSURE_API_KEY", "NO_COLOR", "PYTHONASYNCIODEBUG")
           and k.lower() not in _PROXY_VARIABLES}
    env["XDG_STATE_HOME"] = _STATE_HOME
    env.update(extra)
    return env


@pytest.fixture(autouse=True)
def _private_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process faces (cli.main, the TUI) keep their history in the tests' state dir."""
    monkeypatch.setenv("XDG_STATE_HOME", _STATE_HOME)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
            enter: Sequence[str] = ()) -> Run:
    """`assure-doctor ARGS`; `enter`: a prefix that runs it elsewhere (a sandbox's namespaces)."""
    import time

    start = time.monotonic()
    done = subprocess.run([*enter, sys.executable, "-m", "assure_doctor", *args],
                          capture_output=True, text=True,
                          env=env if env is not None else clean_env(), timeout=timeout)
    assert_hygienic(done.stderr, "assure-doctor's stderr")
    return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - start)


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[[str | Scenario], Sandbox]]:
    """Start sandboxes by scenario name; all are stopped after the test. A scenario the
    system's resolver decides is served in namespaces of its own (run its check with
    `enter=sandbox.enter`), or skipped with the reason where they cannot be made."""
    started: list[Sandbox | isolation.Remote] = []

    def start(name: str | Scenario) -> Sandbox:
        scenario = SCENARIOS[name] if isinstance(name, str) else name
        if scenario.isolated:
            reason = isolation.unavailable()
            if reason is not None:
                pytest.skip(f"scenario {name}: {reason}")
            remote = isolation.Remote(scenario.name).start()
            started.append(remote)
            return remote  # type: ignore[return-value]  # the same face for the tests
        sandbox = Sandbox(name).start()
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def healthy(sandbox_factory: Callable[[str], Sandbox]) -> Sandbox:
    return sandbox_factory("healthy")


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    return tmp_path / "doctor.log"
