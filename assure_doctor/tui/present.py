"""What the TUI shows, as pure functions of the engine's results (no Textual here)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from assure_doctor.model import StageResult, Status
from assure_doctor.render import words

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


def outside(value: object, limit: int = 300) -> Text:
    """A string that may hold what a server sent, as Text: never markup, never an escape."""
    return Text(words.outside(value, limit))


def detail(stage: StageResult | None, name: str) -> Group:
    """The detail pane: the finding, causes most likely first with advice, then evidence.

    Causes and evidence are indented as blocks, so wrapped lines keep their indent.
    """
    head = Text()
    head.append(f"{name.upper()}\n", style="bold")
    if stage is None:
        head.append("not run yet", style="dim")
        return Group(head)
    parts: list[RenderableType] = [head]
    head.append(f"{stage.status.value}: ", style=STYLES[stage.status.value])
    head.append_text(outside(stage.summary))
    if stage.condition:
        condition = Text("\n")
        condition.append(f"{words.title(stage.condition, stage.status)} ", style="bold")
        condition.append(f"[{stage.condition}]")
        parts.append(condition)
    if stage.causes:
        parts.append(Text("\nLikely causes, most likely first:", style="bold"))
        causes = Table.grid(padding=(0, 1, 0, 0))  # number | title and advice, wrapped
        for number, cause in enumerate(stage.causes, 1):
            title = Text(f"{words.outside(cause.title)} ({cause.id})", style="bold")
            causes.add_row(Text(f"{number}.", style="bold"),
                           Group(title, outside(cause.advice, 2000)))
        parts.append(causes)
    evidence = {k: v for k, v in stage.evidence.items()
                if k not in _HIDDEN_EVIDENCE and v not in (None, "", [], {})}
    if evidence:
        parts.append(Text("\nEvidence:", style="bold"))
        for key, value in evidence.items():
            line = Text(f"{words.outside(key, 40)}: ", style="cyan")
            line.append(words.value(value, 400), style="default")
            parts.append(Padding(line, (0, 0, 0, 2)))
    return Group(*parts)
