"""What the TUI shows, as pure functions of the engine's results (no Textual here)."""

from __future__ import annotations

import re

from rich.text import Text

from assure_doctor.causes import title
from assure_doctor.model import StageResult, Status

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
STYLES = {"pass": "bold green", "warn": "bold yellow", "fail": "bold red", "skip": "dim",
          "pending": "dim", "running": "bold cyan"}
_HIDDEN_EVIDENCE = {"history", "answers"}


def status_cell(state: str, frame: int = 0) -> Text:
    """pending / running (with a spinner) / pass / warn / fail / skip."""
    label = f"{SPINNER[frame % len(SPINNER)]} running" if state == "running" else state
    return Text(label, style=STYLES[state])


def duration_cell(stage: StageResult | None) -> str:
    if stage is None or stage.status is Status.SKIP:
        return ""
    return f"{stage.duration_ms:.0f} ms"


def detail(stage: StageResult | None, name: str) -> Text:
    """The detail pane: evidence, the guide's condition, causes most likely first, advice."""
    text = Text()
    text.append(f"{name.upper()}\n", style="bold")
    if stage is None:
        text.append("not run yet\n", style="dim")
        return text
    text.append(f"{stage.status.value}: ", style=STYLES[stage.status.value])
    text.append(f"{stage.summary}\n")
    if stage.condition:
        text.append("\nCondition: ", style="bold")
        text.append(f"{title(stage.condition, stage.status)} [{stage.condition}]\n")
    if stage.causes:
        text.append("\nLikely causes, most likely first:\n", style="bold")
        for number, cause in enumerate(stage.causes, 1):
            text.append(f"{number}. {cause.title} ({cause.id})\n", style="bold")
            text.append(f"   {cause.advice}\n")
    evidence = {k: v for k, v in stage.evidence.items()
                if k not in _HIDDEN_EVIDENCE and v not in (None, "", [])}
    if evidence:
        text.append("\nEvidence:\n", style="bold")
        for key, value in evidence.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            text.append(f"  {key}: ", style="cyan")
            text.append(f"{' '.join(shown.split())[:400]}\n")
    return text


# Masks for snapshot tests: what changes from run to run (ports, times, dates, paths).
_VOLATILE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"/tmp/assure-sandbox-\w+"), "/tmp/assure-sandbox-X"),
    (re.compile(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT"), "HTTP-DATE"),
    (re.compile(r"\d{4}-\d\d-\d\d(?:[T ][\d:.]+(?:\+00:00| UTC)?)?"), "YYYY-MM-DD"),
    (re.compile(r"(?<=:)\d{2,5}\b|(?<=port )\d{2,5}\b"), "PORT"),
    (re.compile(r"[-+]?\d+(?:\.\d+)? (ms|s|days|h|min)\b"), r"N \1"),
    (re.compile(r"\(\d+ days\)"), "(N days)"),
    (re.compile(r"ends …\S{4}\)"), "ends …XXXX)"),
    (re.compile(r"\b[0-9a-f]{16,64}\b"), "HEX"),
    (re.compile(r"\b(pid|tid)=\d+"), r"\1=N"),
)


def stabilise(text: str) -> str:
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text



def identity(text: str) -> str:
    return text
