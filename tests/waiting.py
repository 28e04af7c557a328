"""Waiting in tests: for a condition, with a deadline, never for a fixed time.

`wait_until` polls a predicate with short pauses until it holds; a process the wait depends
on is watched too, so that a dead monitor fails the test at once, with its stderr, instead of
after the whole timeout (or, worse, instead of passing because nothing more happened).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
POLL = 0.05  # seconds between two looks at the condition
# A predicate may look at something not there yet: a port not listening, a file not written.
NOT_YET: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError, IndexError)


def wait_until(predicate: Callable[[], T], timeout: float, what: str, *,
               alive: subprocess.Popen[Any] | Iterable[subprocess.Popen[Any]] = (),
               interval: float = POLL) -> T:
    """The predicate's first true value, polled until `timeout` seconds have passed.

    Fails when the time is up, or at once when a process in `alive` has exited (with the end
    of its stderr when that is a pipe)."""
    processes = [alive] if isinstance(alive, subprocess.Popen) else list(alive)
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: its wait() is the pause between two looks
    while True:
        with contextlib.suppress(*NOT_YET):
            value = predicate()
            if value:
                return value
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"{describe(process)} exited with {process.returncode} "
                                     f"while waiting for {what}{stderr_of(process)}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        pause.wait(interval)


async def until(predicate: Callable[[], T], timeout: float, what: str,
                step: Callable[[], Awaitable[object]] | None = None) -> T:
    """`wait_until` inside an event loop: between two looks, `step` (e.g. a Pilot's pause),
    or a short wait that lets the loop run."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        if step is not None:
            await step()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), POLL)


def describe(process: subprocess.Popen[Any]) -> str:
    args = process.args if isinstance(process.args, list) else [process.args]
    return " ".join(str(arg) for arg in args[:6]) + (" ..." if len(args) > 6 else "")


def stderr_of(process: subprocess.Popen[Any], limit: int = 3000) -> str:
    """The end of a finished process's stderr, when the test kept it in a pipe."""
    if process.stderr is None or process.stderr.closed:
        return ""
    with contextlib.suppress(OSError, ValueError):
        data = process.stderr.read()
        text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
        return f"; its stderr ends:\n{text[-limit:]}" if text.strip() else ""
    return ""
