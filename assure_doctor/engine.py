"""Run the stages in order, skip what cannot run, and rank each failure's causes.

The engine owns time and failure: every stage runs under a deadline set here from the options,
and an unexpected exception in a probe becomes an `internal_error` finding, never a crash of
the face that asked. The engine knows nothing of its faces: `check`, the TUI and the monitor
all call `run_check`, and nothing of particular stages: `probes.registry` lists them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from assure_doctor import logs, sanitize
from assure_doctor.apikey import ApiKey
from assure_doctor.history import changes, fingerprint
from assure_doctor.history.record import Record
from assure_doctor.kinds import Condition, Facts
from assure_doctor.model import Cause, Fault, KeyInfo, Outcome, Report, StageResult, Status
from assure_doctor.options import CheckOptions
from assure_doctor.probes import pathtrace, registry
from assure_doctor.probes.results import DnsFound
from assure_doctor.probes.stage import Context, Probe
from assure_doctor.target import Target

# Called with (stage, None) when a stage starts and (stage, result) when its result is known.
StageListener = Callable[[str, StageResult | None], None]
log = logs.get("engine")
# A probe's own timeouts say more than the engine's deadline, so they get to fire first.
DEADLINE_GRACE = 0.5
_MESSAGE_LIMIT = 200


def deadline(probe: Probe, options: CheckOptions) -> float:
    """The longest a stage may run, in seconds: the one rule for every stage."""
    work = probe.operations * options.timeout
    if probe.retried:
        # A Retry-After (up to --max-retry-after) may stand in for our own pause.
        pause = max(options.retry_pause, options.max_retry_after)
        return options.attempts * (work + pause) + DEADLINE_GRACE
    return work + DEADLINE_GRACE


async def run_check(
    target: Target,
    options: CheckOptions,
    key: ApiKey | None,
    on_stage: StageListener | None = None,
    resume: Report | None = None,
    start_at: str | None = None,
    history: Record | None = None,
) -> Report:
    """One staged check. `on_stage` hears each stage start and end, and hears a result again
    when a later stage's evidence re-ranks its causes (the clock re-ranks a TLS failure).

    With `resume`, the stages before `start_at` (default: the first) are taken from that
    earlier report instead of being run again (the TUI's "re-run from the selected stage").
    With `history` (the target's path history; the face loads and keeps it), the report says
    what changed since the last good check, and the ranking weighs those changes.
    """
    probes = registry.PROBES
    names = [p.name for p in probes]
    start_at = names[0] if start_at is None else start_at
    if start_at not in names:
        raise ValueError(f"unknown stage {start_at!r}")
    reused = names[:names.index(start_at)] if resume is not None else []
    ctx = Context(target, options, key)
    started = datetime.now(UTC).isoformat(timespec="milliseconds")
    log.info("Checking %s (resolver %s, key %s)", target.url,
             ", ".join(map(str, options.resolvers)) or "system",
             key.masked if key else "absent")
    durations: dict[str, float] = {}
    heard: dict[str, StageResult] = {}
    try:
        route_ms = 0.0
        if options.proxy.pac:
            start = time.perf_counter()
            await _choose_route(ctx)
            route_ms = (time.perf_counter() - start) * 1000
        for probe in probes:
            earlier = resume.stage(probe.name) if resume is not None else None
            reason = next((r for need in probe.needs if (r := need.unmet(ctx)) is not None),
                          None)
            if probe.name in reused and earlier is not None:
                ctx.outcomes[probe.name] = earlier.as_outcome()
                durations[probe.name] = earlier.duration_ms
            elif reason is not None:
                known = probe.skipped(ctx) if probe.skipped is not None else None
                ctx.outcomes[probe.name] = Outcome(Status.SKIP, reason, known)
                durations[probe.name] = 0.0
            else:
                if on_stage:
                    on_stage(probe.name, None)
                start = time.perf_counter()
                outcome = await _run_bounded(probe, ctx)
                durations[probe.name] = (time.perf_counter() - start) * 1000
                if outcome is ctx.route_failure:  # the time the PAC took to give no route
                    durations[probe.name] += route_ms
                if probe.traced and pathtrace.wanted(outcome):
                    outcome = await pathtrace.follow(ctx, outcome)
                ctx.outcomes[probe.name] = outcome
            heard[probe.name] = _result(probe, ctx, durations[probe.name])
            if on_stage:
                on_stage(probe.name, heard[probe.name])
    finally:
        ctx.close_streams()
    stages = tuple(_result(p, ctx, durations[p.name]) for p in probes)
    found: tuple[changes.Change, ...] | None = None
    now: fingerprint.Fingerprint | None = None
    if history is not None:
        now = fingerprint.of(stage.found for stage in stages)
        before = history.last_good
        found = None if before is None else changes.between(
            before, now, history.last_good_at or "", target.host)
        weighed = changes.facts(before, now)
        if weighed:
            stages = tuple(_result(p, ctx, durations[p.name], weighed) for p in probes)
    for stage in stages:
        if on_stage and stage != heard[stage.name]:
            on_stage(stage.name, stage)
    report = Report(target=target, stages=stages, started_at=started,
                    resolver=ctx.found(DnsFound).resolver or "system",
                    key_info=KeyInfo.of(key, options.no_ping), changes=found,
                    last_good_at=None if history is None else history.last_good_at,
                    fingerprint=now)
    diagnosis = report.diagnosis
    log.info("Check of %s finished: %s", target.url,
             "ok" if diagnosis is None else f"{diagnosis.name} {diagnosis.condition}")
    return report


async def _choose_route(ctx: Context) -> None:
    """Ask the PAC the proxy settings name for the API's route, within its deadline; what it
    chose is `ctx.route`, and a PAC that gave none is the proxy stage's failure."""
    from assure_doctor.probes import pacroute  # only where a PAC is named

    chooser = pacroute.Chooser(ctx)
    limit = pacroute.deadline(ctx.options) + DEADLINE_GRACE
    try:
        async with asyncio.timeout(limit) as scope:
            await chooser.run()
    except TimeoutError:
        if not scope.expired():
            ctx.route_failure = _internal_error("PAC route", TimeoutError(
                "a timeout escaped the PAC's route choice"))
            return
        log.warning("Choosing the route from the PAC overran its deadline (%g s)", limit)
        chooser.overran(limit)
    except Exception as exc:  # containment, as for a probe: reported by the proxy stage
        ctx.route_failure = _internal_error("PAC route", exc)


async def _run_bounded(probe: Probe, ctx: Context) -> Outcome:
    """The probe's outcome, within its deadline; an overrun or a bug becomes a finding."""
    limit = deadline(probe, ctx.options)
    try:
        async with asyncio.timeout(limit) as scope:
            return await probe.run(ctx)
    except TimeoutError:
        if not scope.expired():
            return _internal_error(probe.name, TimeoutError("a timeout escaped the probe"))
        return _overrun(probe, limit)
    except Exception as exc:  # containment: a probe's bug must not take down a face
        return _internal_error(probe.name, exc)


def _overrun(probe: Probe, limit: float) -> Outcome:
    error = f"no result within {limit:g} s, the stage's deadline"
    log.warning("The %s stage overran its deadline (%g s)", probe.name, limit)
    fault = Fault(error=error, deadline_seconds=round(limit, 3))
    if probe.overrun is None:
        return Outcome(Status.SKIP, f"not checked: {error}", fault=fault)
    condition, kind = probe.overrun
    facts = Facts(error=error) if kind is None else Facts(kind=kind, error=error)
    return Outcome(Status.FAIL, error, None, condition, facts, fault)


def _internal_error(where: str, exc: BaseException) -> Outcome:
    """The exception's type and a short sanitised message: never locals, never the key."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]  # a TaskGroup's wrapper says less than what it wraps
    kind = type(exc).__name__
    message = sanitize.text(str(exc), _MESSAGE_LIMIT)
    described = f"{kind}: {message}" if message else kind
    log.error("Internal error in the %s stage: %s", where, described)
    return Outcome(Status.FAIL, f"internal error in assure-doctor: {described}", None,
                   Condition.INTERNAL_ERROR, Facts(exception=described),
                   Fault(exception=kind, message=message))


def _result(probe: Probe, ctx: Context, duration_ms: float, weighed: Facts | None = None
            ) -> StageResult:
    """A stage's result, its causes ranked on all the evidence gathered so far (and on what
    changed since the last good check, `weighed`)."""
    outcome = ctx.outcomes[probe.name]
    causes: tuple[Cause, ...] = ()
    if outcome.condition is not None:
        facts = ctx.base_facts
        facts.update(outcome.facts)
        if probe.cross_facts is not None:
            facts.update(probe.cross_facts(ctx))
        if weighed:
            facts.update(weighed)
        from assure_doctor.ranking import rank  # the cause table: a finding's, not a pass's

        causes = rank(outcome.condition, facts)
    evidence = (outcome.found or probe.found()).evidence()
    if outcome.fault is not None:
        evidence |= outcome.fault.evidence()
    if outcome.path is not None:
        evidence["path"] = outcome.path.evidence()
    return StageResult(probe.name, outcome.status, duration_ms, outcome.summary,
                       outcome.condition, causes, evidence, outcome.found, outcome.facts,
                       outcome.fault, outcome.path)
