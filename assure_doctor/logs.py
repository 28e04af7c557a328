"""Logging in the guide's format: millisecond timestamps, pid and thread, never a secret.

Our handlers sit on the root logger, so records from every library (asyncio, apscheduler,
textual) reach them too, and every one of them carries the redaction filter: no record can
leave the process unscrubbed, whichever logger made it.
"""

from __future__ import annotations

import logging
import sys
from io import TextIOWrapper
from pathlib import Path

from assure_doctor import localfile
from assure_doctor.errors import InputError, shown
from assure_doctor.redact import RedactingFilter

LOGGER_NAME = "assure_doctor"
FORMAT = (
    "%(asctime)s.%(msecs)03d pid=%(process)d tid=%(thread)d %(levelname)-7s %(name)s: "
    "%(message)s"
)
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
FOREIGN_LEVEL = logging.WARNING  # what other libraries may log: their debug is not ours
_installed: list[logging.Handler] = []


def get(name: str) -> logging.Logger:
    """A logger under the project's namespace, e.g. get("ping")."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


def formatter() -> logging.Formatter:
    return logging.Formatter(FORMAT, DATE_FORMAT)


class PrivateFileHandler(logging.FileHandler):
    """A FileHandler whose file is created 0600: a log is for its owner only."""

    def _open(self) -> TextIOWrapper:
        return localfile.open_private(self.baseFilename)


def configure(stderr_level: int = logging.WARNING, log_file: str | None = None) -> None:
    """Send every record to stderr at `stderr_level` and, with a log file, everything there.

    Ours at any level, other libraries' from WARNING up.
    """
    # A handler that fails must not print the record (and its arguments) to stderr.
    logging.raiseExceptions = False
    root = logging.getLogger()
    ours = logging.getLogger(LOGGER_NAME)
    while _installed:  # ours from an earlier call; other code's handlers are left alone
        handler = _installed.pop()
        root.removeHandler(handler)
        handler.close()
    root.setLevel(FOREIGN_LEVEL)
    # A record below every handler's level is not made at all (a check logs ~15 INFO lines);
    # warnings and up always are, for handlers others attach (the TUI's pane, a test's).
    ours.setLevel(min(logging.DEBUG if log_file is not None else stderr_level, logging.WARNING))
    ours.propagate = True
    handlers: list[logging.Handler] = []
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(stderr_level)
    handlers.append(console)
    if log_file is not None:
        if not log_file.strip():
            raise InputError("--log-file: give a file name")
        try:
            Path(log_file).parent.mkdir(parents=True, exist_ok=True)
            file_handler = PrivateFileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--log-file {shown(log_file)}: cannot open ({exc.strerror})"
                             ) from None
        file_handler.setLevel(logging.DEBUG)
        handlers.append(file_handler)
    for handler in handlers:
        handler.setFormatter(formatter())
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
        _installed.append(handler)
    # Python's handler of last resort (used when no handler is configured) scrubs too.
    logging.lastResort = _last_resort()


def _last_resort() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.addFilter(RedactingFilter())
    return handler
