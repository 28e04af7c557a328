"""netclass: how a socket or TLS operation failed, on Linux and (injected) on Windows.

Windows errors are built as CPython builds them there: the WSA code in `errno` and
`winerror` for socket errors, and for overlapped-I/O ERROR_* codes `winerror` with the stand-in
errno EINVAL. Linux's OSError has no `winerror`, so the tests set it.
"""

from __future__ import annotations

import errno
import ssl
import sys

import pytest

from assure_doctor.probes import netclass
from assure_doctor.probes.netclass import WinError


def windows(cls: type[OSError], code: WinError, strerror: str,
            errno_value: int | None = None) -> OSError:
    exc = cls(code.value if errno_value is None else errno_value, strerror)
    exc.winerror = code.value  # type: ignore[attr-defined]  # set by CPython on Windows
    return exc


def plain(errno_value: int) -> OSError:
    """An OSError of no subclass (the constructor would pick one from the errno)."""
    exc = OSError("plain")
    exc.errno = errno_value
    return exc


def ssl_error(reason: str, cls: type[ssl.SSLError] = ssl.SSLError) -> ssl.SSLError:
    exc = cls(1, f"[SSL: {reason}] {reason.lower()}")
    exc.reason = reason
    exc.library = "SSL"
    return exc


def test_windows_is_the_platform() -> None:
    assert netclass.WINDOWS is (sys.platform == "win32")


def test_windows_codes_keep_their_documented_numbers() -> None:
    assert {code.name: code.value for code in WinError} == {
        "ERROR_SEM_TIMEOUT": 121, "ERROR_CONNECTION_REFUSED": 1225,
        "ERROR_NETWORK_UNREACHABLE": 1231, "ERROR_HOST_UNREACHABLE": 1232,
        "ERROR_PORT_UNREACHABLE": 1234, "ERROR_CONNECTION_ABORTED": 1236, "WSAEACCES": 10013,
        "WSAENETDOWN": 10050, "WSAENETUNREACH": 10051, "WSAECONNABORTED": 10053,
        "WSAECONNRESET": 10054, "WSAETIMEDOUT": 10060, "WSAECONNREFUSED": 10061,
        "WSAEHOSTDOWN": 10064, "WSAEHOSTUNREACH": 10065,
    }


@pytest.mark.parametrize(("exc", "kind"), [
    # Linux, through errno's names.
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "refused"),
    (OSError(errno.ECONNREFUSED, "Connect call failed"), "refused"),
    (plain(errno.ECONNREFUSED), "refused"),
    (plain(errno.ETIMEDOUT), "timeout"),
    (plain(errno.ECONNRESET), "reset"),
    (plain(errno.ECONNABORTED), "reset"),
    (TimeoutError(), "timeout"),
    (TimeoutError(errno.ETIMEDOUT, "Connection timed out"), "timeout"),
    (OSError(errno.ETIMEDOUT, "Connection timed out"), "timeout"),
    (OSError(errno.ENETUNREACH, "Network is unreachable"), "unreachable"),
    (OSError(errno.EHOSTUNREACH, "No route to host"), "unreachable"),
    (OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"), "unreachable"),
    (OSError(errno.ENETDOWN, "Network is down"), "unreachable"),
    (OSError(errno.EHOSTDOWN, "Host is down"), "unreachable"),
    (PermissionError(errno.EPERM, "Operation not permitted"), "blocked_locally"),
    (PermissionError(errno.EACCES, "Permission denied"), "blocked_locally"),
    (ConnectionResetError(errno.ECONNRESET, "reset"), "reset"),
    (OSError(errno.ECONNRESET, "reset"), "reset"),
    (ConnectionAbortedError(errno.ECONNABORTED, "aborted"), "reset"),
    (ConnectionResetError(), "reset"),
    (ConnectionAbortedError(), "reset"),
    (ConnectionRefusedError(), "refused"),
    (OSError(errno.EINVAL, "Invalid argument"), "error"),
    (OSError("no errno"), "error"),
    (ValueError("odd"), "error"),
    # An SSL error's errno is an SSL_ERROR_* code: 1 is not EPERM there.
    (ssl_error("CERTIFICATE_VERIFY_FAILED"), "error"),
    # Windows, as CPython raises them there.
    (windows(ConnectionRefusedError, WinError.WSAECONNREFUSED, "actively refused"), "refused"),
    (windows(OSError, WinError.ERROR_CONNECTION_REFUSED, "The remote computer refused",
             errno.EINVAL), "refused"),
    (windows(OSError, WinError.ERROR_PORT_UNREACHABLE, "port unreachable", errno.EINVAL),
     "refused"),
    (windows(TimeoutError, WinError.WSAETIMEDOUT, "did not properly respond"), "timeout"),
    (windows(OSError, WinError.ERROR_SEM_TIMEOUT, "semaphore timeout", errno.EINVAL),
     "timeout"),
    (windows(OSError, WinError.WSAEHOSTUNREACH, "unreachable host"), "unreachable"),
    (windows(OSError, WinError.WSAENETUNREACH, "unreachable network"), "unreachable"),
    (windows(OSError, WinError.ERROR_NETWORK_UNREACHABLE, "net", errno.EINVAL), "unreachable"),
    (windows(OSError, WinError.ERROR_HOST_UNREACHABLE, "host", errno.EINVAL), "unreachable"),
    (windows(OSError, WinError.WSAENETDOWN, "network is down"), "unreachable"),
    (windows(OSError, WinError.WSAEHOSTDOWN, "host is down"), "unreachable"),
    (windows(ConnectionResetError, WinError.WSAECONNRESET, "forcibly closed"), "reset"),
    (windows(ConnectionAbortedError, WinError.WSAECONNABORTED, "aborted"), "reset"),
    (windows(OSError, WinError.ERROR_CONNECTION_ABORTED, "aborted", errno.EINVAL), "reset"),
    (windows(PermissionError, WinError.WSAEACCES, "forbidden by its access permissions"),
     "blocked_locally"),
    # An unknown Windows code falls back to the errno and the exception's class.
    (windows(ConnectionRefusedError, WinError.WSAECONNREFUSED, "x", errno.ECONNREFUSED),
     "refused"),
])
def test_connect_kind(exc: BaseException, kind: str) -> None:
    assert netclass.connect_kind(exc) == kind


