"""Name the way a socket operation failed: refused, unreachable, timed out, reset, ..."""

from __future__ import annotations

import errno
import os
import ssl

_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ENETDOWN,
                errno.EHOSTDOWN}
_LOCAL_BLOCK = {errno.EACCES, errno.EPERM}


def connect_kind(exc: BaseException) -> str:
    """One of refused, unreachable, blocked_locally, timeout, reset, error."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError):
        return "reset"
    if isinstance(exc, OSError):
        if exc.errno == errno.ETIMEDOUT:
            return "timeout"
        if exc.errno in _UNREACHABLE:
            return "unreachable"
        if exc.errno in _LOCAL_BLOCK:
            return "blocked_locally"
    return "error"


def connect_condition(kind: str) -> str:
    return "connect_timeout" if kind == "timeout" else "connect_failed"


def describe(exc: BaseException) -> str:
    """A short, human description of a low-level error (no secrets can be in it)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"{exc.reason} ({exc.library or 'ssl'})"
    if isinstance(exc, OSError) and exc.errno:
        # asyncio's connect errors carry their own wording; the errno's is the familiar one.
        name = errno.errorcode.get(exc.errno, "")
        return f"{os.strerror(exc.errno)} ({name})" if name else os.strerror(exc.errno)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


_NOT_TLS = ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG",
            "RECORD_LAYER_FAILURE", "UNKNOWN_PROTOCOL")


def handshake_kind(exc: BaseException) -> str:
    """How a TLS handshake (not certificate verification) failed."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or "").upper()
        if any(marker in reason for marker in _NOT_TLS):
            return "not_tls"
        if "ALERT" in reason:
            return "alert"
        if isinstance(exc, ssl.SSLEOFError) or "EOF" in reason:
            return "reset"
        return "error"
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError
                  | EOFError | ssl.SSLEOFError):
        return "reset"
    return "error"


HANDSHAKE_TEXT = {
    "timeout": "got no answer",
    "reset": "was cut off by the other side",
    "not_tls": "was answered by something that is not TLS",
    "alert": "was refused by the server (TLS alert)",
    "error": "failed",
}
