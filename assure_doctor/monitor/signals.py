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
            reload: Callable[[], None], platform: str = sys.platform) -> Callable[[], None]:
    """Route the stop and reload signals to the callbacks; returns a function that undoes it."""
    if platform == "win32":
        return _install_windows(loop, stop)
    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGINT, stop)
    loop.add_signal_handler(signal.SIGHUP, reload)

    def undo() -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)

    return undo


def _install_windows(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]
                     ) -> Callable[[], None]:
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
