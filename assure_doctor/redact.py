"""Keep secrets out of everything we write: a registry of secrets and a logging filter.

Defence in depth: the key is wrapped in `ApiKey` and never formatted on purpose, but any text
that leaves the process through logging also passes through `scrub`.
"""

from __future__ import annotations

import logging
import threading

MASK = "[REDACTED]"
_lock = threading.Lock()
_secrets: set[str] = set()


def register(secret: str) -> None:
    """Remember a secret so that `scrub` masks it wherever it shows up."""
    if secret:
        with _lock:
            _secrets.add(secret)


def scrub(text: str) -> str:
    """Return text with every registered secret replaced by a mask."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter that masks registered secrets in the final message, the traceback and
    the stack of any record, whichever logger made it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: show them, scrubbed
            message = f"{record.msg!s} {record.args!r}"
            record.msg, record.args = message, None
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info:
            # The formatter reuses exc_text when it is set, so the traceback is scrubbed too.
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True
