"""The human report: a line per stage, then the diagnosis with causes and advice."""

from __future__ import annotations

import os
import textwrap
from typing import Any

from assure_doctor import redact
from assure_doctor.causes import title as condition_title
from assure_doctor.model import Report, StageResult, Status

_COLOURS = {Status.PASS: "32", Status.WARN: "33", Status.FAIL: "31", Status.SKIP: "2"}
# Evidence a person rarely needs on screen (all of it is in --json and the exports).
_EVIDENCE_SKIP = {"attempts", "history", "answers", "names", "serial", "sha256", "verify_code",
                  "verify_kind", "verified", "valid_now"}
WIDTH = 96


def use_colour(stream: Any) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return "NO_COLOR" not in os.environ and bool(getattr(stream, "isatty", lambda: False)())


class _Painter:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text


def render(report: Report, colour: bool = False) -> str:
    paint = _Painter(colour)
    lines = [
        paint(f"assure-doctor check {report.target.url}", "1"),
        f"  resolver {report.resolver} · API key {report.key_state}",
        "",
    ]
    lines += [stage_line(stage, paint) for stage in report.stages]
    diagnosis = report.diagnosis
    if diagnosis is not None:
        lines += ["", *_finding("Diagnosis", diagnosis, paint)]
    for stage in report.warnings:
        if stage.condition:
            lines += ["", *_finding("Warning", stage, paint)]
    verdict = paint("OK", "32;1") if report.ok else paint("FAILED", "31;1")
    lines += ["", f"Result: {verdict}"]
    return redact.scrub("\n".join(lines)) + "\n"


def stage_line(stage: StageResult, paint: _Painter | None = None) -> str:
    paint = paint or _Painter(False)
    status = paint(f"{stage.status.value.upper():4}", _COLOURS[stage.status])
    took = f"{stage.duration_ms:6.0f} ms" if stage.status is not Status.SKIP else "       -  "
    return f"  {status}  {stage.name:<5} {took}  {stage.summary}"


def _finding(heading: str, stage: StageResult, paint: _Painter) -> list[str]:
    title = condition_title(stage.condition, stage.status) if stage.condition else ""
    lines = [paint(f"{heading}: {title} [{stage.condition}] at the {stage.name} stage", "1"),
             f"  {stage.summary}"]
    evidence = _evidence_lines(stage)
    if evidence:
        lines += ["  Evidence:", *evidence]
    if stage.causes:
        lines.append("  Likely causes, most likely first:")
    for number, cause in enumerate(stage.causes, 1):
        lines.append(f"  {number}. {paint(cause.title, '1')} ({cause.id})")
        lines += textwrap.wrap(cause.advice, WIDTH, initial_indent="     ",
                               subsequent_indent="     ", break_on_hyphens=False,
                               break_long_words=False)
    return lines


def _evidence_lines(stage: StageResult) -> list[str]:
    lines = []
    for key, value in stage.evidence.items():
        if key in _EVIDENCE_SKIP or value in (None, "", []):
            continue
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        text = " ".join(text.split())
        lines.append(f"    {key}: {text[:200]}")
    return lines
