"""`assure-doctor tui`: the staged check, live, for the person at the terminal."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.actions import ActionParseResult
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.dom import DOMNode
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, RichLog, Static
from textual.worker import Worker, WorkerState

from assure_doctor import logs, sanitize, warmup
from assure_doctor.apikey import ApiKey
from assure_doctor.bounds import DAILY_QUOTA
from assure_doctor.engine import run_check
from assure_doctor.errors import InputError
from assure_doctor.history.record import Record
from assure_doctor.history.store import History
from assure_doctor.model import KeyInfo, Report, StageResult, Status
from assure_doctor.options import CheckOptions
from assure_doctor.probes.registry import STAGE_NAMES as STAGES
from assure_doctor.probes.registry import TITLES
from assure_doctor.probes.results import DnsFound, PingFound, TcpFound
from assure_doctor.redact import RedactingFilter
from assure_doctor.render import bundle, markdown, words
from assure_doctor.target import Target
from assure_doctor.tui import guard, present
from assure_doctor.tui.guard import crash_line, guarded
from assure_doctor.tui.screens import HelpScreen, Settings, TargetScreen

LOG_KEEP = 5000  # debug lines kept for the export's assure-doctor.log


class _PaneHandler(logging.Handler):
    """Engine log lines (guide format, secrets scrubbed) into the log pane."""

    def __init__(self, app: DoctorApp) -> None:
        super().__init__(logging.DEBUG)
        self.app = app
        self.setFormatter(logs.formatter())
        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        line = sanitize.text(self.format(record), 4000)
        self.app.log_lines.append(line)  # deque.append is thread-safe
        if not self.app.is_running or record.levelno < logging.INFO:
            return
        if self.app.ui_thread == threading.get_ident():
            self.app.write_log(line)
        else:  # from the check's thread: through the UI's loop, without waiting for it
            self.app.ui_loop.call_soon_threadsafe(self.app.write_log, line,
                                                  context=self.app.ui_context)


class DoctorApp(App[None]):
    """The pipeline, the selected stage's diagnosis, and the engine's log."""

    TITLE = "assure-doctor"
    CSS = """
    #target { height: auto; padding: 0 1; background: $boost; }
    #pipeline { height: 7; }
    #panes { height: 1fr; }
    #detail-pane { width: 3fr; border: round $primary; padding: 0 1; }
    #log { width: 2fr; border: round $secondary; }
    #status { height: 1; padding: 0 1; background: $boost; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "rerun", "Re-run"),
        Binding("f", "rerun_from", "From stage"),
        Binding("w", "watch", "Watch"),
        Binding("t", "edit_target", "Target"),
        Binding("p", "toggle_ping", "No-ping"),
        Binding("e", "export", "Export"),
        Binding("c", "copy", "Copy"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("j", "move(1)", "Down", show=False),
        Binding("k", "move(-1)", "Up", show=False),
        Binding("g", "move_to(0)", "First", show=False),
        Binding("G", "move_to(-1)", "Last", show=False),
    ]

    def __init__(self, target: Target | None, options: CheckOptions, key: ApiKey | None, *,
                 export_dir: Path | None = None, watch_interval: float = 15.0,
                 ping_interval: float = 300.0, history: History | None = None) -> None:
        """`history`: where each check is compared with the target's last good one and moved
        on (as `check` does); None keeps no history (--no-history)."""
        super().__init__()
        self.target = target
        self.options = options
        self.key = key
        self.history = history
        self.export_dir = export_dir or Path.cwd()
        self.watch_interval = watch_interval
        self.ping_interval = ping_interval
        self.results: dict[str, StageResult | None] = dict.fromkeys(STAGES)
        self.states: dict[str, str] = dict.fromkeys(STAGES, "pending")
        self.report: Report | None = None
        self.latest: Report | None = None  # the latest check's, once it ended (its changes)
        self.last_ping: StageResult | None = None  # the last ping that really ran
        self.selected = "dns"
        self.follow = True  # select the failing stage, until the user moves
        self.log_lines: deque[str] = deque(maxlen=LOG_KEEP)
        self.pings_spent = 0
        self.last_ping_at: float | None = None
        self.watching = False
        self._frame = 0
        self.ui_thread = 0  # the thread the app runs in: known on mount
        self.generation = 0  # of the latest check; results of older ones are dropped
        self.finished = 0  # the generation of the last check that ended (or failed)
        self._stop_check: Callable[[], object] = lambda: None
        self._handler = _PaneHandler(self)
        self._watch_timer: Timer | None = None

    # --- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="target")
        yield DataTable(id="pipeline", cursor_type="row")
        with Horizontal(id="panes"):
            with VerticalScroll(id="detail-pane"):
                yield Static(id="detail")
            yield RichLog(id="log", wrap=True, markup=False, max_lines=2000, min_width=20)
        yield Static(id="status")
        yield Footer()

    @guarded
    def on_mount(self) -> None:
        self.ui_thread = threading.get_ident()
        self.ui_loop = asyncio.get_running_loop()
        # Textual finds its app through context variables: calls from the check's thread
        # run in the UI's context.
        self.ui_context = contextvars.copy_context()
        # Held, not queried: while a modal screen is up, queries search the modal.
        self.table = table = self.query_one("#pipeline", DataTable)
        self.detail_view = self.query_one("#detail", Static)
        self.log_view = self.query_one("#log", RichLog)
        self.target_view = self.query_one("#target", Static)
        self.status_view = self.query_one("#status", Static)
        table.add_column("Stage", key="stage", width=6)
        table.add_column("Status", key="status", width=10)
        table.add_column("Time", key="time", width=8)
        table.add_column("Summary", key="summary")
        for name in STAGES:
            table.add_row(TITLES[name], present.status_cell("pending"), "", "", key=name)
        self.query_one("#detail-pane").border_title = "Diagnosis"
        self.log_view.border_title = "Log"
        logging.getLogger(logs.LOGGER_NAME).addHandler(self._handler)
        logging.getLogger(logs.LOGGER_NAME).setLevel(logging.DEBUG)
        warmup.warm()  # the first run's stage times are then the network's, not the imports'
        self.set_interval(0.1, self._spin)
        self._refresh_header()
        if self.target is None:
            self.action_edit_target()
        else:  # after the first paint: its work would slow the first stages down
            self.call_after_refresh(self.start_check)

    @guarded
    def on_unmount(self) -> None:
        logging.getLogger(logs.LOGGER_NAME).removeHandler(self._handler)
        with contextlib.suppress(RuntimeError):
            self._stop_check()  # quitting does not wait for a running check's timeouts

    # --- running -------------------------------------------------------------------------
    @guarded
    def start_check(self, start_at: str = "dns", network_only: bool = False) -> None:
        """Run a check in a thread with its own event loop, so that painting the screen is
        never timed as a stage; results come back to the UI's loop in order."""
        if self.target is None:
            return
        with contextlib.suppress(RuntimeError):  # its loop may have just closed
            self._stop_check()  # a thread cannot be cancelled: its check can
        self.generation += 1
        self.latest = None
        for name in STAGES[STAGES.index(start_at):]:
            self._show(name, "pending", None)
        options = replace(self.options, no_ping=True) if network_only else self.options
        resume = self.report if start_at != "dns" else None
        run = partial(self._check, self.generation, self.target, options, resume, start_at,
                      network_only)
        self.run_worker(run, exclusive=True, group="check", thread=True, exit_on_error=False)

    def _check(self, generation: int, target: Target, options: CheckOptions,
               resume: Report | None, start_at: str, network_only: bool) -> None:
        """The worker thread: one check; every result is posted to the UI, never waited on.
        The path history is read and kept here too, off the UI's loop."""

        def on_stage(name: str, result: StageResult | None) -> None:
            self._post(generation, self._on_stage, name, result)

        async def check(record: Record | None) -> Report:
            task, loop = asyncio.current_task(), asyncio.get_running_loop()
            assert task is not None
            self._stop_check = partial(loop.call_soon_threadsafe, task.cancel)
            return await run_check(target, options, self.key, on_stage=on_stage,
                                   resume=resume, start_at=start_at, history=record)

        history = self.history
        record = None if history is None else history.load(target.url)
        try:
            report = asyncio.run(check(record))
        except asyncio.CancelledError:  # a newer check replaced this one
            return
        if history is not None and record is not None:
            history.keep(target.url, record, report, datetime.now(UTC))
        self._post(generation, self._finish, report, network_only)

    def _post(self, generation: int, call: Callable[..., None], *args: object) -> None:
        """Run `call` on the UI's loop, unless a newer check has started since."""
        with contextlib.suppress(RuntimeError):  # the app has closed: nobody to tell
            self.ui_loop.call_soon_threadsafe(self._deliver, generation, call, args,
                                              context=self.ui_context)

    @guarded
    def _deliver(self, generation: int, call: Callable[..., None], args: tuple[object, ...]
                 ) -> None:
        if generation == self.generation:
            call(*args)

    async def run_action(self, action: str | ActionParseResult,
                         default_namespace: DOMNode | None = None,
                         namespaces: Mapping[str, DOMNode] | None = None) -> bool:
        """Every key's action (the app's and the screens'): an error in one stops the app
        with one line."""
        try:
            return await super().run_action(action, default_namespace, namespaces)
        except Exception as error:
            guard.stop(self, error)
            return True

    @guarded
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A check that raised: one line in the log and a notice, never a traceback."""
        if event.state is not WorkerState.ERROR or event.worker.error is None:
            return
        line = crash_line(event.worker.error)
        self.finished = self.generation
        for name, state in self.states.items():
            if state == "running":
                self._show(name, "pending", None)
        self.write_log(f"the check stopped: {line}")
        self.notify(sanitize.markup(f"The check stopped: {line}"), severity="error")

    def _finish(self, report: Report, network_only: bool) -> None:
        ping, found = report.stage("ping"), report.found(PingFound)
        if ping is not None and found is not None and found.attempts:
            self.pings_spent += found.attempts
            self.last_ping_at = time.monotonic()
            self.last_ping = ping
        if network_only and self.last_ping is not None and report.ok:
            # The watch skipped the ping to spare the quota: show the last real one.
            self._show("ping", self.last_ping.status.value, self.last_ping)
        self.report = self.latest = report
        self.finished = self.generation
        self._refresh_header()
        self._refresh_detail()  # with what changed since the last good check

    def _on_stage(self, name: str, result: StageResult | None) -> None:
        if result is None:
            self._show(name, "running", None)
        else:
            self._show(name, result.status.value, result)

    def _show(self, name: str, state: str, result: StageResult | None) -> None:
        self.states[name] = state
        self.results[name] = result
        table = self.table
        table.update_cell(name, "status", present.status_cell(state, self._frame))
        table.update_cell(name, "time", present.duration_cell(result))
        summary = words.outside(result.summary, 300) if result else ""
        table.update_cell(name, "summary", Text(summary), update_width=True)
        # The table measures new widths when its queue goes idle, but keeps the rows it
        # rendered before that: touch a cell a moment later, so that they are rendered again
        # (or a summary stays cut at the old width until the next key press).
        self.set_timer(0.05, self._touch_table)
        if result is not None and result.status is Status.FAIL and self.follow:
            first = next(n for n in STAGES if self.states[n] == "fail")
            if first != self.selected:
                self.select(first)
        if name == self.selected:
            self._refresh_detail()

    @guarded
    def _touch_table(self) -> None:
        self.table.update_cell(STAGES[0], "stage", TITLES[STAGES[0]])

    def select(self, name: str) -> None:
        """Move the cursor to a stage on the user's behalf (not counted as the user moving)."""
        self.selected = name
        self.table.move_cursor(row=self.table.get_row_index(name))
        self._refresh_detail()

    @guarded
    def _spin(self) -> None:
        self._frame += 1
        for name, state in self.states.items():
            if state == "running":
                self.table.update_cell(name, "status", present.status_cell(state, self._frame))

    # --- what is shown -------------------------------------------------------------------
    def _refresh_detail(self) -> None:
        self.detail_view.update(present.detail(self.results[self.selected],
                                               TITLES[self.selected],
                                               present.changes(self.latest)))

    def _refresh_header(self) -> None:
        target = self.target
        dns, tcp = self.results["dns"], self.results["tcp"]
        resolved = dns.found if dns is not None and isinstance(dns.found, DnsFound) else None
        address = ((words.value(list(resolved.addresses), 200) or "none found")
                   if resolved else "not resolved yet")
        used = tcp.found.address if tcp is not None and isinstance(tcp.found, TcpFound) else None
        if used:
            address += f" (using {words.outside(used, 60)})"
        resolvers = ", ".join(map(str, self.options.resolvers)) or "the system's"
        key = words.key_text(KeyInfo.of(self.key, self.options.no_ping))
        lines = [
            f"Target    {target.url if target else '(none: press t)'}"
            + (f"   (stack {target.stack})" if target and target.stack else ""),
            f"Address   {address}   Resolver {resolvers}"
            + (f"   CA bundle {self.options.ca_bundle}" if self.options.ca_bundle else ""),
            f"API key   {key}",
        ]
        self.target_view.update(Text(sanitize.text("\n".join(lines), 1000,
                                                   keep_newlines=True)))
        watch = (f"watch on: network every {self.watch_interval:g} s, ping at most every "
                 f"{self.ping_interval:g} s" if self.watching else "watch off (w)")
        status = (f"{watch}   |   key-carrying requests this session: {self.pings_spent} "
                  f"(the customer's quota: {DAILY_QUOTA:,} a day)")
        self.status_view.update(Text(status))

    @guarded
    def write_log(self, line: str) -> None:
        self.log_view.write(Text(sanitize.text(line, 4000)))

    @guarded
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = event.row_key.value
        if name in STAGES and name != self.selected:
            self.follow = False  # the user moved: leave the cursor where they put it
            self.selected = name
            self._refresh_detail()

    def action_move(self, step: int) -> None:
        self.table.action_cursor_down() if step > 0 else self.table.action_cursor_up()

    def action_move_to(self, row: int) -> None:
        self.table.move_cursor(row=row % self.table.row_count)

    # --- actions -------------------------------------------------------------------------
    def action_rerun(self) -> None:
        self.follow = True
        self.start_check()

    def action_rerun_from(self) -> None:
        self.start_check(self.selected if self.report is not None else "dns")

    def action_watch(self) -> None:
        self.watching = not self.watching
        if self.watching:
            self._watch_timer = self.set_interval(self.watch_interval, self._watch_tick)
        elif self._watch_timer is not None:
            self._watch_timer.stop()
            self._watch_timer = None
        self._refresh_header()

    @guarded
    def _watch_tick(self) -> None:
        if any(state == "running" for state in self.states.values()):
            return
        due = (self.last_ping_at is None
               or time.monotonic() - self.last_ping_at >= self.ping_interval)
        self.start_check(network_only=not due)

    def action_toggle_ping(self) -> None:
        self.options = replace(self.options, no_ping=not self.options.no_ping)
        self._refresh_header()
        self.notify("no-ping on: the key will not be sent" if self.options.no_ping
                    else "no-ping off: the next run pings with the key")

    def action_edit_target(self) -> None:
        self.push_screen(TargetScreen(self.target, self.options), self._apply_settings)

    @guarded
    def _apply_settings(self, settings: Settings | None) -> None:
        if settings is None:
            return
        self.target, self.options = settings.target, settings.options
        self.report = None
        self.follow = True
        self._refresh_header()
        self.start_check()

    def action_export(self) -> None:
        """The support bundle, as `assure-doctor report` writes it, into a new folder."""
        if self.report is None:
            self.notify("Nothing to export yet: the check has not finished", severity="warning")
            return
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = self.export_dir / f"assure-doctor-report-{stamp}"
        try:
            bundle.prepare(out)
            bundle.write(out, self.report, self.options, "\n".join(self.log_lines) + "\n")
        except (OSError, InputError) as exc:
            self.notify(sanitize.markup(f"Export failed: {crash_line(exc)}"), severity="error")
            return
        self.copy_to_clipboard(markdown.render(self.report, self.options))
        self.notify(sanitize.markup(f"Support bundle written to {out}/ and the report copied "
                                    "to the clipboard"))

    def action_copy(self) -> None:
        if self.report is None:
            self.notify("Nothing to copy yet", severity="warning")
            return
        self.copy_to_clipboard(markdown.render(self.report, self.options))
        self.notify("Report (Markdown) copied to the clipboard")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())
