"""Stop (and reload) on the platform's signals.

POSIX: SIGTERM and SIGINT stop, SIGHUP re-reads the config, through the loop's own signal
handling. Windows has no `loop.add_signal_handler`: Ctrl+C (SIGINT) and Ctrl+Break (SIGBREAK)
go through `signal.signal`, whose handler runs in the main thread between bytecodes and only
hands the stop to the loop with `call_soon_threadsafe`. There is no SIGHUP there: use
`POST /-/reload`.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from types import FrameType


def install(loop: asyncio.AbstractEventLoop, stop: Callable[[], None],
            reload: Callable[[], None]) -> Callable[[], None]:
    """Route the stop and reload signals to the callbacks; returns a function that undoes it."""
    if sys.platform == "win32":
        return install_windows(loop, stop)
    return install_posix(loop, stop, reload)


def install_posix(loop: asyncio.AbstractEventLoop, stop: Callable[[], None],
                  reload: Callable[[], None]) -> Callable[[], None]:
    """SIGTERM and SIGINT stop, SIGHUP reloads, through the loop's signal handling."""
    if sys.platform == "win32":  # so that mypy --platform win32 skips what follows
        raise OSError("the loop takes no signal handlers on Windows")
    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGINT, stop)
    loop.add_signal_handler(signal.SIGHUP, reload)

    def undo() -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)

    return undo


def install_windows(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]
                    ) -> Callable[[], None]:
    """Ctrl+C (and Ctrl+Break where it exists) stop, through `signal.signal`."""
    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(stop)

    signums = [signal.SIGINT]
    if hasattr(signal, "SIGBREAK"):  # Ctrl+Break: only on Windows
        signums.append(signal.SIGBREAK)
    previous = {signum: signal.signal(signum, handler) for signum in signums}

    def undo() -> None:
        for signum, old in previous.items():
            signal.signal(signum, old)

    return undo
