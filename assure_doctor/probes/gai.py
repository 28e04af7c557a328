"""getaddrinfo's failures as each operating system reports them, mapped once to `OsFailure`.

The numbers differ by platform: glibc and musl use negative EAI_* codes, the BSDs and macOS
positive ones, and Windows the WSA* socket errors. Python raises them all as `socket.gaierror`
with the code in `errno` (on Windows a WSA code, sometimes also in `winerror`), so they are
read here by name, and the tests build each platform's `gaierror` on any machine.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import NamedTuple

from assure_doctor.kinds import OsFailure


class GaiCode(NamedTuple):
    name: str
    failure: OsFailure


# glibc and musl (<netdb.h>): the same numbers in both.
EAI_NONAME_LINUX = -2
EAI_AGAIN_LINUX = -3
EAI_FAIL_LINUX = -4
EAI_NODATA_LINUX = -5  # a GNU extension; musl has it too
EAI_ADDRFAMILY_LINUX = -9
# macOS and the BSDs (FreeBSD has no EAI_NODATA or EAI_ADDRFAMILY any more).
EAI_ADDRFAMILY_BSD = 1
EAI_AGAIN_BSD = 2
EAI_FAIL_BSD = 4
EAI_NODATA_BSD = 7
EAI_NONAME_BSD = 8
# Windows (winsock2.h): getaddrinfo returns these; ws2tcpip.h defines EAI_* as their aliases.
WSAHOST_NOT_FOUND = 11001
WSATRY_AGAIN = 11002
WSANO_RECOVERY = 11003
WSANO_DATA = 11004

_LINUX: Mapping[int, GaiCode] = {
    EAI_NONAME_LINUX: GaiCode("EAI_NONAME", OsFailure.NO_NAME),
    EAI_AGAIN_LINUX: GaiCode("EAI_AGAIN", OsFailure.TEMPORARY),
    EAI_FAIL_LINUX: GaiCode("EAI_FAIL", OsFailure.FAILED),
    EAI_NODATA_LINUX: GaiCode("EAI_NODATA", OsFailure.NO_DATA),
    EAI_ADDRFAMILY_LINUX: GaiCode("EAI_ADDRFAMILY", OsFailure.NO_DATA),
}
_BSD: Mapping[int, GaiCode] = {
    EAI_NONAME_BSD: GaiCode("EAI_NONAME", OsFailure.NO_NAME),
    EAI_AGAIN_BSD: GaiCode("EAI_AGAIN", OsFailure.TEMPORARY),
    EAI_FAIL_BSD: GaiCode("EAI_FAIL", OsFailure.FAILED),
    EAI_NODATA_BSD: GaiCode("EAI_NODATA", OsFailure.NO_DATA),
    EAI_ADDRFAMILY_BSD: GaiCode("EAI_ADDRFAMILY", OsFailure.NO_DATA),
}
_WINDOWS: Mapping[int, GaiCode] = {
    WSAHOST_NOT_FOUND: GaiCode("WSAHOST_NOT_FOUND", OsFailure.NO_NAME),
    WSATRY_AGAIN: GaiCode("WSATRY_AGAIN", OsFailure.TEMPORARY),
    WSANO_RECOVERY: GaiCode("WSANO_RECOVERY", OsFailure.FAILED),
    WSANO_DATA: GaiCode("WSANO_DATA", OsFailure.NO_DATA),
}


def _table(platform: str) -> Mapping[int, GaiCode]:
    if platform == "win32" or platform == "cygwin":
        return _WINDOWS
    if platform == "darwin" or "bsd" in platform or platform.startswith("dragonfly"):
        return _BSD
    return _LINUX


def classify(exc: OSError, platform: str) -> tuple[OsFailure, str]:
    """What a getaddrinfo error means on `platform` (a `sys.platform` value), and a short
    description naming its code: `EAI_NONAME: Name or service not known`."""
    if not isinstance(exc, socket.gaierror):  # EAI_SYSTEM arrives as the errno's OSError
        return OsFailure.OTHER, (exc.strerror or str(exc))[:200]
    table = _table(platform)
    codes = [code for code in (getattr(exc, "winerror", None), exc.errno,
                               exc.args[0] if exc.args else None)
             if isinstance(code, int) and not isinstance(code, bool)]
    found = next((table[code] for code in codes if code in table), None)
    message = exc.strerror or (str(exc.args[1]) if len(exc.args) > 1 else str(exc))
    if found is None:
        number = f" ({codes[0]})" if codes else ""
        return OsFailure.OTHER, f"{message}{number}"[:200]
    return found.failure, f"{found.name}: {message}"[:200]
