"""The TUI driven by Textual's Pilot against the sandbox, and its snapshots."""

from __future__ import annotations

import asyncio
import dataclasses
import html
import io
import json
import re
import stat
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn, cast

import pytest
from rich.console import Console, RenderableType
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, RichLog, Static

from assure_doctor import trust
from assure_doctor.apikey import ApiKey
from assure_doctor.model import Report, StageResult
from assure_doctor.options import CheckOptions
from assure_doctor.probes.registry import STAGE_NAMES as STAGES
from assure_doctor.render import bundle, markdown
from assure_doctor.sandbox.stack import Sandbox
from assure_doctor.target import from_url, parse_resolver
from assure_doctor.tui import app as app_module
from assure_doctor.tui import present
from assure_doctor.tui.app import DoctorApp
from tests.conftest import FAST
from tests.waiting import until

pytestmark = pytest.mark.slow  # the TUI on a sandbox, driven by Pilot, and its snapshots

SIZE = (130, 40)
SandboxFactory = Callable[[str], Sandbox]


@pytest.fixture(autouse=True)
def without_asyncio_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    """The TUI's loops run without asyncio's debug mode (conftest turns it on): its checks
    slow Textual down so far that quitting during a check outlasts a 1.5 s ping attempt (on
    the code before the hardening too). Unretrieved and unraisable exceptions still fail
    these tests."""
    monkeypatch.delenv("PYTHONASYNCIODEBUG", raising=False)


def options_for(sandbox: Sandbox) -> CheckOptions:
    return CheckOptions(timeout=1.5, retry_pause=0.1,
                        resolvers=(parse_resolver(sandbox.resolver),),
                        trust=trust.load(str(sandbox.ca_bundle)))


def make_app(sandbox: Sandbox, tmp_path: Path | None = None, **extra: object) -> DoctorApp:
    return DoctorApp(from_url(sandbox.url), options_for(sandbox),
                     ApiKey(sandbox.key, "the sandbox key file"), export_dir=tmp_path,
                     **extra)  # type: ignore[arg-type]


async def settle(pilot: Pilot[None]) -> None:
    """Wait until the latest check has ended and its results are shown."""
    app = pilot.app
    assert isinstance(app, DoctorApp)

    async def step() -> None:  # the check's thread ends; what it posted is painted
        await app.workers.wait_for_complete()
        await pilot.pause()

    await step()
    await until(lambda: app.target is None or (app.generation and app.finished == app.generation),
                30, "the check to end and its results to be shown", step)
    # The table measures column widths when idle; the app re-lays it out 50 ms after an update.
    await pilot.pause(0.1)
    await pilot.pause()


def drive(app: DoctorApp, steps: Callable[[Pilot[None]], Awaitable[None]]) -> None:
    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await steps(pilot)

    asyncio.run(main())


def tui_command(monkeypatch: pytest.MonkeyPatch, argv: list[str],
                steps: Callable[[Pilot[Any]], Coroutine[Any, Any, None]]) -> int:
    """`assure-doctor tui ARGV` in this process, headless, driven by `steps` (Textual's
    auto-pilot); its exit code."""
    from textual.app import App

    from assure_doctor import cli

    def headless(app: DoctorApp) -> None:
        App.run(app, headless=True, size=SIZE, auto_pilot=steps)

    monkeypatch.setattr(DoctorApp, "run", headless)
    return cli.main(["tui", *argv])


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
        # Every 0.2 s: the network stages re-run, twice at least (A and AAAA each time).
        await until(lambda: len(healthy.dns_queries) >= queries + 4, 10,
                    "the watch to re-run the network stages", pilot.pause)
        await settle(pilot)
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


# --- snapshots ----------------------------------------------------------------------------
# What changes from run to run is made the same here, in the test: the sandbox's own ports,
# folder and key (known, replaced by name) and what is measured (times, dates, durations, the
# certificate's serial and fingerprint, pids). Statuses, counts and every text stay as shown.
_MEASURED: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT"),
     lambda _: "Www, DD Mmm YYYY hh:mm:ss GMT"),
    (re.compile(r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?)?"),
     lambda m: re.sub(r"\d", "N", m[0])),  # the format stays visible
    (re.compile(r"\b\d+(?:\.\d+)? ms\b"), lambda _: "N ms"),
    (re.compile(r"\bskew [-+]?\d+(?:\.\d+)? s \(±\d+(?:\.\d+)? s\)"),
     lambda _: "skew N s (±N s)"),
    (re.compile(r"\b[0-9a-f]{32,64}\b"), lambda _: "HEX"),  # serial, SHA-256
    (re.compile(r"\b(pid|tid)=\d+"), lambda m: f"{m[1]}=N"),
)
_MEASURED_EVIDENCE = frozenset({"ms", "rtt_ms", "skew_seconds", "uncertainty_seconds"})


