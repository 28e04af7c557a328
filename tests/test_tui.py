"""The TUI driven by Textual's Pilot against the sandbox, and its snapshots."""

from __future__ import annotations

import asyncio
import html
import io
import json
import re
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from rich.console import Console, RenderableType
from textual.pilot import Pilot
from textual.widgets import DataTable, RichLog, Static

from assure_doctor import trust
from assure_doctor.apikey import ApiKey
from assure_doctor.options import CheckOptions
from assure_doctor.probes.registry import STAGE_NAMES as STAGES
from assure_doctor.render import bundle
from assure_doctor.sandbox.stack import Sandbox
from assure_doctor.target import from_url, parse_resolver
from assure_doctor.tui.app import DoctorApp

SIZE = (130, 40)
SandboxFactory = Callable[[str], Sandbox]


def make_app(sandbox: Sandbox, tmp_path: Path | None = None, **extra: object) -> DoctorApp:
    options = CheckOptions(timeout=1.5, retry_pause=0.1,
                           resolvers=(parse_resolver(sandbox.resolver),),
                           trust=trust.load(str(sandbox.ca_bundle)))
    return DoctorApp(from_url(sandbox.url), options, ApiKey(sandbox.key, "the sandbox key file"),
                     export_dir=tmp_path, **extra)  # type: ignore[arg-type]


async def settle(pilot: Pilot[None]) -> None:
    """Wait until the latest check has ended and its results are shown."""
    app = pilot.app
    assert isinstance(app, DoctorApp)
    for _ in range(600):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if app.target is None or (app.generation and app.finished == app.generation):
            break
        await asyncio.sleep(0.05)
    # The table measures column widths when idle; the app re-lays it out 50 ms after an update.
    await pilot.pause(0.1)
    await pilot.pause()


def drive(app: DoctorApp, steps: Callable[[Pilot[None]], Awaitable[None]]) -> None:
    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await steps(pilot)

    asyncio.run(main())


def detail_text(app: DoctorApp) -> str:
    """The Diagnosis pane's text, rendered as the terminal shows it (wide, so no wrapping)."""
    console = Console(width=400, record=True, file=io.StringIO())
    console.print(app.query_one("#detail", Static).content)
    return console.export_text()


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
        assert app.selected == stage  # opened on the failure, not on DNS's pass
        assert app.table.cursor_row == STAGES.index(stage)
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


def test_export_writes_the_support_bundle_without_the_key(healthy: Sandbox, tmp_path: Path
                                                         ) -> None:
    app = make_app(healthy, tmp_path)

    async def steps(pilot: Pilot[None]) -> None:
        await pilot.press("e")
        await pilot.pause()

    drive(app, steps)
    [folder] = tmp_path.glob("assure-doctor-report-*")
    assert sorted(path.name for path in folder.iterdir()) == sorted(bundle.FILES)
    text = (folder / "report.md").read_text()
    assert "| ping | ✅ pass |" in text and healthy.url in text
    assert json.loads((folder / "report.json").read_text())["ok"] is True
    assert "assure_doctor.engine: Checking" in (folder / "assure-doctor.log").read_text()
    assert "curl " in (folder / "reproduce.txt").read_text()
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
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


def test_keys_move_like_the_arrows_and_the_user_keeps_the_cursor(
        sandbox_factory: SandboxFactory) -> None:
    app = make_app(sandbox_factory("http-401"))

    async def steps(pilot: Pilot[None]) -> None:
        assert app.selected == "ping"
        await pilot.press("g")
        assert app.selected == "dns" and "DNS" in detail_text(app)
        await pilot.press("j", "j", "j")
        assert app.selected == "tls"
        await pilot.press("k")
        assert app.selected == "proxy"
        await pilot.press("G")
        assert app.selected == "ping"
        await pilot.press("k")
        await pilot.press("f")  # re-run from clock: the ping fails again ...
        await settle(pilot)
        assert app.selected == "clock"  # ... but the user moved, so the cursor stays

    drive(app, steps)


