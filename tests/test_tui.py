"""The TUI driven by Textual's Pilot against the sandbox, and its snapshots."""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, RichLog, Static

from assure_doctor.apikey import ApiKey
from assure_doctor.options import CheckOptions
from assure_doctor.sandbox.stack import Sandbox
from assure_doctor.target import from_url, parse_resolver
from assure_doctor.tui.app import DoctorApp

SIZE = (130, 40)
SandboxFactory = Callable[[str], Sandbox]


def make_app(sandbox: Sandbox, tmp_path: Path | None = None, **extra: object) -> DoctorApp:
    options = CheckOptions(timeout=1.5, retry_pause=0.1,
                           resolvers=(parse_resolver(sandbox.resolver),),
                           ca_bundle=str(sandbox.ca_bundle))
    return DoctorApp(from_url(sandbox.url), options, ApiKey(sandbox.key, "the sandbox key file"),
                     export_dir=tmp_path, **extra)  # type: ignore[arg-type]


async def settle(pilot: Pilot[None]) -> None:
    """Wait for the check's worker, then for the screen to catch up."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def drive(app: DoctorApp, steps: Callable[[Pilot[None]], Awaitable[None]]) -> None:
    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await steps(pilot)

    asyncio.run(main())


def detail_text(app: DoctorApp) -> str:
    return str(app.query_one("#detail", Static).content)


def screen_text(app: DoctorApp) -> str:
    """What the terminal shows, as plain text (from Textual's SVG screenshot)."""
    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


def log_text(app: DoctorApp) -> str:
    return "\n".join(strip.text for strip in app.query_one("#log", RichLog).lines)


async def select(pilot: Pilot[None], stage: str) -> None:
    table = pilot.app.query_one("#pipeline", DataTable)
    table.move_cursor(row=table.get_row_index(stage))
    await pilot.pause()


@pytest.mark.parametrize(("scenario", "states", "stage"), [
    ("healthy", ["pass", "pass", "skip", "pass", "pass", "pass"], None),
    ("dns-nxdomain", ["fail", "skip", "skip", "skip", "skip", "skip"], "dns"),
    ("tcp-refused", ["pass", "fail", "skip", "skip", "skip", "skip"], "tcp"),
    ("tls-expired", ["pass", "pass", "skip", "fail", "pass", "skip"], "tls"),
    ("http-401", ["pass", "pass", "skip", "pass", "pass", "fail"], "ping"),
])
def test_run_shows_stage_states_and_the_diagnosis(
        scenario: str, states: list[str], stage: str | None,
        sandbox_factory: SandboxFactory) -> None:
    sandbox = sandbox_factory(scenario)
    app = make_app(sandbox)
    expect = sandbox.scenario.expect

    async def steps(pilot: Pilot[None]) -> None:
        assert list(app.states.values()) == states
        if stage is None:
            assert app.report is not None and app.report.ok
            return
        await select(pilot, stage)
        shown = detail_text(app)
        assert f"[{expect.condition}]" in shown
        first_cause = shown.split("Likely causes, most likely first:")[1].splitlines()[1]
        assert f"({expect.cause})" in first_cause
        for text in (screen_text(app), log_text(app), shown):
            assert sandbox.key not in text

    drive(app, steps)


def test_rerun_from_the_selected_stage_keeps_the_earlier_ones(healthy: Sandbox) -> None:
    app = make_app(healthy)

    async def steps(pilot: Pilot[None]) -> None:
        queries = len(healthy.dns_queries)
        await select(pilot, "tls")
        await pilot.press("f")
        await settle(pilot)
        assert len(healthy.dns_queries) == queries  # dns was not asked again
        assert healthy.traffic.keyed == 2  # the ping ran again
        await pilot.press("r")
        await settle(pilot)
        assert len(healthy.dns_queries) > queries

    drive(app, steps)


def test_no_ping_and_watch_spare_the_quota(healthy: Sandbox) -> None:
    app = make_app(healthy, watch_interval=0.2, ping_interval=3600)

    async def steps(pilot: Pilot[None]) -> None:
        assert healthy.traffic.keyed == 1 and app.pings_spent == 1
        await pilot.press("p", "r")
        await settle(pilot)
        assert healthy.traffic.keyed == 1
        assert "no-ping" in screen_text(app)
        await pilot.press("p")
        queries = len(healthy.dns_queries)
        await pilot.press("w")
        await asyncio.sleep(1.2)
        await settle(pilot)
        assert len(healthy.dns_queries) >= queries + 4  # the network stages re-ran
        assert healthy.traffic.keyed == 1  # but the ping waits for its interval
        assert app.states["ping"] == "pass"  # still showing the last real ping
        assert "key-carrying requests this session: 1" in screen_text(app)

    drive(app, steps)


def test_export_writes_markdown_and_json_without_the_key(healthy: Sandbox, tmp_path: Path
                                                         ) -> None:
    app = make_app(healthy, tmp_path)

    async def steps(pilot: Pilot[None]) -> None:
        await pilot.press("e")
        await pilot.pause()

    drive(app, steps)
    markdown = list(tmp_path.glob("assure-doctor-report-*.md"))
    documents = list(tmp_path.glob("assure-doctor-report-*.json"))
    assert len(markdown) == 1 and len(documents) == 1
    text = markdown[0].read_text()
    assert "| ping | ✅ pass |" in text and healthy.url in text
    assert json.loads(documents[0].read_text())["ok"] is True
    for path in (*markdown, *documents):
        assert healthy.key not in path.read_text()


def test_changing_the_target_validates_and_reruns(healthy: Sandbox,
                                                 sandbox_factory: SandboxFactory) -> None:
    other = sandbox_factory("dns-nxdomain")
    app = make_app(healthy)

    async def steps(pilot: Pilot[None]) -> None:
        await pilot.press("t")
        await pilot.pause()
        url = pilot.app.screen.query_one("#url")
        url.value = "http://not-https.example/"  # type: ignore[attr-defined]
        await pilot.click("#apply")
        await pilot.pause()
        error = str(pilot.app.screen.query_one("#target-error", Static).content)
        assert "https" in error
        url.value = other.url  # type: ignore[attr-defined]
        resolvers = pilot.app.screen.query_one("#resolvers")
        resolvers.value = other.resolver  # type: ignore[attr-defined]
        await pilot.pause(0.3)  # a Button ignores a second click while it shows the first
        await pilot.click("#apply")
        await settle(pilot)
        assert app.target is not None and app.target.url == other.url
        assert app.states["dns"] == "fail"
        assert app.results["dns"] is not None
        assert app.results["dns"].condition == "dns_lookup_failed"

    drive(app, steps)


def test_help_screen_opens_and_closes(healthy: Sandbox) -> None:
    app = make_app(healthy)

    async def steps(pilot: Pilot[None]) -> None:
        await pilot.press("question_mark")
        await pilot.pause()
        assert "re-run from the selected stage" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert "re-run from the selected stage" not in screen_text(app)

    drive(app, steps)


# --- snapshots: volatile values (ports, times, dates, paths) are masked by stable=True -----
def test_snapshot_healthy(healthy: Sandbox, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(make_app(healthy, stable=True), terminal_size=SIZE, run_before=settle)


def test_snapshot_tls_failure(sandbox_factory: SandboxFactory,
                              snap_compare: Callable[..., bool]) -> None:
    sandbox = sandbox_factory("tls-unknown-issuer")

    async def before(pilot: Pilot[None]) -> None:
        await settle(pilot)
        await select(pilot, "tls")

    assert snap_compare(make_app(sandbox, stable=True), terminal_size=SIZE, run_before=before)


def test_tui_bad_input_is_exit_2() -> None:
    from tests.conftest import run_cli

    run = run_cli("tui", "--sandbox", "no-such-scenario")
    assert run.returncode == 2 and "no-such-scenario" in run.stderr
    run = run_cli("tui", "--sandbox", "healthy", "--url", "https://127.0.0.1:9/v1/ping")
    assert run.returncode == 2 and "--sandbox" in run.stderr
    assert "Traceback" not in run.stderr