class Volatile:
    """Masks for what one sandbox run gives that the next will not."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.known = [(str(sandbox.workdir), "/tmp/assure-sandbox-XXXXXXXX"),
                      (f"…{sandbox.key[-4:]}", "…XXXX")]
        self.ports = [(re.compile(rf"\b{sandbox.port}\b"), "PORT"),
                      (re.compile(rf"\b{sandbox.dns_port}\b"), "DNSPORT")]

    def text(self, text: str) -> str:
        for value, name in self.known:
            text = text.replace(value, name)
        for pattern, mask in _MEASURED:
            text = pattern.sub(mask, text)
        for port, name in self.ports:
            text = port.sub(name, text)
        return text

    def value(self, value: object, key: str = "") -> object:
        if key in _MEASURED_EVIDENCE and isinstance(value, int | float):
            return "N"
        if isinstance(value, dict):
            return {k: self.value(v, k) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        if isinstance(value, str | int) and not isinstance(value, bool):
            masked = self.text(str(value))
            return value if masked == str(value) else masked
        return value

    def stage(self, result: StageResult) -> StageResult:
        return dataclasses.replace(
            result, summary=self.text(result.summary),
            evidence=cast(dict[str, Any], self.value(result.evidence)),
            causes=tuple(dataclasses.replace(c, advice=self.text(c.advice))
                         for c in result.causes))

    def checks(self, real: Callable[..., Awaitable[Report]]) -> Callable[..., Awaitable[Report]]:
        """`run_check` whose results reach the app masked (as the screen would show them)."""

        async def run(*args: Any, on_stage: Callable[..., None] | None = None,
                      **kwargs: Any) -> Report:
            def masked(name: str, result: StageResult | None) -> None:
                assert on_stage is not None
                on_stage(name, None if result is None else self.stage(result))

            report = await real(*args, on_stage=masked if on_stage else None, **kwargs)
            return dataclasses.replace(report, stages=tuple(map(self.stage, report.stages)))

        return run

    async def screen(self, pilot: Pilot[None]) -> None:
        """What the app drew itself from its settings, after the check: the header (the
        target's port, the resolver, the CA bundle's folder) and the stage times."""
        app = pilot.app
        header = app.query_one("#target", Static)
        header.update(Text(self.text(str(header.content))))
        table = app.query_one("#pipeline", DataTable)
        for name in STAGES:
            table.update_cell(name, "time", self.text(str(table.get_cell(name, "time"))))
        await pilot.pause()


class StableApp(DoctorApp):
    """The app, with its log pane's lines masked as they are written."""

    def __init__(self, volatile: Volatile, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.volatile = volatile

    def write_log(self, line: str) -> None:
        super().write_log(self.volatile.text(line))


@pytest.fixture
def stable(monkeypatch: pytest.MonkeyPatch
           ) -> Callable[[Sandbox], tuple[DoctorApp, Volatile]]:
    """An app on a sandbox whose volatile values are masked before anything is drawn."""

    def make(sandbox: Sandbox) -> tuple[DoctorApp, Volatile]:
        volatile = Volatile(sandbox)
        monkeypatch.setattr(app_module, "run_check", volatile.checks(app_module.run_check))
        app = StableApp(volatile, from_url(sandbox.url), options_for(sandbox),
                        ApiKey(sandbox.key, "the sandbox key file"))
        return app, volatile

    return make


Stable = Callable[[Sandbox], tuple[DoctorApp, Volatile]]


def snapshot_of(stable: Stable, sandbox: Sandbox, snap_compare: Callable[..., bool],
                stage: str | None = None) -> bool:
    app, volatile = stable(sandbox)

    async def before(pilot: Pilot[None]) -> None:
        await settle(pilot)  # snap_compare waits for no worker: the check must be over
        if stage is not None:
            await select(pilot, stage)
        await volatile.screen(pilot)

    return snap_compare(app, terminal_size=SIZE, run_before=before)


def test_snapshot_healthy(healthy: Sandbox, stable: Stable,
                          snap_compare: Callable[..., bool]) -> None:
    assert snapshot_of(stable, healthy, snap_compare)


def test_snapshot_tls_failure(sandbox_factory: SandboxFactory, stable: Stable,
                              snap_compare: Callable[..., bool]) -> None:
    assert snapshot_of(stable, sandbox_factory("tls-unknown-issuer"), snap_compare, "tls")


def test_the_masks_hide_only_what_changes_from_run_to_run(healthy: Sandbox) -> None:
    volatile = Volatile(healthy)
    line = (f"2026-12-07 06:23:35.756 pid=41 tid=42 INFO assure_doctor.tcp: ::1 port "
            f"{healthy.port}: connected in 12 ms via 127.0.0.1:{healthy.dns_port}; CA bundle "
            f"{healthy.workdir}/ca.pem; key …{healthy.key[-4:]}; HTTP 401 after 3 attempts, "
            "valid until 2027-02-05 (60 days), 36 chars, skew +0.3 s (±0.5 s), Date: Mon, "
            "07 Dec 2026 06:23:35 GMT, limit 10 s, quota 10,000 a day")
    assert volatile.text(line) == (
        "NNNN-NN-NN NN:NN:NN.NNN pid=N tid=N INFO assure_doctor.tcp: ::1 port PORT: connected "
        "in N ms via 127.0.0.1:DNSPORT; CA bundle /tmp/assure-sandbox-XXXXXXXX/ca.pem; key "
        "…XXXX; HTTP 401 after 3 attempts, valid until NNNN-NN-NN (60 days), 36 chars, skew N "
        "s (±N s), Date: Www, DD Mmm YYYY hh:mm:ss GMT, limit 10 s, quota 10,000 a day")
    assert volatile.value({"attempts": [{"port": healthy.port, "ms": 1.5}], "status_code": 401,
                           "rtt_ms": 0.4, "verified": True}) == {
        "attempts": [{"port": "PORT", "ms": "N"}], "status_code": 401, "rtt_ms": "N",
        "verified": True}


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


@pytest.mark.parametrize("where", ["showing a stage", "a key's action"])
def test_an_error_of_its_own_stops_the_tui_with_one_sanitised_line(
        where: str, healthy: Sandbox, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`assure-doctor tui` stops on an error in its own code: exit 1, one line on stderr,
    never a traceback (Textual's would print every frame's locals)."""
    secret_local = healthy.key  # a traceback with locals would print this  # noqa: F841

    def broken(*args: object, **kwargs: object) -> NoReturn:
        raise ValueError(f"bad \x1b]0;title\x07 value {healthy.key}")

    if where == "showing a stage":  # a result posted from the check's thread
        monkeypatch.setattr(present, "detail", broken)
    else:
        monkeypatch.setattr(markdown, "render", broken)  # `c` copies the report

    async def steps(pilot: Pilot[None]) -> None:
        app = pilot.app
        if where == "a key's action":
            await settle(pilot)
            assert app.return_code is None
            await pilot.press("c")
        await until(lambda: app.return_code is not None, 30, "the TUI to stop", pilot.pause)

    assert tui_command(monkeypatch, [*healthy.check_args(), *FAST], steps) == 1
    printed = capsys.readouterr().err.strip()
    assert printed.count("\n") == 0, printed
    assert printed.startswith("assure-doctor tui stopped: ValueError: bad \\x1b]0;title\\x07")
    assert healthy.key not in printed and "[REDACTED]" in printed


def test_snapshot_dns_failure_opens_on_the_diagnosis(sandbox_factory: SandboxFactory,
                                                     stable: Stable,
                                                     snap_compare: Callable[..., bool]) -> None:
    assert snapshot_of(stable, sandbox_factory("dns-nxdomain"), snap_compare)


def test_snapshot_http_401_opens_on_the_diagnosis(sandbox_factory: SandboxFactory,
                                                  stable: Stable,
                                                  snap_compare: Callable[..., bool]) -> None:
    assert snapshot_of(stable, sandbox_factory("http-401"), snap_compare)


def test_a_new_check_cancels_the_running_one(sandbox_factory: SandboxFactory) -> None:
    sandbox = sandbox_factory("http-slow")
    app = make_app(sandbox)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await until(lambda: app.states["ping"] == "running" and sandbox.traffic.keyed, 15,
                        "the first ping to be under way", pilot.pause)
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
            await until(lambda: sandbox.traffic.keyed, 15, "the ping to be under way",
                        pilot.pause)
            await pilot.press("q")

    start = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - start < 3.5  # not the 3 x 1.5 s the ping's attempts would take
    assert sandbox.traffic.keyed == 1
