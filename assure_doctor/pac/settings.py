"""The system's PAC settings, read from data handed in: pure, so every rule is unit-tested.

Windows (HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings): `AutoDetect`
(or, without it, the auto-detect flag of `Connections\\DefaultConnectionSettings`) turns on
WPAD, which Windows tries first; `AutoConfigURL` names a script. macOS (`scutil --proxy`):
`ProxyAutoDiscoveryEnable`, `ProxyAutoConfigEnable` and `ProxyAutoConfigURLString`.

WPAD over DNS asks `http://wpad.<suffix>/wpad.dat` for the machine's DNS suffix, then for the
suffix with its first label removed, and so on, but never above the registrable domain
(`wpad.co.uk` belongs to nobody you trust). The registrable domain comes from the Public Suffix
List (`publicsuffixlist`, which pypac uses for the same purpose); an unknown top-level domain
(`corp.local`) counts as a public suffix, as the list's default rule says.
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from assure_doctor.pac.location import PacLocation, PacSource

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

MAX_SUFFIXES = 8  # DNS suffixes considered (primary, then each interface's)
MAX_SCUTIL_CHARS = 64 * 1024
AUTO_DETECT_FLAG = 0x08  # DefaultConnectionSettings: "Automatically detect settings"
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_SCUTIL_LINE = re.compile(r"\s*([A-Za-z0-9_ \[\]]+?)\s+:\s+(.*?)\s*")


@functools.cache
def _psl() -> PublicSuffixList:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(accept_unknown=True)


def clean_suffix(text: object) -> str | None:
    """A DNS suffix as WPAD may use it: lower-case LDH labels, at most 253 characters."""
    if not isinstance(text, str):
        return None
    name = text.strip().lower().removesuffix(".")
    if not name or len(name) > 253 or not name.isascii():
        return None
    if not all(_LABEL.fullmatch(label) for label in name.split(".")):
        return None
    return name


def wpad_urls(suffix: str) -> tuple[str, ...]:
    """The WPAD URLs for one DNS suffix, most specific first, down to the registrable domain.

    `corp.example.co.uk` gives wpad.corp.example.co.uk and wpad.example.co.uk; a suffix that is
    itself a public suffix (`co.uk`, `local`) or not a DNS name gives none.
    """
    name = clean_suffix(suffix)
    if name is None:
        return ()
    registrable = _psl().privatesuffix(name)
    if registrable is None:
        return ()
    labels = name.split(".")
    floor = len(registrable.split("."))
    return tuple(f"http://wpad.{'.'.join(labels[i:])}/wpad.dat"
                 for i in range(len(labels) - floor + 1))


def wpad_locations(suffixes: Iterable[object]) -> tuple[PacLocation, ...]:
    """WPAD candidates for each suffix in turn, without repeats."""
    seen: dict[str, None] = {}
    for suffix in list(suffixes)[:MAX_SUFFIXES]:
        name = clean_suffix(suffix)
        for url in wpad_urls(name) if name else ():
            seen.setdefault(url)
    return tuple(PacLocation(PacSource.WPAD, url) for url in seen)


def auto_detect_flag(blob: object) -> bool | None:
    """The "Automatically detect settings" flag of a DefaultConnectionSettings value (a DWORD
    of flags at offset 8), or None when the value is missing or too short to hold it."""
    if not isinstance(blob, bytes | bytearray) or len(blob) < 12:
        return None
    (flags,) = struct.unpack_from("<I", blob, 8)
    return bool(flags & AUTO_DETECT_FLAG)


def windows_locations(internet_settings: Mapping[str, object], connection_settings: object,
                      dns_suffixes: Sequence[object]) -> tuple[PacLocation, ...]:
    """The PACs Windows follows, in its order: WPAD when auto-detect is on, then AutoConfigURL.

    `internet_settings`: the values of HKCU\\...\\Internet Settings by name (`AutoDetect` a
    DWORD, `AutoConfigURL` a string); `connection_settings`: the DefaultConnectionSettings
    bytes (None when absent); `dns_suffixes`: the machine's DNS suffixes, primary first.
    """
    found: list[PacLocation] = []
    if _windows_auto_detect(internet_settings.get("AutoDetect"), connection_settings):
        found += wpad_locations(dns_suffixes)
    url = internet_settings.get("AutoConfigURL")
    if isinstance(url, str) and url.strip():
        found.append(PacLocation(PacSource.WINDOWS, url.strip()))
    return tuple(found)


def _windows_auto_detect(value: object, connection_settings: object) -> bool:
    """The AutoDetect DWORD (set by policy) decides when present; else the connection flag."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value == 1
    return auto_detect_flag(connection_settings) is True


def windows_dns_suffixes(tcpip: Mapping[str, object],
                         interfaces: Sequence[Mapping[str, object]]) -> tuple[str, ...]:
    """The suffixes WPAD tries on Windows: the primary DNS suffix (`NV Domain`, else `Domain`,
    of HKLM\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters), then each interface's
    own (`Domain`, else the `DhcpDomain` its DHCP server gave)."""
    found: dict[str, None] = {}
    primary = clean_suffix(tcpip.get("NV Domain")) or clean_suffix(tcpip.get("Domain"))
    if primary:
        found.setdefault(primary)
    for values in interfaces:
        name = clean_suffix(values.get("Domain")) or clean_suffix(values.get("DhcpDomain"))
        if name:
            found.setdefault(name)
    return tuple(found)[:MAX_SUFFIXES]


def scutil_values(text: str) -> dict[str, str]:
    """The top-level `Key : value` lines of `scutil --proxy` output (nested arrays skipped)."""
    values: dict[str, str] = {}
    depth = 0
    for line in text[:MAX_SCUTIL_CHARS].splitlines():
        stripped = line.strip()
        if stripped.endswith("{"):
            depth += 1
            continue
        if stripped == "}":
            depth = max(depth - 1, 0)
            continue
        found = _SCUTIL_LINE.fullmatch(line)
        if depth == 1 and found is not None:
            values.setdefault(found.group(1), found.group(2))
    return values


def scutil_domains(text: str) -> tuple[str, ...]:
    """The search domains of `scutil --dns` output (`search domain[0] : x`), first seen first:
    the suffixes macOS' WPAD tries. The per-domain resolvers (`domain : local`,
    `254.169.in-addr.arpa` for mDNS) are not search domains and are left out."""
    found: dict[str, None] = {}
    for line in text[:MAX_SCUTIL_CHARS].splitlines():
        matched = _SCUTIL_LINE.fullmatch(line)
        if matched is None or not matched.group(1).startswith("search domain["):
            continue
        name = clean_suffix(matched.group(2))
        if name and not name.endswith(".arpa"):
            found.setdefault(name)
    return tuple(found)[:MAX_SUFFIXES]


def macos_locations(proxy_text: str, dns_text: str = "") -> tuple[PacLocation, ...]:
    """The PACs macOS follows: the configured URL when enabled, then WPAD when discovery is on
    (`dns_text`, the output of `scutil --dns`, gives the suffixes)."""
    values = scutil_values(proxy_text)
    found: list[PacLocation] = []
    url = values.get("ProxyAutoConfigURLString", "")
    if values.get("ProxyAutoConfigEnable") == "1" and url:
        found.append(PacLocation(PacSource.MACOS, url))
    if values.get("ProxyAutoDiscoveryEnable") == "1":
        found += wpad_locations(scutil_domains(dns_text))
    return tuple(found)
