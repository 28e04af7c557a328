"""The human report: the command that ran, a line per stage, then each finding with advice."""

from __future__ import annotations

import os
import textwrap
from typing import Any

from assure_doctor import redact
from assure_doctor.model import Report, StageResult, Status
from assure_doctor.options import CheckOptions
from assure_doctor.probes import hops
from assure_doctor.render import words

_COLOURS = {Status.PASS: "32", Status.WARN: "33", Status.FAIL: "31", Status.SKIP: "2"}
# Evidence a person rarely needs on screen (all of it is in --json and the report bundle).
_EVIDENCE_SKIP = {"attempts", "history", "answers", "names", "serial", "sha256", "verify_code",
                  "verify_kind", "verified", "valid_now", "path"}
WIDTH = 96
EVIDENCE_LIMIT = 200


def use_colour(stream: Any) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return "NO_COLOR" not in os.environ and bool(getattr(stream, "isatty", lambda: False)())


class _Painter:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text


def render(report: Report, options: CheckOptions | None = None, colour: bool = False) -> str:
    """The report; its first line is a command that repeats the check as printed."""
    paint = _Painter(colour)
    lines = [
        paint(words.check_command(report.target, options, key=report.key_info), "1"),
        f"  resolver {words.outside(report.resolver)} · API key "
        f"{words.key_text(report.key_info)}",
        "",
    ]
    lines[2:2] = pac_lines(report)
    lines += [stage_line(stage, paint) for stage in report.stages]
    lines += changes_section(report, paint)
    diagnosis = report.diagnosis
    if diagnosis is not None:
        lines += ["", *_finding("Diagnosis", diagnosis, paint)]
    for stage in report.warnings:
        if stage.condition:
            lines += ["", *_finding(None, stage, paint)]
    verdict = paint("OK", "32;1") if report.ok else paint("FAILED", "31;1")
    lines += ["", f"Result: {verdict}"]
    return redact.scrub("\n".join(lines)) + "\n"


def pac_lines(report: Report) -> list[str]:
    """How a proxy auto-configuration script chose the route: where it is, what it returned,
    the route taken and those passed over (or why it gave none)."""
    stage = report.stage("proxy")
    pac = stage.evidence.get("pac") if stage is not None else None
    if not isinstance(pac, dict):
        return []
    where = (f"  PAC {words.outside(pac.get('url') or 'unknown', 120)} "
             f"({words.outside(pac.get('source'), 40)})")
    if pac.get("error"):
        return [f"{where}: no route: {words.outside(pac['error'], EVIDENCE_LIMIT)}"]
    lines = [f"{where} returned \"{words.outside(pac.get('rule'), EVIDENCE_LIMIT)}\": took "
             f"{words.outside(pac.get('chosen'), 100)}"]
    skipped = pac.get("skipped")
    for passed in skipped if isinstance(skipped, list) else ():
        if isinstance(passed, dict):
            lines.append(f"    passed over {words.outside(passed.get('route'), 100)}: "
                         f"{words.outside(passed.get('reason'), EVIDENCE_LIMIT)}")
    return lines


def changes_section(report: Report, paint: _Painter | None = None) -> list[str]:
    """"Changed since the last good check (TIME)", when a path history exists."""
    paint = paint or _Painter(False)
    if report.changes is None or report.last_good_at is None:
        return []
    heading = f"Changed since the last good check ({words.when(report.last_good_at)}):"
    lines = ["", paint(heading, "1")]
    if not report.changes:
        return [*lines, "  nothing on the path to the API changed"]
    for change in report.changes:
        lines += textwrap.wrap(words.outside(change.text, None), WIDTH, initial_indent="  - ",
                               subsequent_indent="    ", break_on_hyphens=False,
                               break_long_words=False)
    return lines


def stage_line(stage: StageResult, paint: _Painter | None = None) -> str:
    paint = paint or _Painter(False)
    status = paint(f"{stage.status.value.upper():4}", _COLOURS[stage.status])
    took = "-" if stage.status is Status.SKIP else f"{stage.duration_ms:.0f} ms"
    return f"  {status}  {stage.name:<5} {took:>9}  {words.outside(stage.summary)}"


