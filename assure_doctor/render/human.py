"""The human report: the command that ran, a line per stage, then each finding with advice."""

from __future__ import annotations

import os
import textwrap
from typing import Any

from assure_doctor import redact
from assure_doctor.model import Report, StageResult, Status
from assure_doctor.options import CheckOptions
from assure_doctor.render import words

_COLOURS = {Status.PASS: "32", Status.WARN: "33", Status.FAIL: "31", Status.SKIP: "2"}
# Evidence a person rarely needs on screen (all of it is in --json and the report bundle).
_EVIDENCE_SKIP = {"attempts", "history", "answers", "names", "serial", "sha256", "verify_code",
                  "verify_kind", "verified", "valid_now"}
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
    lines += [stage_line(stage, paint) for stage in report.stages]
    diagnosis = report.diagnosis
    if diagnosis is not None:
        lines += ["", *_finding("Diagnosis", diagnosis, paint)]
    for stage in report.warnings:
        if stage.condition:
            lines += ["", *_finding(None, stage, paint)]
    verdict = paint("OK", "32;1") if report.ok else paint("FAILED", "31;1")
    lines += ["", f"Result: {verdict}"]
    return redact.scrub("\n".join(lines)) + "\n"


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
    return [f"    {key}: {_shown(value)}" for key, value in stage.evidence.items()
            if key not in _EVIDENCE_SKIP and value not in (None, "", [], {})]


def _shown(value: Any) -> str:
    if _is_cname_chain(value):
        return cname_chain(value)
    return words.value(value, EVIDENCE_LIMIT)


def _is_cname_chain(value: Any) -> bool:
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
