"""Name the way a socket operation failed: refused, unreachable, timed out, reset, ..."""

from __future__ import annotations

import errno
import os
import ssl

from assure_doctor.kinds import Condition, ConnectKind, HandshakeKind

_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ENETDOWN,
                errno.EHOSTDOWN}
_LOCAL_BLOCK = {errno.EACCES, errno.EPERM}


def connect_kind(exc: BaseException) -> ConnectKind:
    """One of refused, unreachable, blocked_locally, timeout, reset, error."""
    if isinstance(exc, TimeoutError):
        return ConnectKind.TIMEOUT
    if isinstance(exc, ConnectionRefusedError):
        return ConnectKind.REFUSED
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError):
        return ConnectKind.RESET
    if isinstance(exc, OSError):
        if exc.errno == errno.ETIMEDOUT:
            return ConnectKind.TIMEOUT
        if exc.errno in _UNREACHABLE:
            return ConnectKind.UNREACHABLE
        if exc.errno in _LOCAL_BLOCK:
            return ConnectKind.BLOCKED_LOCALLY
    return ConnectKind.ERROR


def connect_condition(kind: str) -> Condition:
    return Condition.CONNECT_TIMEOUT if kind == ConnectKind.TIMEOUT else Condition.CONNECT_FAILED


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


def handshake_kind(exc: BaseException) -> HandshakeKind:
    """How a TLS handshake (not certificate verification) failed."""
    if isinstance(exc, TimeoutError):
        return HandshakeKind.TIMEOUT
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or "").upper()
        if any(marker in reason for marker in _NOT_TLS):
            return HandshakeKind.NOT_TLS
        if "ALERT" in reason:
            return HandshakeKind.ALERT
        if isinstance(exc, ssl.SSLEOFError) or "EOF" in reason:
            return HandshakeKind.RESET
        return HandshakeKind.ERROR
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError
                  | EOFError | ssl.SSLEOFError):
        return HandshakeKind.RESET
    return HandshakeKind.ERROR


HANDSHAKE_TEXT: dict[str, str] = {
    HandshakeKind.TIMEOUT: "got no answer",
    HandshakeKind.RESET: "was cut off by the other side",
    HandshakeKind.NOT_TLS: "was answered by something that is not TLS",
    HandshakeKind.ALERT: "was refused by the server (TLS alert)",
    HandshakeKind.ERROR: "failed",
}