def _finding(heading: str | None, stage: StageResult, paint: _Painter) -> list[str]:
    """A failure ('Diagnosis: ...') or a warning ('Warning: ...'), with evidence and causes."""
    title = words.title(stage.condition, stage.status)
    head = f"{heading}: {title}" if heading else title
    lines = [paint(f"{head} [{stage.condition}] at the {stage.name} stage", "1"),
             f"  {words.outside(stage.summary)}"]
    evidence = _evidence_lines(stage)
    if evidence:
        lines += ["  Evidence:", *evidence]
    if stage.causes:
        lines.append("  Likely causes, most likely first:")
    for number, cause in enumerate(stage.causes, 1):
        lines.append(f"  {number}. {paint(words.outside(cause.title), '1')} ({cause.id})")
        lines += textwrap.wrap(words.outside(cause.advice, None), WIDTH,
                               initial_indent="     ", subsequent_indent="     ",
                               break_on_hyphens=False, break_long_words=False)
    return lines


def _evidence_lines(stage: StageResult) -> list[str]:
    lines = []
    for key, value in stage.evidence.items():
        if key in _EVIDENCE_SKIP or value in (None, "", [], {}):
            continue
        if stage.name == "tls" and key in ("chain", "anchor"):
            if key == "chain":
                lines += certificate_chain(value, stage.evidence.get("anchor"))
            continue
        lines.append(f"    {key}: {_shown(value)}")
    return lines + path_lines(stage)


_PROBLEM_WORDS = {None: "ok", "expired": "EXPIRED", "not_yet_valid": "NOT YET VALID",
                  "untrusted": "UNTRUSTED", "hostname_mismatch": "WRONG NAME",
                  "self_signed": "SELF-SIGNED", "missing_issuer": "ISSUER NOT SENT"}
_SUBJECT_LIMIT = 120


def certificate_chain(chain: Any, anchor: Any) -> list[str]:
    """The presented chain, one line per certificate, leaf first, each with its problem;
    then the trust anchor it ends at when the server did not send it."""
    if not isinstance(chain, list):
        return [f"    chain: {words.value(chain, EVIDENCE_LIMIT)}"]
    links = [(f"{number}.", link) for number, link in enumerate(chain, 1)]
    if isinstance(anchor, dict):
        links.append(("root, trusted here (not sent):", anchor))
    lines = ["    chain, leaf first:"]
    for label, link in links:
        if not isinstance(link, dict):
            continue
        problem = link.get("problem")
        word = _PROBLEM_WORDS.get(problem, str(problem).upper())
        dates = f"{str(link.get('not_before'))[:10]} to {str(link.get('not_after'))[:10]}"
        lines.append(f"      {label} {words.outside(link.get('subject'), _SUBJECT_LIMIT)}, "
                     f"valid {words.outside(dates, 30)}: {words.outside(word, 20)}")
    return lines


def path_lines(stage: StageResult) -> list[str]:
    """The TCP traceroute, as traceroute prints it."""
    trace = stage.path
    if not isinstance(trace, hops.Trace):
        return []
    if trace.ended is hops.Ending.SKIPPED:
        return [f"    path: {words.outside(trace.skipped_reason)}"]
    head = (f"    path (TCP traceroute to {words.outside(trace.address, 60)} port {trace.port}, "
            f"{trace.ended.value}):")
    return [head, *(f"      {words.outside(line, 120)}" for line in hops.hop_lines(trace))]


def _shown(value: Any) -> str:
    if is_cname_chain(value):
        return cname_chain(value)
    return words.value(value, EVIDENCE_LIMIT)


def is_cname_chain(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(link, dict) and set(link) == {"name", "target", "status"} for link in value)


def cname_chain(links: list[dict[str, Any]]) -> str:
    """The dns chain link by link: `api.x → gw.y (ok) → (nxdomain)`; each link's status
    follows its target, the last link's (the name the chain ends at) follows an arrow."""
    parts = [str(links[0]["name"])]
    for link in links:
        target = link["target"]
        parts.append(f"→ {target} ({link['status']})" if target is not None
                     else f"→ ({link['status']})")
    return words.outside(" ".join(parts), EVIDENCE_LIMIT * 2)
