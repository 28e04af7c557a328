"""Run the stages in order, skip what cannot run, and rank each failure's causes.

The engine knows nothing of its faces: `check`, the TUI and the monitor all call `run_check`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from assure_doctor import logs
from assure_doctor.apikey import ApiKey
from assure_doctor.model import (
    EVIDENCE_DEFAULTS,
    STAGES,
    Cause,
    Outcome,
    Report,
    StageResult,
    Status,
)
from assure_doctor.options import CheckOptions
from assure_doctor.probes import Context, clock, dns, ping, proxy, tcp, tls
from assure_doctor.probes.clock import skew_text
from assure_doctor.ranking import rank
from assure_doctor.target import Target

PROBES: tuple[ModuleType, ...] = (dns, tcp, proxy, tls, clock, ping)
# Called with (stage, None) when a stage starts and (stage, result) when its result is known.
StageListener = Callable[[str, StageResult | None], None]
log = logs.get("engine")


async def run_check(
    target: Target,
    options: CheckOptions,
    key: ApiKey | None,
    on_stage: StageListener | None = None,
    resume: Report | None = None,
    start_at: str = "dns",
) -> Report:
    """One staged check. `on_stage` hears each stage start and end, and hears a result again
    when a later stage's evidence re-ranks its causes (the clock re-ranks a TLS failure).

    With `resume`, the stages before `start_at` are taken from that earlier report instead of
    being run again (the TUI's "re-run from the selected stage").
    """
    if start_at not in STAGES:
        raise ValueError(f"unknown stage {start_at!r}")
    reused = STAGES[:STAGES.index(start_at)] if resume is not None else ()
    ctx = Context(target, options, key, options.anchors.strict)
    started = datetime.now(UTC).isoformat(timespec="milliseconds")
    log.info("Checking %s (resolver %s, key %s)", target.url,
             ", ".join(map(str, options.resolvers)) or "system",
             key.masked if key else "absent")
    durations: dict[str, float] = {}
    heard: dict[str, StageResult] = {}
    try:
        for probe in PROBES:
            earlier = resume.stage(probe.NAME) if resume is not None else None
            reason = _skip_reason(probe.NAME, ctx)
            if probe.NAME in reused and earlier is not None:
                ctx.outcomes[probe.NAME] = earlier.as_outcome()
                durations[probe.NAME] = earlier.duration_ms
            elif reason is not None:
                ctx.outcomes[probe.NAME] = Outcome(Status.SKIP, reason)
                durations[probe.NAME] = 0.0
            else:
                if on_stage:
                    on_stage(probe.NAME, None)
                start = time.perf_counter()
                ctx.outcomes[probe.NAME] = await probe.run(ctx)
                durations[probe.NAME] = (time.perf_counter() - start) * 1000
            heard[probe.NAME] = _result(probe.NAME, ctx, durations[probe.NAME])
            if on_stage:
                on_stage(probe.NAME, heard[probe.NAME])
    finally:
        ctx.close_streams()
    stages = tuple(_result(p.NAME, ctx, durations[p.NAME]) for p in PROBES)
    for stage in stages:
        if on_stage and stage != heard[stage.name]:
            on_stage(stage.name, stage)
    report = Report(target=target, stages=stages, started_at=started,
                    resolver=str(ctx.evidence("dns").get("resolver", "system")),
                    key_state=key.masked if key else "absent")
    diagnosis = report.diagnosis
    log.info("Check of %s finished: %s", target.url,
             "ok" if diagnosis is None else f"{diagnosis.name} {diagnosis.condition}")
    return report


def _skip_reason(name: str, ctx: Context) -> str | None:
    """Why a stage cannot run: an earlier stage failed (clock only needs a reachable server)."""
    if name == "clock":
        tcp_outcome, proxy_outcome = ctx.outcomes.get("tcp"), ctx.outcomes.get("proxy")
        if tcp_outcome is None or tcp_outcome.status in (Status.FAIL, Status.SKIP):
            return "skipped: the server cannot be reached"
        if proxy_outcome is not None and proxy_outcome.status is Status.FAIL:
            return "skipped: the proxy opened no tunnel to the server"
        tls_outcome = ctx.outcomes["tls"]
        if tls_outcome.status is Status.FAIL and tls_outcome.condition != "tls_certificate_error":
            return "skipped: no TLS connection could be made"
        return None
    failed = next((n for n, o in ctx.outcomes.items() if o.status is Status.FAIL), None)
    return None if failed is None else f"skipped: {failed} failed"


def _result(name: str, ctx: Context, duration_ms: float) -> StageResult:
    """A stage's result, its causes ranked on all the evidence gathered so far."""
    outcome = ctx.outcomes[name]
    causes: tuple[Cause, ...] = ()
    if outcome.condition is not None:
        facts: dict[str, Any] = {**ctx.base_facts, **outcome.facts}
        if name == "tls":
            facts["clock_explains"] = clock_explains(ctx)
            skew = ctx.evidence("clock").get("skew_seconds")
            facts["skew_text"] = None if skew is None else skew_text(skew)
        causes = rank(outcome.condition, facts)
    evidence = EVIDENCE_DEFAULTS[name] | outcome.evidence
    return StageResult(name, outcome.status, duration_ms, outcome.summary, outcome.condition,
                       causes, evidence, outcome.facts)


def clock_explains(ctx: Context) -> bool | None:
    """Whether the certificate is valid at the server's time though not at ours.

    None when the server's clock is unknown; False when the clocks agree or when the certificate
    is invalid at the server's time too (then the platform, not our clock, is at fault).
    """
    tls_evidence, clock_evidence = ctx.evidence("tls"), ctx.evidence("clock")
    skew = clock_evidence.get("skew_seconds")
    if skew is None or "not_before" not in tls_evidence:
        return None
    not_before = datetime.fromisoformat(tls_evidence["not_before"])
    not_after = datetime.fromisoformat(tls_evidence["not_after"])
    server_now = datetime.now(UTC).timestamp() + skew
    return not_before.timestamp() <= server_now <= not_after.timestamp()
