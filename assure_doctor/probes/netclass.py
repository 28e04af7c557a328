"""Name the way a socket operation failed: refused, unreachable, timed out, reset, ...

Linux reports errno values; Windows reports its own codes in `OSError.winerror` (WSA* socket
errors, and ERROR_* codes from overlapped I/O, which Python maps to no errno at all). Both are
read through named constants: `errno`'s for the platform's errors, `WinError` for Windows'.
"""

from __future__ import annotations

import errno
import os
import ssl
import sys
from collections.abc import Mapping
from enum import IntEnum

from assure_doctor.kinds import Condition, ConnectKind, HandshakeKind

WINDOWS = sys.platform == "win32"


class WinError(IntEnum):
    """Windows error codes (winsock2.h, winerror.h) that name a network failure."""

    ERROR_SEM_TIMEOUT = 121  # an overlapped ConnectEx that timed out (proactor loop)
    ERROR_CONNECTION_REFUSED = 1225
    ERROR_NETWORK_UNREACHABLE = 1231
    ERROR_HOST_UNREACHABLE = 1232
    ERROR_PORT_UNREACHABLE = 1234  # UDP, after ICMP port unreachable (proactor loop)
    ERROR_CONNECTION_ABORTED = 1236
    WSAEACCES = 10013  # Windows Firewall blocking an outbound connection
    WSAENETDOWN = 10050
    WSAENETUNREACH = 10051
    WSAECONNABORTED = 10053
    WSAECONNRESET = 10054  # also UDP after ICMP port unreachable (selector loop)
    WSAETIMEDOUT = 10060
    WSAECONNREFUSED = 10061
    WSAEHOSTDOWN = 10064
    WSAEHOSTUNREACH = 10065


# Only WSA* codes travel in errno; ERROR_* numbers there are the C library's (ENOLINK is 121).
_WSA_CODES = frozenset(code.value for code in WinError if code.name.startswith("WSA"))
_WINDOWS_KINDS: Mapping[int, ConnectKind] = {
    WinError.WSAECONNREFUSED: ConnectKind.REFUSED,
    WinError.ERROR_CONNECTION_REFUSED: ConnectKind.REFUSED,
    WinError.ERROR_PORT_UNREACHABLE: ConnectKind.REFUSED,
    WinError.WSAETIMEDOUT: ConnectKind.TIMEOUT,
    WinError.ERROR_SEM_TIMEOUT: ConnectKind.TIMEOUT,
    WinError.WSAENETUNREACH: ConnectKind.UNREACHABLE,
    WinError.WSAEHOSTUNREACH: ConnectKind.UNREACHABLE,
    WinError.ERROR_NETWORK_UNREACHABLE: ConnectKind.UNREACHABLE,
    WinError.ERROR_HOST_UNREACHABLE: ConnectKind.UNREACHABLE,
    WinError.WSAENETDOWN: ConnectKind.UNREACHABLE,
    WinError.WSAEHOSTDOWN: ConnectKind.UNREACHABLE,
    WinError.WSAECONNRESET: ConnectKind.RESET,
    WinError.WSAECONNABORTED: ConnectKind.RESET,
    WinError.ERROR_CONNECTION_ABORTED: ConnectKind.RESET,
    WinError.WSAEACCES: ConnectKind.BLOCKED_LOCALLY,
}
_WINDOWS_NAMES: Mapping[int, str] = {code.value: code.name for code in WinError}
_ERRNO_KINDS: Mapping[int, ConnectKind] = {
    errno.ECONNREFUSED: ConnectKind.REFUSED,
    errno.ETIMEDOUT: ConnectKind.TIMEOUT,
    errno.ENETUNREACH: ConnectKind.UNREACHABLE,
    errno.EHOSTUNREACH: ConnectKind.UNREACHABLE,
    errno.EADDRNOTAVAIL: ConnectKind.UNREACHABLE,
    errno.ENETDOWN: ConnectKind.UNREACHABLE,
    errno.EHOSTDOWN: ConnectKind.UNREACHABLE,
    errno.ECONNRESET: ConnectKind.RESET,
    errno.ECONNABORTED: ConnectKind.RESET,
    errno.EACCES: ConnectKind.BLOCKED_LOCALLY,
    errno.EPERM: ConnectKind.BLOCKED_LOCALLY,
}