WINDOWS_KINDS = [
    (WinError.WSAECONNREFUSED, "refused"), (WinError.ERROR_CONNECTION_REFUSED, "refused"),
    (WinError.ERROR_PORT_UNREACHABLE, "refused"), (WinError.WSAETIMEDOUT, "timeout"),
    (WinError.ERROR_SEM_TIMEOUT, "timeout"), (WinError.WSAENETUNREACH, "unreachable"),
    (WinError.WSAEHOSTUNREACH, "unreachable"), (WinError.ERROR_NETWORK_UNREACHABLE, "unreachable"),
    (WinError.ERROR_HOST_UNREACHABLE, "unreachable"), (WinError.WSAENETDOWN, "unreachable"),
    (WinError.WSAEHOSTDOWN, "unreachable"), (WinError.WSAECONNRESET, "reset"),
    (WinError.WSAECONNABORTED, "reset"), (WinError.ERROR_CONNECTION_ABORTED, "reset"),
    (WinError.WSAEACCES, "blocked_locally"),
]


@pytest.mark.parametrize(("code", "kind"), WINDOWS_KINDS)
def test_every_windows_code_by_winerror(code: WinError, kind: str) -> None:
    """The code alone decides, whatever errno and class stand in for it."""
    assert netclass.connect_kind(windows(OSError, code, "text", errno.EINVAL)) == kind


