"""Read the system's PAC settings: the thin, OS-calling part (`settings` does the reading).

Windows: the registry (winreg). macOS: `scutil --proxy` and `scutil --dns`, bounded in time.
Linux has no system-wide PAC setting that curl, Python or Java follow: there, only --pac.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

from assure_doctor import logs
from assure_doctor.pac import settings
from assure_doctor.pac.location import PacLocation, PacSource

log = logs.get("pac")
SCUTIL = "/usr/sbin/scutil"
MAX_INTERFACES = 64
_INTERNET_SETTINGS = r"Software\Microsoft\Windows\CurrentVersion\Internet Settings"
_TCPIP = r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters"
LINUX_NOTE = "no system PAC setting is read on this system: give --pac URL_OR_FILE"


@dataclass(frozen=True)
class SystemPac:
    """The PACs the system names, in the order it tries them, and what was read."""

    locations: tuple[PacLocation, ...]
    note: str


def read(timeout: float = 2.0) -> SystemPac:
    """The system's PAC settings (Windows, macOS); on other systems none, and a note saying
    so. `timeout` bounds each command run on macOS."""
    if sys.platform == "win32":
        return _windows()
    if sys.platform == "darwin":
        return _macos(timeout)
    return SystemPac((), LINUX_NOTE)


def _note(system: str, locations: tuple[PacLocation, ...]) -> str:
    wpad = sum(location.source is PacSource.WPAD for location in locations)
    named = [location.source.describe for location in locations
             if location.source is not PacSource.WPAD]
    parts = ([f"automatic detection on ({wpad} WPAD URLs)"] if wpad else []) + named
    return f"{system}: " + ("; ".join(parts) if parts else "no PAC configured")


def _windows() -> SystemPac:
    if sys.platform != "win32":  # keeps mypy --platform linux off the winreg calls
        raise NotImplementedError
    import winreg

    def values(root: int, path: str, names: tuple[str, ...]) -> dict[str, object]:
        try:
            key = winreg.OpenKey(root, path)
        except OSError:
            return {}
        found: dict[str, object] = {}
        with key:
            for name in names:
                try:
                    found[name] = winreg.QueryValueEx(key, name)[0]
                except OSError:
                    continue
        return found

    def interfaces() -> list[dict[str, object]]:
        try:
            key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, _TCPIP + r"\Interfaces")
        except OSError:
            return []
        found = []
        with key:
            for index in range(MAX_INTERFACES):
                try:
                    name = winreg.EnumKey(key, index)
                except OSError:
                    break
                found.append(values(winreg.HKEY_LOCAL_MACHINE, rf"{_TCPIP}\Interfaces\{name}",
                                    ("Domain", "DhcpDomain")))
        return found

    internet = values(winreg.HKEY_CURRENT_USER, _INTERNET_SETTINGS,
                      ("AutoDetect", "AutoConfigURL"))
    connection = values(winreg.HKEY_CURRENT_USER, _INTERNET_SETTINGS + r"\Connections",
                        ("DefaultConnectionSettings",)).get("DefaultConnectionSettings")
    tcpip = values(winreg.HKEY_LOCAL_MACHINE, _TCPIP, ("NV Domain", "Domain"))
    suffixes = settings.windows_dns_suffixes(tcpip, interfaces())
    locations = settings.windows_locations(internet, connection, suffixes)
    return SystemPac(locations, _note("Windows", locations))


def _macos(timeout: float) -> SystemPac:
    proxy_text = _scutil("--proxy", timeout)
    values = settings.scutil_values(proxy_text)
    dns_text = _scutil("--dns", timeout) if values.get("ProxyAutoDiscoveryEnable") == "1" else ""
    locations = settings.macos_locations(proxy_text, dns_text)
    return SystemPac(locations, _note("macOS", locations))


def _scutil(argument: str, timeout: float) -> str:
    """`scutil ARGUMENT`'s output; empty (and logged) when it fails or takes too long."""
    try:
        done = subprocess.run([SCUTIL, argument], capture_output=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("scutil %s failed: %s", argument, type(exc).__name__)
        return ""
    return done.stdout[: settings.MAX_SCUTIL_CHARS].decode("utf-8", "replace")
