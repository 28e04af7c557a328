"""A Markdown report of a check, for a support ticket. The key never appears in it."""

from __future__ import annotations

import json

from assure_doctor import __version__, redact
from assure_doctor.causes import title as condition_title
from assure_doctor.model import Report, StageResult

_ICON = {"pass": "✅ pass", "warn": "⚠️ warn", "fail": "❌ fail", "skip": "⏭ skip"}


def render(report: Report) -> str:
    lines = [
        f"# assure-doctor report: {report.target.url}",
        "",
        f"- checked at: {report.started_at}",
        f"- result: **{'OK' if report.ok else 'FAILED'}**",
        f"- resolver: {report.resolver}",
        f"- API key: {report.key_state}",
        f"- tool: assure-doctor {__version__}",
        "",
        "| stage | status | time | summary |",
        "|---|---|---:|---|",
    ]
    for stage in report.stages:
        lines.append(f"| {stage.name} | {_ICON[stage.status.value]} | "
                     f"{stage.duration_ms:.0f} ms | {_cell(stage.summary)} |")
    diagnosis = report.diagnosis
    if diagnosis is not None:
        lines += ["", *_finding("Diagnosis", diagnosis)]
    for stage in report.warnings:
        if stage.condition:
            lines += ["", *_finding("Warning", stage)]
    lines += ["", "## Evidence", ""]
    for stage in report.stages:
        if stage.evidence:
            lines += [f"### {stage.name}", "", "```json",
                      json.dumps(stage.evidence, indent=2, default=str), "```", ""]
    return redact.scrub("\n".join(lines)) + "\n"


def _finding(heading: str, stage: StageResult) -> list[str]:
    title = condition_title(stage.condition, stage.status) if stage.condition else ""
    lines = [f"## {heading}: {title} (`{stage.condition}`, {stage.name} stage)", "",
             stage.summary, "", "Likely causes, most likely first:", ""]
    for number, cause in enumerate(stage.causes, 1):
        lines.append(f"{number}. **{cause.title}** (`{cause.id}`): {cause.advice}")
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
