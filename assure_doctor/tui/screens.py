"""Modal screens: change the target in place, and help."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from assure_doctor import trust
from assure_doctor.errors import InputError
from assure_doctor.options import CheckOptions
from assure_doctor.probes.registry import TITLES
from assure_doctor.target import Target, parse_resolver, resolve_target
from assure_doctor.tui.guard import guarded


@dataclass(frozen=True)
class Settings:
    """The part of the target the user may change in place."""

    target: Target
    options: CheckOptions


class TargetScreen(ModalScreen[Settings | None]):
    """Edit stack or URL, resolvers, CA bundle, timeout and --no-ping; validated on Apply."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    TargetScreen { align: center middle; }
    #target-form { width: 90; height: auto; max-height: 100%; overflow-y: auto;
                   border: thick $accent; padding: 1 2;
                   background: $surface; }
    #target-form Label { margin-top: 1; }
    #target-error { color: $error; height: auto; }
    #target-buttons { height: auto; align-horizontal: right; }
    """

    def __init__(self, target: Target | None, options: CheckOptions) -> None:
        super().__init__()
        self.target = target
        self.options = options

    def compose(self) -> ComposeResult:
        target, options = self.target, self.options
        with Vertical(id="target-form"):
            yield Label("Stack (e.g. uk2) — or leave empty and give a URL")
            yield Input(target.stack or "" if target else "", id="stack")
            yield Label("URL (https://host[:port]/v1/ping)")
            yield Input("" if target is None or target.stack else target.url, id="url")
            yield Label("Resolvers (comma-separated ADDRESS[:PORT]; empty: the system's)")
            yield Input(", ".join(map(str, options.resolvers)), id="resolvers")
            yield Label("CA bundle (PEM path; empty: certifi only)")
            yield Input(options.ca_bundle or "", id="ca-bundle")
            yield Label("Timeout (seconds)")
            yield Input(f"{options.timeout:g}", id="timeout")
            yield Checkbox("No ping (send nothing that carries the key)", options.no_ping,
                           id="no-ping")
            yield Static("", id="target-error")
            with Horizontal(id="target-buttons"):
                yield Button("Apply", variant="primary", id="apply")
                yield Button("Cancel", id="cancel")

    @guarded
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
            return
        try:
            self.dismiss(self._settings())
        except InputError as exc:
            self.query_one("#target-error", Static).update(str(exc))

    @guarded
    def on_input_submitted(self) -> None:
        self.query_one("#apply", Button).press()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def _settings(self) -> Settings:
        target = resolve_target(self._value("stack") or None, self._value("url") or None)
        resolvers = tuple(parse_resolver(text) for text in self._value("resolvers").split(",")
                          if text.strip())
        try:
            timeout = float(self._value("timeout"))
        except ValueError:
            raise InputError(f"--timeout {self._value('timeout')!r}: not a number") from None
        # A bad bundle is refused here, like on the CLI.
        options = replace(self.options, resolvers=resolvers, timeout=timeout,
                          trust=trust.load(self._value("ca-bundle") or None),
                          no_ping=self.query_one("#no-ping", Checkbox).value)
        return Settings(target, options)


# Each paragraph is one line of text, so that the help wraps at words at any width.
HELP = "\n\n".join((
    "[b]assure-doctor tui[/b]: the staged check, live.",
    f"Stages run in order: {' > '.join(TITLES.values())}. Select a stage to see the guide's "
    "condition, the causes most likely first with advice, and its evidence. When a stage "
    "fails it is selected for you, until you move.",
    "\n".join((
        "  [b]↑ ↓ j k[/b]  select a stage      [b]g G[/b]  the first / the last stage",
        "  [b]r[/b]  re-run every stage        [b]f[/b]  re-run from the selected stage",
        "  [b]w[/b]  watch: the network stages on an interval; the ping no more often than "
        "the quota allows",
        "  [b]t[/b]  change the target (stack, URL, resolver, CA bundle, timeout, no-ping)",
        "  [b]p[/b]  toggle --no-ping          [b]e[/b]  export the support bundle (as `report` "
        "writes it)",
        "  [b]c[/b]  copy the report           [b]q[/b]  quit      [b]?[/b]  this help",
    )),
    "The API key is never shown: only where it came from and its length.",
))


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "close", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    #help { width: 84; height: auto; border: thick $accent; padding: 1 2; background: $surface; }
    """

    def compose(self) -> ComposeResult:
        yield Static(HELP, id="help")

    def action_close(self) -> None:
        self.dismiss(None)
