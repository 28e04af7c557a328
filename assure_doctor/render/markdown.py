"""`report.md`: a check for a support ticket: summary, stages, diagnosis, evidence, environment.

Every outside string is sanitised; the key never appears in it (only its source and length).
"""

from __future__ import annotations

import json
import re

from assure_doctor import redact, sanitize
from assure_doctor.model import Report, StageResult
from assure_doctor.options import CheckOptions
from assure_doctor.render import environment, words

_ICON = {"pass": "✅ pass", "warn": "⚠️ warn", "fail": "❌ fail", "skip": "⏭ skip"}


def render(report: Report, options: CheckOptions | None = None) -> str:
    finding = report.diagnosis
    lines = [
        f"# assure-doctor report: {_cell(report.target.url)}",
        "",
        f"- result: **{'OK' if report.ok else 'FAILED'}**"
        + (f": {_cell(words.title(finding.condition, finding.status))} at the {finding.name} "
           "stage" if finding else ""),
        f"- checked at: {_cell(report.started_at)}",
        f"- repeat it with: `{words.check_command(report.target, options, key=report.key_info)}`",
        "",
        "## Stages",
        "",
        "| stage | status | time | summary |",
        "|---|---|---:|---|",
    ]
    for stage in report.stages:
        took = "-" if stage.status.value == "skip" else f"{stage.duration_ms:.0f} ms"
        lines.append(f"| {stage.name} | {_ICON[stage.status.value]} | {took} | "
                     f"{_cell(stage.summary)} |")
    lines += _changes(report)
    if finding is not None:
        lines += ["", *_finding("Diagnosis: ", finding)]
    for stage in report.warnings:
        if stage.condition:
            lines += ["", *_finding("", stage)]
    lines += ["", "## Evidence", ""]
    for stage in report.stages:
        if stage.evidence:
            text = json.dumps(stage.evidence, indent=2, default=str, ensure_ascii=True)
            fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", text)),
                                         default=0))
            lines += [f"### {stage.name}", "", f"{fence}json", text, fence, ""]
    lines += ["## Environment", "", "| | |", "|---|---|"]
    lines += [f"| {label} | {_cell(value)} |" for label, value in
              environment.facts(report, options)]
    return redact.scrub("\n".join(lines)) + "\n"


def _changes(report: Report) -> list[str]:
    """The "Changed since the last good check" section, when a path history exists."""
    if report.changes is None or report.last_good_at is None:
        return []
    lines = ["", f"## Changed since the last good check ({words.when(report.last_good_at)})",
             ""]
    if not report.changes:
        return [*lines, "Nothing on the path to the API changed."]
    lines += ["| what | now | was |", "|---|---|---|"]
    lines += [f"| {change.what.value} | {_cell(change.now)} | {_cell(change.was)} |"
              for change in report.changes]
    return [*lines, "", *(f"- {_cell(change.text)}" for change in report.changes)]


def _finding(heading: str, stage: StageResult) -> list[str]:
    title = words.title(stage.condition, stage.status)
    lines = [f"## {heading}{title} (`{stage.condition}`, {stage.name} stage)", "",
             _cell(stage.summary), "", "Likely causes, most likely first:", ""]
    for number, cause in enumerate(stage.causes, 1):
        lines.append(f"{number}. **{_cell(cause.title)}** (`{cause.id}`): "
                     f"{_cell(words.outside(cause.advice, None))}")
    return lines


def _cell(text: str) -> str:
    """Sanitised, on one line, with the characters Markdown would act on escaped."""
    safe = words.outside(text, 500)
    return re.sub(r"([\\|`\[\]<>])", r"\\\1", sanitize.text(safe, None))
