"""The engine owns the stage list, time and failure: one list of stages, deadlines, contained
probe failures in every face, a missing key, and cancellation that leaves nothing running."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from assure_doctor import cli, engine, trust
from assure_doctor.apikey import ApiKey
from assure_doctor.kinds import Condition
from assure_doctor.model import Outcome, StageResult, Status
from assure_doctor.monitor.budget import PingBudget
from assure_doctor.monitor.config import WatchedTarget
from assure_doctor.monitor.watch import TargetWatch
from assure_doctor.options import CheckOptions
from assure_doctor.probes import registry, tcp
from assure_doctor.probes.stage import Context, Need, Probe
from assure_doctor.sandbox.stack import Sandbox
from assure_doctor.target import from_url, parse_resolver
from tests.conftest import FAST

SandboxFactory = Callable[[str], Sandbox]
ProbeRun = Callable[[Context], Awaitable[Outcome]]


def options_for(sandbox: Sandbox, **extra: object) -> CheckOptions:
    options = CheckOptions(timeout=1.5, retry_pause=0.1,
                           resolvers=(parse_resolver(sandbox.resolver),),
                           trust=trust.load(str(sandbox.ca_bundle)))
    return dataclasses.replace(options, **extra)  # type: ignore[arg-type]


def key_for(sandbox: Sandbox) -> ApiKey:
    return ApiKey(sandbox.key, "the sandbox key file")


def replace_run(monkeypatch: pytest.MonkeyPatch, name: str, run: ProbeRun) -> None:
    """Swap one stage's coroutine in the registry, as a buggy or hanging probe would be."""
    probes = tuple(dataclasses.replace(p, run=run) if p.name == name else p
                   for p in registry.PROBES)
    monkeypatch.setattr(registry, "PROBES", probes)


def raising(secret: str) -> ProbeRun:
    async def run(ctx: Context) -> Outcome:
        raise RuntimeError(f"probe bug while holding {secret}\x1b]0;pwned\x07")
    return run


async def hanging(ctx: Context) -> Outcome:
    await asyncio.Event().wait()  # never set: a probe stuck for good
    raise AssertionError("unreachable")


# --- the model refuses illegal states --------------------------------------------------------
def test_a_failure_without_a_condition_or_a_cause_cannot_be_made() -> None:
    with pytest.raises(ValueError):
        Outcome(Status.FAIL, "failed somehow")
    with pytest.raises(ValueError):
        Outcome(Status.WARN, "odd")
    with pytest.raises(ValueError):
        StageResult("dns", Status.FAIL, 1.0, "failed", Condition.DNS_LOOKUP_FAILED)
    with pytest.raises(ValueError):
        Outcome(Status.FAIL, "x", condition="no_such_condition")  # type: ignore[arg-type]
    assert Outcome(Status.FAIL, "x", condition="connect_failed").condition is (  # type: ignore[arg-type]
        Condition.CONNECT_FAILED)


# --- one list of stages ------------------------------------------------------------------------
def test_everything_that_lists_stages_derives_from_the_registry() -> None:
    # The contract's order; the keyless stages are every stage but the ping.
    assert registry.STAGE_NAMES == ("dns", "tcp", "proxy", "tls", "clock", "ping")
    assert registry.NETWORK_STAGES == ("dns", "tcp", "proxy", "tls", "clock")
    assert set(registry.TITLES) == set(registry.EVIDENCE_DEFAULTS) == set(registry.STAGE_NAMES)
    source = inspect.getsource(engine)
    for name in registry.STAGE_NAMES:
        assert f'"{name}"' not in source, f"the engine names the {name} stage"


def test_a_new_stage_is_one_entry_in_the_list(monkeypatch: pytest.MonkeyPatch,
                                              healthy: Sandbox) -> None:
    @dataclass(frozen=True)
    class HopFound:
        hops: int | None = None

        def evidence(self) -> dict[str, Any]:
            return {"hops": self.hops, "via": None}

    async def nothing(ctx: Context) -> Outcome:
        return Outcome(Status.SKIP, "nothing to do here", HopFound(3))

    extra = Probe("hop", "Hop", nothing, HopFound)
    probes = list(registry.PROBES)
    probes.insert(3, extra)
    monkeypatch.setattr(registry, "PROBES", tuple(probes))
    report = asyncio.run(engine.run_check(from_url(healthy.url), options_for(healthy),
                                          key_for(healthy)))
    assert [s.name for s in report.stages] == ["dns", "tcp", "proxy", "hop", "tls", "clock",
                                               "ping"]
    assert report.ok
    hop = report.stage("hop")
    assert hop is not None and hop.evidence == {"hops": 3, "via": None}
    assert [s.status for s in report.stages].count(Status.PASS) == 5


