"""The TUI keeps the path history `check` keeps, and says what changed since the last good
check; --no-history keeps none. Driven by Pilot against the sandbox's changing scenarios."""

from __future__ import annotations

import asyncio
import stat
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from assure_doctor.history.store import History
from assure_doctor.sandbox.stack import Sandbox
from assure_doctor.tui.app import DoctorApp
from tests.conftest import FAST, clean_env, run_cli
from tests.test_tui import SIZE, detail_text, make_app, select, settle, tui_command
from tests.waiting import until

pytestmark = pytest.mark.slow

SandboxFactory = Callable[[str], Sandbox]
SECTION = "Changed since the last good check ("
NEW_ISSUER = "the certificate is now issued by "


def first_cause(shown: str) -> str:
    return shown.split("Likely causes, most likely first:")[1].splitlines()[1]


async def second_check_by(pilot: Pilot[None], how: str) -> None:
    """Start the second check as the user would, and wait until it has been shown."""
    app = pilot.app
    assert isinstance(app, DoctorApp)
    first = app.generation
    if how == "from the tls stage":
        await select(pilot, "tls")
        await pilot.press("f")
    elif how == "watch":
        await pilot.press("w")
    else:
        await pilot.press("r")
    await until(lambda: app.generation > first and app.finished == app.generation, 30,
                "the second check to end", pilot.pause)
    if app.watching:
        await pilot.press("w")
    await settle(pilot)


@pytest.mark.parametrize("how", ["re-run", "from the tls stage", "watch"])
def test_the_second_check_says_what_changed(how: str, sandbox_factory: SandboxFactory,
                                            tmp_path: Path) -> None:
    """changed-issuer: the first check is good; then TLS inspection re-signs the certificate.
    However the second check starts, it is compared with the first, and the change is shown
    and ranks TLS interception first."""
    sandbox = sandbox_factory("changed-issuer")
    app = make_app(sandbox, history=History(tmp_path), watch_interval=0.2)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.report is not None and app.report.ok
            assert SECTION not in detail_text(app)  # nothing to compare with yet
            await second_check_by(pilot, how)
            assert app.selected == "tls" and app.states["tls"] == "fail"
            shown = detail_text(app)
            assert SECTION in shown
            changes = shown.split(SECTION)[1].split("Likely causes")[0]
            assert f"- {NEW_ISSUER}" in changes and "TLS inspection" in changes
            assert "(tls_interception)" in first_cause(shown)
            assert sandbox.key not in shown

    asyncio.run(main())
    [kept] = (tmp_path / "history").iterdir()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert sandbox.key not in kept.read_text()


def two_checks(seen: list[str]) -> Callable[[Pilot[Any]], Coroutine[Any, Any, None]]:
    """Auto-pilot steps: the first check, a re-run, each one's Diagnosis pane; then quit."""

    async def steps(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, DoctorApp)
        await settle(pilot)
        seen.append(detail_text(app))
        await second_check_by(pilot, "re-run")
        seen.append(detail_text(app))
        app.exit()

    return steps


@pytest.mark.parametrize("keep", [True, False], ids=["history", "no-history"])
def test_tui_keeps_the_history_check_keeps_unless_no_history(
        keep: bool, sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """`assure-doctor tui` keeps the path history in the platform's state dir, where `check`
    reads it; with --no-history it shows no change and writes nothing."""
    sandbox = sandbox_factory("changed-issuer")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    seen: list[str] = []
    argv = [*sandbox.check_args(), *FAST, *([] if keep else ["--no-history"])]
    assert tui_command(monkeypatch, argv, two_checks(seen)) == 0
    assert len(seen) == 2 and "[tls_certificate_error]" in seen[1]
    assert SECTION not in seen[0]
    if not keep:
        assert SECTION not in seen[1] and NEW_ISSUER not in seen[1]
        assert not (tmp_path / "assure-doctor").exists()
        return
    assert SECTION in seen[1] and NEW_ISSUER in seen[1]
    # `check` compares with the TUI's good check, from the same file.
    run = run_cli("check", *sandbox.check_args(), *FAST, "--json",
                  env=clean_env(XDG_STATE_HOME=str(tmp_path)))
    assert run.returncode == 1, run.stdout + run.stderr
    document = run.json()
    assert document["last_good_at"] is not None
    assert "issuer" in [change["what"] for change in document["changes"]]


def test_tui_on_the_sandbox_compares_within_the_session_only(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The sandbox's stacks are throwaway: the TUI says what changed between its own checks
    and leaves nothing in the state dir, nor behind in the temporary one."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    before = set(Path(tempfile.gettempdir()).glob("assure-tui-*"))
    seen: list[str] = []
    assert tui_command(monkeypatch, ["--sandbox", "changed-issuer", *FAST],
                       two_checks(seen)) == 0
    assert len(seen) == 2 and SECTION not in seen[0]
    assert SECTION in seen[1] and NEW_ISSUER in seen[1]
    assert not (tmp_path / "assure-doctor").exists()
    assert set(Path(tempfile.gettempdir()).glob("assure-tui-*")) == before
