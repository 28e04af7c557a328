"""Logging in the guide's format: millisecond timestamps, pid and thread, never a secret."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from assure_doctor.errors import InputError
from assure_doctor.redact import RedactingFilter

LOGGER_NAME = "assure_doctor"
FORMAT = (
    "%(asctime)s.%(msecs)03d pid=%(process)d tid=%(thread)d %(levelname)-7s %(name)s: "
    "%(message)s"
)
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def get(name: str) -> logging.Logger:
    """A logger under the project's namespace, e.g. get("ping")."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


def formatter() -> logging.Formatter:
    return logging.Formatter(FORMAT, DATE_FORMAT)


def configure(stderr_level: int = logging.WARNING, log_file: str | None = None) -> None:
    """Send our records to stderr at `stderr_level` and, with a log file, everything there."""
    root = logging.getLogger(LOGGER_NAME)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG)
    root.propagate = False
    handlers: list[logging.Handler] = []
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(stderr_level)
    handlers.append(console)
    if log_file is not None:
        try:
            Path(log_file).parent.mkdir(parents=True, exist_ok=True)
            file_handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--log-file {log_file}: cannot open ({exc.strerror})") from None
        file_handler.setLevel(logging.DEBUG)
        handlers.append(file_handler)
    for handler in handlers:
        handler.setFormatter(formatter())
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