def test_one_rule_sets_every_stage_deadline() -> None:
    options = CheckOptions(timeout=2.0, retries=2, retry_pause=1.0, max_retry_after=30.0)
    ping, tcp_probe = registry.probe("ping"), registry.probe("tcp")
    assert engine.deadline(ping, options) == 3 * (2.0 + 30.0) + engine.DEADLINE_GRACE
    assert engine.deadline(tcp_probe, options) == 2 * 2.0 + engine.DEADLINE_GRACE
    with pytest.raises(ValueError):
        registry.probe("nope")


# --- time: a probe that overruns becomes a timeout finding -----------------------------------
def test_an_overrunning_stage_fails_with_its_timeout_condition(
        monkeypatch: pytest.MonkeyPatch, healthy: Sandbox) -> None:
    replace_run(monkeypatch, "tls", hanging)
    options = options_for(healthy, timeout=0.3)
    start = time.monotonic()
    report = asyncio.run(engine.run_check(from_url(healthy.url), options, key_for(healthy)))
    took = time.monotonic() - start
    tls = report.stage("tls")
    assert tls is not None and tls.status is Status.FAIL
    assert tls.condition is Condition.TLS_HANDSHAKE_FAILED and tls.causes
    limit = engine.deadline(registry.probe("tls"), options)
    assert tls.evidence["deadline_seconds"] == pytest.approx(limit)
    assert took < limit + 2
    assert [s.status for s in report.stages[4:]] == [Status.SKIP, Status.SKIP]


# --- failure: a probe's bug is contained -----------------------------------------------------
def test_a_probe_bug_becomes_internal_error_and_the_check_goes_on(
        monkeypatch: pytest.MonkeyPatch, healthy: Sandbox) -> None:
    replace_run(monkeypatch, "tcp", raising(healthy.key))
    report = asyncio.run(engine.run_check(from_url(healthy.url), options_for(healthy),
                                          key_for(healthy)))
    stage = report.stage("tcp")
    assert stage is not None and stage.status is Status.FAIL
    assert stage.condition is Condition.INTERNAL_ERROR
    assert stage.evidence["exception"] == "RuntimeError"
    assert healthy.key not in str(report.to_dict())
    assert "\x1b" not in stage.summary and "\\x1b" in stage.summary
    assert [c.id for c in stage.causes] == ["tool"]
    assert "report" in stage.causes[0].advice
    assert report.diagnosis is stage and not report.ok
    assert report.stage("dns").status is Status.PASS  # type: ignore[union-attr]
    assert healthy.traffic.keyed == 0


def test_check_survives_a_probe_bug(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str],
                                    healthy: Sandbox) -> None:
    replace_run(monkeypatch, "tls", raising(healthy.key))
    code = cli.main(["check", *healthy.check_args(), *FAST])
    out, err = capsys.readouterr()
    assert code == 1
    assert "internal_error" in out and "A bug in assure-doctor" in out
    assert "Traceback" not in out + err and healthy.key not in out + err


def test_the_tui_keeps_running_after_a_probe_bug(monkeypatch: pytest.MonkeyPatch,
                                                 healthy: Sandbox) -> None:
    from assure_doctor.tui.app import DoctorApp
    from tests.test_tui import SIZE, screen_text, settle

    replace_run(monkeypatch, "tls", raising(healthy.key))
    app = DoctorApp(from_url(healthy.url), options_for(healthy), key_for(healthy))

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            tls = app.results["tls"]
            assert tls is not None and tls.condition is Condition.INTERNAL_ERROR
            assert app.is_running
            await pilot.press("r")  # and it can run again
            await settle(pilot)
            assert app.is_running and "internal error" in screen_text(app)
            assert healthy.key not in screen_text(app)

    asyncio.run(main())


