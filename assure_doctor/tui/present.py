"""What the TUI shows, as pure functions of the engine's results (no Textual here).

Chains, the path and what changed read as the human report words them (render.human), one
link, hop or change per line, indented as blocks so that wrapped lines keep their indent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from assure_doctor.model import Report, StageResult, Status
from assure_doctor.render import human, words

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
STYLES = {"pass": "bold green", "warn": "bold yellow", "fail": "bold red", "skip": "dim",
          "pending": "dim", "running": "bold cyan"}
BROKEN = "bold red"  # a link of a chain that is not ok
# `path` is shown from the stage's typed trace, hop by hop, after the other evidence.
_HIDDEN_EVIDENCE = {"history", "answers", "path"}
_HUMAN_INDENT = 2  # the human report indents evidence two columns more than the pane does
_CHAIN_OK = ": ok"  # how the human report ends a certificate without a problem


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


def detail(stage: StageResult | None, name: str, changed: Sequence[RenderableType] = ()
           ) -> Group:
    """The detail pane: the finding, what changed since the last good check (`changed`, from
    `changes`), causes most likely first with advice, then evidence."""
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
    parts += changed
    if stage.causes:
        parts.append(Text("\nLikely causes, most likely first:", style="bold"))
        causes = Table.grid(padding=(0, 1, 0, 0))  # number | title and advice, wrapped
        for number, cause in enumerate(stage.causes, 1):
            title = Text(f"{words.outside(cause.title)} ({cause.id})", style="bold")
            causes.add_row(Text(f"{number}.", style="bold"),
                           Group(title, outside(cause.advice, 2000)))
        parts.append(causes)
    evidence = _evidence(stage)
    if evidence:
        parts += [Text("\nEvidence:", style="bold"), *evidence]
    return Group(*parts)


def changes(report: Report | None) -> list[RenderableType]:
    """The report's "Changed since the last good check (TIME)" section, in the human report's
    words, one change per item (its lines are wrapped for 96 columns: joined again here, for
    the pane to wrap); nothing without a path history."""
    if report is None:
        return []
    lines = [line for line in human.changes_section(report) if line.strip()]
    if not lines:
        return []
    heading, *rest = lines
    items: list[str] = []
    for line in rest:
        if line.startswith("    ") and items:  # a wrapped item's next line
            items[-1] += " " + line.strip()
        else:
            items.append(line.strip().removeprefix("- "))
    section: list[RenderableType] = [Text(f"\n{heading}", style="bold")]
    if not report.changes:  # the one line that says nothing changed
        return [*section, *(Padding(Text(item), (0, 0, 0, 2)) for item in items)]
    listed = Table.grid(padding=(0, 1, 0, 0))  # bullet | the change, wrapped
    for item in items:
        listed.add_row(Text("-"), Text(item))
    return [*section, Padding(listed, (0, 0, 0, 2))]


def _evidence(stage: StageResult) -> list[RenderableType]:
    """`key: value` per line; the certificate chain, the CNAME chain and the path to the
    server link by link, each link on its line and a broken one in red."""
    shown: list[RenderableType] = []
    for key, value in stage.evidence.items():
        if key in _HIDDEN_EVIDENCE or value in (None, "", [], {}):
            continue
        if stage.name == "tls" and key in ("chain", "anchor"):
            if key == "chain":  # the anchor it ends at is its last line
                shown += _certificate_chain(value, stage.evidence.get("anchor"))
        elif human.is_cname_chain(value):
            shown += _cname_chain(key, value)
        else:
            shown.append(Padding(_keyed(words.outside(key, 40), words.value(value, 400)),
                                 (0, 0, 0, 2)))
    path = human.path_lines(stage)
    return shown + [_human_head(line) for line in path[:1]] + [_human(line) for line in path[1:]]


def _certificate_chain(chain: Any, anchor: Any) -> list[RenderableType]:
    """The human report's chain, leaf first: a line per certificate, ending in its problem."""
    head, *links = human.certificate_chain(chain, anchor)
    return [_human_head(head), *(_human(line, "default" if line.endswith(_CHAIN_OK)
                                        else BROKEN) for line in links)]


def _cname_chain(key: str, links: list[dict[str, Any]]) -> list[RenderableType]:
    """The aliases as the human report words them (`name → target (status)`), one a line."""
    return [Padding(_keyed(words.outside(key, 40), ""), (0, 0, 0, 2)), *(
        Padding(Text(human.cname_chain([link]), style="default" if link["status"] == "ok"
                     else BROKEN), (0, 0, 0, 4)) for link in links)]


def _keyed(key: str, value: str) -> Text:
    line = Text(f"{key}: " if value else f"{key}:", style="cyan")
    line.append(value, style="default")
    return line


def _human(line: str, style: str = "default") -> Padding:
    """A line of the human report's evidence, as a block at its indent (less the report's
    own), so that it wraps under itself."""
    text = line.lstrip(" ")
    return Padding(Text(text, style=style), (0, 0, 0, _indent(line, text)))


def _human_head(line: str) -> Padding:
    """The heading line of a chain or the path (`key ...:`, or `key: value`), as a key."""
    text = line.lstrip(" ")
    key, _, value = (text[:-1], "", "") if text.endswith(":") else text.partition(": ")
    return Padding(_keyed(key, value), (0, 0, 0, _indent(line, text)))


def _indent(line: str, text: str) -> int:
    return max(len(line) - len(text) - _HUMAN_INDENT, 0)
