"""An error in our own code on the UI's loop stops the TUI with one sanitised line.

Textual's crash report prints every frame's locals, where a hostile string may sit. So each
entry point of ours that Textual or the loop calls is guarded, and an error in it ends the app
through Textual's public `App.exit(return_code=1, message=...)`: one line on stderr, exit 1.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any, Concatenate, ParamSpec, TypeVar

from rich.segment import Segment, Segments
from textual.app import App
from textual.message_pump import MessagePump

from assure_doctor import sanitize

P = ParamSpec("P")
R = TypeVar("R")
Node = TypeVar("Node", bound=MessagePump)


def crash_line(error: BaseException) -> str:
    """One sanitised line for an error: never a traceback, never a frame's locals."""
    return f"{type(error).__name__}: {sanitize.text(error, 200)}"


def stop(app: App[Any], error: BaseException) -> None:
    """End the app with one line for `error`; only the first error is told (the app may
    already be ending, by the user's choice or an earlier error)."""
    if app.return_code is not None:
        return
    line = f"assure-doctor tui stopped: {crash_line(error)}"
    app.exit(return_code=1, message=Segments([Segment(line)]))  # as is: never wrapped


def guarded(method: Callable[Concatenate[Node, P], R]
            ) -> Callable[Concatenate[Node, P], R | None]:
    """`method` of an app or a screen, stopping the app with one line if it raises."""

    def run(node: Node, /, *args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return method(node, *args, **kwargs)
        except Exception as error:
            stop(node if isinstance(node, App) else node.app, error)
            return None

    update_wrapper(run, method)  # Textual reads the handler's signature through it
    return run