def test_the_monitor_publishes_a_probe_bug(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           healthy: Sandbox) -> None:
    replace_run(monkeypatch, "dns", raising(healthy.key))
    watched = WatchedTarget("sandbox", from_url(healthy.url), options_for(healthy), None)
    watch = TargetWatch(watched, PingBudget(tmp_path), ping_interval=900, daily_budget=100)
    asyncio.run(watch.network_cycle())
    diagnosis = watch.snapshot.diagnosis
    assert diagnosis is not None and diagnosis.name == "dns"
    assert diagnosis.condition is Condition.INTERNAL_ERROR
    assert watch.snapshot.up is False


# --- the key -----------------------------------------------------------------------------------
def test_without_a_key_the_network_stages_run_and_the_ping_is_not_checked(
        healthy: Sandbox) -> None:
    report = asyncio.run(engine.run_check(from_url(healthy.url), options_for(healthy), None))
    assert [s.status for s in report.stages] == [Status.PASS, Status.PASS, Status.SKIP,
                                                 Status.PASS, Status.PASS, Status.SKIP]
    ping = report.stage("ping")
    assert ping is not None and ping.condition is None
    assert ping.summary == "not checked: no API key (set ASSURE_API_KEY or --api-key-file)"
    assert healthy.traffic.keyed == 0
    no_ping = asyncio.run(engine.run_check(from_url(healthy.url),
                                           options_for(healthy, no_ping=True), None))
    assert "--no-ping" in no_ping.stages[-1].summary


def test_needs_are_generic() -> None:
    assert registry.probe("clock").needs == (Need.REACHABLE_SERVER,)
    assert Need.KEY in registry.probe("ping").needs
    assert all(Need.KEY not in registry.probe(n).needs for n in registry.NETWORK_STAGES)


# --- cancellation leaves nothing running -------------------------------------------------
class _Counter:
    """A TCP server that counts the connections that reach it."""

    def __init__(self) -> None:
        self.connections = 0

    async def start(self) -> asyncio.Server:
        async def handle(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            writer.close()

        return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize("cancel", [True, False])
def test_cancelling_mid_stage_stops_the_side_probe(
        cancel: bool, monkeypatch: pytest.MonkeyPatch,
        sandbox_factory: SandboxFactory) -> None:
    """tcp-timeout: the other-port probe fires after SIDE_PROBE_DELAY. Cancelled while the tcp
    stage runs, nothing of the check is left running and it never connects; not cancelled, it
    does (so the test can fail)."""
    sandbox = sandbox_factory("tcp-timeout")
    counter = _Counter()
    left: set[asyncio.Task[Any]] = set()

    async def main() -> None:
        server = await counter.start()
        side_port = server.sockets[0].getsockname()[1]
        monkeypatch.setattr(tcp, "SIDE_PORTS", (side_port,))
        tcp_started = asyncio.Event()

        def heard(stage: str, result: StageResult | None) -> None:
            if stage == "tcp" and result is None:
                tcp_started.set()

        check = asyncio.create_task(engine.run_check(
            from_url(sandbox.url), options_for(sandbox, timeout=2.0, no_ping=True), None,
            on_stage=heard))
        await tcp_started.wait()
        if cancel:
            check.cancel()
        with pytest.raises(asyncio.CancelledError) if cancel else contextlib.nullcontext():
            await check
        left.update(asyncio.all_tasks() - {asyncio.current_task()})  # type: ignore[operator]
        server.close()

    asyncio.run(main())
    assert not left
    assert counter.connections == (0 if cancel else 1)


def test_resolvers_are_built_once_per_configuration() -> None:
    """Work done once: the same options reuse one resolver; other servers get their own."""
    from assure_doctor.probes import dns as dns_probe
    from assure_doctor.target import parse_resolver

    one = (parse_resolver("127.0.0.1:5353"),)
    first = dns_probe._built(one, 2.0, None)
    assert dns_probe._built(one, 2.0, None) is first
    assert dns_probe._built((parse_resolver("[::1]:5353"),), 2.0, None) is not first
    resolver, described = first
    assert described == "127.0.0.1:5353" and resolver.lifetime == 2.0
