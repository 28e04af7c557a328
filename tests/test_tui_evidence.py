"""Chains in the Diagnosis pane: the certificate chain, the CNAME chain and the path to the
server read link by link, one a line, the broken link marked, as the human report says them;
what changed reads one change a line whatever the pane's width."""

from __future__ import annotations

import asyncio
import io
import re
import textwrap
from collections.abc import Callable

import pytest
from rich.console import Console, Group
from rich.padding import Padding
from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from assure_doctor.history.changes import Change, What
from assure_doctor.kinds import CauseId, Condition
from assure_doctor.model import Cause, Report, StageResult, Status
from assure_doctor.probes.hops import Hop, HopKind, Trace, hop_lines
from assure_doctor.render import human
from assure_doctor.sandbox.stack import Sandbox
from assure_doctor.target import from_url
from assure_doctor.tui import present
from tests.test_tui import SIZE, detail_text, make_app, select, settle

SandboxFactory = Callable[[str], Sandbox]


def lines_of(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def rendered(group: Group, width: int = 400) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(group)
    return console.export_text()


def red_lines(group: Group) -> set[str]:
    """The lines the pane marks in red (a broken link)."""
    marked = set()
    for part in group.renderables:
        inner = part.renderable if isinstance(part, Padding) else part
        if isinstance(inner, Text):
            color = Style.parse(str(inner.style)).color
            if color is not None and color.name == "red":
                marked.add(inner.plain.strip())
    return marked


def diagnosis_of(sandbox: Sandbox, stage: str) -> tuple[str, Group, Report]:
    """The Diagnosis pane of `stage` after one check in the TUI: its text, its renderable,
    and the report (for the human renderer's words)."""
    app = make_app(sandbox)
    shown: list[tuple[str, Group, Report]] = []

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await select(pilot, stage)
            content = app.query_one("#detail", Static).content
            assert isinstance(content, Group) and app.report is not None
            shown.append((detail_text(app), content, app.report))

    asyncio.run(main())
    return shown[0]


@pytest.mark.slow
def test_the_certificate_chain_reads_link_by_link(sandbox_factory: SandboxFactory) -> None:
    sandbox = sandbox_factory("tls-missing-intermediate")
    text, group, report = diagnosis_of(sandbox, "tls")
    lines = lines_of(text)
    head = lines.index("chain, leaf first:")
    leaf, root = lines[head + 1], lines[head + 2]
    assert leaf.startswith("1. CN=api.sandbox.sheassure.net") and "ISSUER NOT SENT" in leaf
    assert root.startswith("root, trusted here (not sent): ") and root.endswith(": ok")
    assert red_lines(group) & {leaf, root} == {leaf}  # the broken link, only it
    assert "{'" not in text and "(subject " not in text  # no dict dumped on one line
    assert any(line.startswith("aia_url: http://") for line in lines)  # where to fetch it
    # The same words as `check` prints, line for line.
    said = lines_of("\n".join(human.render(report).split("chain, leaf first:")[1]
                              .splitlines()[1:3]))
    assert said == [leaf, root]


@pytest.mark.slow
def test_the_cname_chain_reads_link_by_link(sandbox_factory: SandboxFactory) -> None:
    sandbox = sandbox_factory("dns-dangling-cname")
    text, group, _ = diagnosis_of(sandbox, "dns")
    host, [alias] = from_url(sandbox.url).host, sandbox.scenario.cname
    lines = lines_of(text)
    head = lines.index("chain:")
    assert lines[head + 1:head + 3] == [f"{host} → {alias} (ok)", f"{alias} → (nxdomain)"]
    assert red_lines(group) & set(lines) == {f"{alias} → (nxdomain)"}


@pytest.mark.slow
def test_the_path_reads_hop_by_hop(sandbox_factory: SandboxFactory) -> None:
    """A handshake cut by a reset is followed by a TCP traceroute (here, one hop)."""
    sandbox = sandbox_factory("tls-handshake-reset")
    text, _, _ = diagnosis_of(sandbox, "tls")
    lines = lines_of(text)
    heads = [line for line in lines if line.startswith("path")]
    assert heads == [f"path (TCP traceroute to 127.0.0.1 port {sandbox.port}, reached):"]
    hop = lines[lines.index(heads[0]) + 1]
    assert re.fullmatch(r"1  127\.0\.0\.1  \d+\.\d ms  connected", hop), hop
    assert "'ttl'" not in text and "method tcp_syn" not in text


def _failed_connect(trace: Trace) -> StageResult:
    return StageResult("tcp", Status.FAIL, 3000.0, "cannot connect: timed out",
                       condition=Condition.CONNECT_FAILED,
                       causes=(Cause(CauseId.FIREWALL, "Firewall", "Ask the network team."),),
                       evidence={"address": trace.address, "path": trace.evidence()},
                       path=trace)


def test_a_long_path_keeps_one_hop_a_line_and_its_columns() -> None:
    hops = [Hop(1, "192.168.1.1", 0.8, HopKind.TIME_EXCEEDED),
            *(Hop(ttl, f"10.0.{ttl}.1", 2.0 + ttl, HopKind.TIME_EXCEEDED) for ttl in
              range(2, 12)),
            *(Hop(ttl, None, None, HopKind.SILENT) for ttl in range(12, 17))]
    trace = Trace.of("203.0.113.9", 443, hops, 16, 2900.0, "192.168.1.20")
    text = rendered(present.detail(_failed_connect(trace), "TCP"), width=60)
    expected = [line.rstrip() for line in hop_lines(trace)]
    assert len(expected) == 12  # eleven hops, then the silent ones folded
    shown = [line.rstrip() for line in text.splitlines()]
    start = next(i for i, line in enumerate(shown) if line.strip().startswith("path ("))
    body = shown[start + 1:start + 1 + len(expected)]
    # One hop a line, aligned as traceroute aligns them (the pane's indent aside).
    assert textwrap.dedent("\n".join(body)).splitlines() == expected
    assert "'ttl'" not in text


def test_a_skipped_path_says_why_in_one_line() -> None:
    trace = Trace.skipped("203.0.113.9", 443, "TCP traceroute needs Linux here", 16)
    text = rendered(present.detail(_failed_connect(trace), "TCP"))
    assert "path: TCP traceroute needs Linux here" in lines_of(text)


def _changed(*texts: str) -> Report:
    at = "2026-12-07T09:14:00+00:00"
    changes = tuple(Change(What.ADDRESS, "was", "now", at, text) for text in texts)
    return Report(from_url("https://api.uk2.sheassure.net/v1/ping"), (),
                  "2026-12-08T10:00:00+00:00", "system", changes=changes, last_good_at=at)


def test_each_change_is_one_item_whatever_the_width() -> None:
    """The human report wraps each change at 96 columns; the pane shows each as one item,
    wrapped at its own width under its first word, every word kept."""
    long = ("api.uk2.sheassure.net now resolves to 203.0.113.9 from the hosts file "
            "(/etc/hosts line 3) (was 18.130.1.2, 18.130.1.3, 18.130.1.4, 18.130.1.5 and 2 "
            "more from DNS): the hosts file pins an address that DNS no longer gives")
    short = "HTTPS_PROXY is now set (http://proxy:8080): the check goes through a proxy"
    report = _changed(long, short)
    stage = StageResult("dns", Status.PASS, 3.0, "resolved")
    for width in (50, 300):
        text = rendered(present.detail(stage, "DNS", present.changes(report)), width)
        assert "Changed since the last good check (2026-12-07 09:14 UTC):" in " ".join(
            text.split())
        listed = [line for line in text.split("UTC):")[1].splitlines() if line.strip()]
        starts = [n for n, line in enumerate(listed) if line.startswith("  - ")]
        assert all(re.match(r"    \S", line) for n, line in enumerate(listed)
                   if n not in starts), listed
        items = [" ".join(" ".join(listed[a:b]).split())[2:]
                 for a, b in zip(starts, [*starts[1:], len(listed)], strict=True)]
        assert items == [long, short]
        assert len(listed) == 2 or width < len(long)  # wide enough: a line each
    assert present.changes(None) == []
    assert present.changes(Report(report.target, (), report.started_at, "system")) == []


def test_nothing_changed_is_said_once() -> None:
    report = _changed()
    text = rendered(Group(*present.changes(report)))
    said = lines_of("\n".join(human.changes_section(report)))
    assert lines_of(text) == said
