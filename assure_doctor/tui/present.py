"""What the TUI shows, as pure functions of the engine's results (no Textual here)."""

from __future__ import annotations

import re
from collections.abc import Callable

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from assure_doctor.model import StageResult, Status
from assure_doctor.render import words

Shown = Callable[[str], str]

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


def outside(value: object, shown: Shown, limit: int = 300) -> Text:
    """A string that may hold what a server sent, as Text: never markup, never an escape."""
    return Text(shown(words.outside(value, limit)))


def detail(stage: StageResult | None, name: str, shown: Shown | None = None) -> Group:
    """The detail pane: the finding, causes most likely first with advice, then evidence.

    Causes and evidence are indented as blocks, so wrapped lines keep their indent.
    """
    show = shown or identity
    head = Text()
    head.append(f"{name.upper()}\n", style="bold")
    if stage is None:
        head.append("not run yet", style="dim")
        return Group(head)
    parts: list[RenderableType] = [head]
    head.append(f"{stage.status.value}: ", style=STYLES[stage.status.value])
    head.append_text(outside(stage.summary, show))
    if stage.condition:
        condition = Text("\n")
        condition.append(f"{words.title(stage.condition, stage.status)} ", style="bold")
        condition.append(f"[{stage.condition}]")
        parts.append(condition)
    if stage.causes:
        parts.append(Text("\nLikely causes, most likely first:", style="bold"))
        causes = Table.grid(padding=(0, 1, 0, 0))  # number | title and advice, wrapped
        for number, cause in enumerate(stage.causes, 1):
            title = Text(f"{show(words.outside(cause.title))} ({cause.id})", style="bold")
            causes.add_row(Text(f"{number}.", style="bold"),
                           Group(title, outside(cause.advice, show, 2000)))
        parts.append(causes)
    evidence = {k: v for k, v in stage.evidence.items()
                if k not in _HIDDEN_EVIDENCE and v not in (None, "", [], {})}
    if evidence:
        parts.append(Text("\nEvidence:", style="bold"))
        for key, value in evidence.items():
            line = Text(f"{show(words.outside(key, 40))}: ", style="cyan")
            line.append(show(words.value(value, 400)), style="default")
            parts.append(Padding(line, (0, 0, 0, 2)))
    return Group(*parts)


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