@pytest.mark.parametrize(("code", "kind"), WINDOWS_KINDS)
def test_windows_code_in_errno_only(code: WinError, kind: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncio's OSError(SO_ERROR, ...) on Windows: the WSA code in errno, no winerror."""
    exc = plain(code.value)
    assert netclass.connect_kind(exc) == "error"  # on Linux these numbers mean nothing
    monkeypatch.setattr(netclass, "WINDOWS", True)
    # Only WSA codes travel in errno; below 10000 an errno is the C library's own number.
    assert netclass.connect_kind(exc) == (kind if code >= 10000 else "error")


def test_unknown_windows_code_falls_back_to_the_class() -> None:
    exc = ConnectionRefusedError(99999, "odd")
    exc.winerror = 99999  # type: ignore[attr-defined]
    assert netclass.connect_kind(exc) == "refused"
    odd = OSError(errno.EINVAL, "odd")
    odd.winerror = 4242  # type: ignore[attr-defined]
    assert netclass.connect_kind(odd) == "error"


@pytest.mark.parametrize(("kind", "condition"), [
    ("timeout", "connect_timeout"), ("refused", "connect_failed"),
    ("unreachable", "connect_failed"), ("blocked_locally", "connect_failed"),
    ("reset", "connect_failed"), ("error", "connect_failed"),
])
def test_connect_condition(kind: str, condition: str) -> None:
    assert netclass.connect_condition(kind) == condition


@pytest.mark.parametrize("reason", ["WRONG_VERSION_NUMBER", "HTTP_REQUEST",
                                    "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE",
                                    "UNKNOWN_PROTOCOL", "wrong_version_number"])
def test_handshake_with_something_that_is_not_tls(reason: str) -> None:
    assert netclass.handshake_kind(ssl_error(reason)) == "not_tls"


@pytest.mark.parametrize(("exc", "kind"), [
    (ssl_error("TLSV1_ALERT_PROTOCOL_VERSION"), "alert"),
    (ssl_error("SSLV3_ALERT_HANDSHAKE_FAILURE"), "alert"),
    (ssl_error("UNEXPECTED_EOF_WHILE_READING"), "reset"),
    (ssl_error("UNEXPECTED_EOF_WHILE_READING", ssl.SSLEOFError), "reset"),
    (ssl_error("NO_SHARED_CIPHER"), "error"),
    (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), "reset"),
    (ssl.SSLError(1, "no reason"), "error"),
    (TimeoutError(), "timeout"),
    (ConnectionResetError(), "reset"),
    (ConnectionAbortedError(), "reset"),
    (BrokenPipeError(), "reset"),
    (EOFError(), "reset"),
    (OSError(errno.ECONNRESET, "reset by peer"), "reset"),
    (OSError(errno.ETIMEDOUT, "timed out"), "timeout"),
    (OSError(errno.ECONNREFUSED, "refused"), "error"),  # not a way a handshake fails
    (windows(OSError, WinError.WSAECONNRESET, "forcibly closed"), "reset"),
    (windows(OSError, WinError.ERROR_CONNECTION_ABORTED, "aborted", errno.EINVAL), "reset"),
    (windows(OSError, WinError.WSAETIMEDOUT, "no response"), "timeout"),
    (windows(OSError, WinError.WSAEHOSTUNREACH, "unreachable"), "error"),
    (ValueError("odd"), "error"),
])
def test_handshake_kind(exc: BaseException, kind: str) -> None:
    assert netclass.handshake_kind(exc) == kind


@pytest.mark.parametrize(("kind", "what_happened"), [
    ("timeout", "no answer"), ("reset", "cut off"), ("not_tls", "not TLS"),
    ("alert", "TLS alert"), ("error", "failed"),
])
def test_every_handshake_kind_is_worded_by_what_happened(kind: str, what_happened: str) -> None:
    """The wording completes "the TLS handshake ..." and says what happened, in its own
    words: no two kinds read alike."""
    text = netclass.HANDSHAKE_TEXT[kind]
    assert what_happened in text and not text.endswith(".")
    others = [other for name, other in netclass.HANDSHAKE_TEXT.items() if name != kind]
    assert not any(what_happened in other for other in others), others


def test_every_kind_a_handshake_failure_gets_has_a_wording() -> None:
    kinds = {netclass.handshake_kind(exc) for exc in (
        ssl_error("WRONG_VERSION_NUMBER"), ssl_error("TLSV1_ALERT_PROTOCOL_VERSION"),
        TimeoutError(), ConnectionResetError(), ValueError("odd"))}
    assert kinds == set(netclass.HANDSHAKE_TEXT)


@pytest.mark.parametrize(("exc", "text"), [
    (TimeoutError(errno.ETIMEDOUT, "Connect call failed"), "timed out"),
    (ssl_error("WRONG_VERSION_NUMBER"), "WRONG_VERSION_NUMBER (SSL)"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 9)"),
     "Connection refused (ECONNREFUSED)"),
    (OSError(errno.ENETUNREACH, "whatever"), "Network is unreachable (ENETUNREACH)"),
    (windows(ConnectionRefusedError, WinError.WSAECONNREFUSED, "No connection could be made"),
     "No connection could be made (WSAECONNREFUSED)"),
    (windows(OSError, WinError.ERROR_CONNECTION_REFUSED, "The remote computer refused",
             errno.EINVAL), "The remote computer refused (ERROR_CONNECTION_REFUSED)"),
    (OSError(None, "only a message"), "only a message"),
    (ssl.SSLError(1, "no reason given"), "no reason given"),  # errno 1 is not EPERM there
    (plain(4000), "Unknown error 4000"),
    (OSError("plain"), "plain"),
    (ValueError(), "ValueError"),
])
def test_describe(exc: BaseException, text: str) -> None:
    assert netclass.describe(exc) == text


def test_describe_unknown_windows_code() -> None:
    exc = OSError(errno.EINVAL, "")
    exc.winerror = 4242  # type: ignore[attr-defined]
    assert netclass.describe(exc) == "WinError 4242"
    assert netclass.describe(ssl_error("X")) == "X (SSL)"
    unnamed = ssl_error("Y")
    unnamed.library = None  # type: ignore[assignment]
    assert netclass.describe(unnamed) == "Y (ssl)"