def test_evidence_and_advice_read_as_text(sandbox_factory: SandboxFactory) -> None:
    app = make_app(sandbox_factory("tls-unknown-issuer"))

    async def steps(pilot: Pilot[None]) -> None:
        await select(pilot, "tcp")
        shown = detail_text(app)
        assert "attempts: (address 127.0.0.1, port " in shown and "{'" not in shown
        await select(pilot, "tls")
        console = Console(width=60, record=True, file=io.StringIO())
        content: RenderableType = app.query_one("#detail", Static).content  # type: ignore
        console.print(content)
        causes = console.export_text().split("Likely causes, most likely first:")[1]
        lines = [line for line in causes.split("Evidence:")[0].splitlines() if line.strip()]
        assert len(lines) > 6  # wrapped at 60 columns
        assert all(re.match(r"^\d\. |^   \S", line) for line in lines), lines

    drive(app, steps)


def test_hostile_server_cannot_drive_the_tui_or_show_the_key(tmp_path: Path) -> None:
    from tests.key_echo import MARKUP, PLANTED, KeyEcho

    with KeyEcho(PLANTED, tmp_path) as server:
        options = CheckOptions(timeout=1.5, retries=0, trust=trust.load(str(server.ca_bundle)))
        app = DoctorApp(from_url(f"https://127.0.0.1:{server.port}/v1/ping"), options,
                        ApiKey(PLANTED, "ASSURE_API_KEY"))

        async def steps(pilot: Pilot[None]) -> None:
            assert app.is_running and app.selected == "ping"
            shown = detail_text(app)
            assert "http_redirect" in shown and MARKUP in shown  # shown, not interpreted
            for text in (screen_text(app), log_text(app), shown):
                assert PLANTED not in text and "\x1b]" not in text
            await select(pilot, "tls")
            assert PLANTED not in detail_text(app)

        drive(app, steps)


def test_a_failing_check_is_one_line_and_the_tui_keeps_running(
        healthy: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from assure_doctor.tui import app as app_module

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"probe broke near {healthy.key}")

    monkeypatch.setattr(app_module, "run_check", broken)
    app = make_app(healthy)

    async def steps(pilot: Pilot[None]) -> None:
        assert app.is_running
        log = " ".join(log_text(app).split())  # the pane wraps long lines
        assert "the check stopped: RuntimeError: probe broke near [REDACTED]" in log
        assert "Traceback" not in screen_text(app) and healthy.key not in log

    drive(app, steps)


def test_a_crash_prints_one_sanitised_line_without_locals(
        healthy: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    app = make_app(healthy)
    secret_local = healthy.key  # a traceback with locals would print this  # noqa: F841

    def crash() -> None:
        raise ValueError(f"bad \x1b]0;title\x07 value {healthy.key}")

    async def steps(pilot: Pilot[None]) -> None:
        app.call_later(crash)
        await pilot.pause()

    with pytest.raises(ValueError):  # Pilot re-raises it for the test; a user sees stderr
        drive(app, steps)
    printed = capsys.readouterr().err.strip()
    assert printed.count("\n") == 0, printed
    assert printed.startswith("assure-doctor tui stopped: ValueError: bad \\x1b]0;title\\x07")
    assert healthy.key not in printed and "[REDACTED]" in printed


def test_snapshot_dns_failure_opens_on_the_diagnosis(sandbox_factory: SandboxFactory,
                                                     snap_compare: Callable[..., bool]) -> None:
    app = make_app(sandbox_factory("dns-nxdomain"), stable=True)
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_snapshot_http_401_opens_on_the_diagnosis(sandbox_factory: SandboxFactory,
                                                  snap_compare: Callable[..., bool]) -> None:
    app = make_app(sandbox_factory("http-401"), stable=True)
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_a_new_check_cancels_the_running_one(sandbox_factory: SandboxFactory) -> None:
    sandbox = sandbox_factory("http-slow")
    app = make_app(sandbox)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(100):
                if app.states["ping"] == "running" and sandbox.traffic.keyed:
                    break
                await asyncio.sleep(0.05)
            assert sandbox.traffic.keyed == 1
            await pilot.press("r")  # the first ping's retries must not be sent
            await settle(pilot)
            assert app.states["ping"] == "fail"

    asyncio.run(main())
    assert sandbox.traffic.keyed == 1 + 3  # the cancelled check's one, then the new three


def test_quitting_does_not_wait_for_a_running_check(sandbox_factory: SandboxFactory) -> None:
    import time

    sandbox = sandbox_factory("http-slow")
    app = make_app(sandbox)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            while not sandbox.traffic.keyed:
                await asyncio.sleep(0.05)
            await pilot.press("q")

    start = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - start < 3.5  # not the 3 x 1.5 s the ping's attempts would take
    assert sandbox.traffic.keyed == 1