def _os_kind(exc: OSError) -> ConnectKind | None:
    """The kind an OS error code names: Windows' own code first, then errno."""
    code: int | None = getattr(exc, "winerror", None)
    if code is None and WINDOWS and exc.errno in _WSA_CODES:
        code = exc.errno  # asyncio raises OSError(SO_ERROR, ...): the WSA code in errno only
    if code is not None and code in _WINDOWS_KINDS:
        return _WINDOWS_KINDS[code]
    if isinstance(exc, ssl.SSLError):
        return None  # its errno is an SSL_ERROR_* code, not the OS's
    return _ERRNO_KINDS.get(exc.errno or 0)


def connect_kind(exc: BaseException) -> ConnectKind:
    """One of refused, unreachable, blocked_locally, timeout, reset, error."""
    if isinstance(exc, OSError) and (kind := _os_kind(exc)):
        return kind
    if isinstance(exc, TimeoutError):
        return ConnectKind.TIMEOUT
    if isinstance(exc, ConnectionRefusedError):
        return ConnectKind.REFUSED
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError):
        return ConnectKind.RESET
    return ConnectKind.ERROR


def connect_condition(kind: str) -> Condition:
    return Condition.CONNECT_TIMEOUT if kind == ConnectKind.TIMEOUT else Condition.CONNECT_FAILED


def describe(exc: BaseException) -> str:
    """A short, human description of a low-level error (no secrets can be in it)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        # reason and library are absent on an SSLError built outside the ssl module; its
        # errno is an SSL_ERROR_* code, not the OS's, so it is no use here.
        reason, library = getattr(exc, "reason", None), getattr(exc, "library", None)
        if reason:
            return f"{reason} ({library or 'ssl'})"
        return exc.strerror or str(exc) or type(exc).__name__
    winerror = getattr(exc, "winerror", None)
    if isinstance(exc, OSError) and isinstance(winerror, int):
        # Windows' own code: its errno is often a stand-in (EINVAL for ERROR_* codes).
        name = _WINDOWS_NAMES.get(winerror, f"WinError {winerror}")
        return f"{exc.strerror} ({name})" if exc.strerror else name
    if isinstance(exc, OSError) and exc.errno:
        # asyncio's connect errors carry their own wording; the errno's is the familiar one.
        name = errno.errorcode.get(exc.errno, "")
        return f"{os.strerror(exc.errno)} ({name})" if name else os.strerror(exc.errno)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG",
                     "RECORD_LAYER_FAILURE", "UNKNOWN_PROTOCOL"})


def handshake_kind(exc: BaseException) -> HandshakeKind:
    """How a TLS handshake (not certificate verification) failed."""
    if isinstance(exc, TimeoutError):
        return HandshakeKind.TIMEOUT
    if isinstance(exc, ssl.SSLError):
        reason = (getattr(exc, "reason", None) or "").upper()
        if any(marker in reason for marker in _NOT_TLS):
            return HandshakeKind.NOT_TLS
        if "ALERT" in reason:
            return HandshakeKind.ALERT
        if isinstance(exc, ssl.SSLEOFError) or "EOF" in reason:
            return HandshakeKind.RESET
        return HandshakeKind.ERROR
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError
                  | EOFError):
        return HandshakeKind.RESET
    kind = _os_kind(exc) if isinstance(exc, OSError) else None
    if kind is ConnectKind.RESET:
        return HandshakeKind.RESET
    return HandshakeKind.TIMEOUT if kind is ConnectKind.TIMEOUT else HandshakeKind.ERROR


HANDSHAKE_TEXT: dict[str, str] = {
    HandshakeKind.TIMEOUT: "got no answer",
    HandshakeKind.RESET: "was cut off by the other side",
    HandshakeKind.NOT_TLS: "was answered by something that is not TLS",
    HandshakeKind.ALERT: "was refused by the server (TLS alert)",
    HandshakeKind.ERROR: "failed",
}
