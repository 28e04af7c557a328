"""Which proxy a check goes through, and why: --proxy, --no-proxy, --pac, the environment, the
system.

Pure: the environment and the system's settings are handed in, so every rule is unit-tested.
The precedence is the integration's HTTP stack's: an explicit proxy (--proxy), then an explicit
proxy auto-configuration script (--pac), then the environment, then the system's PAC / WPAD
settings (Windows, macOS), then its static proxy. The environment follows curl: `https_proxy`
before `HTTPS_PROXY`, then `all_proxy` before `ALL_PROXY`; `no_proxy` before `NO_PROXY`.

A PAC is only named here: what it decides for the API's URL is I/O, done by the engine before
the stages (`probes.pacroute`).
"""

from __future__ import annotations

import base64
import ipaddress
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from assure_doctor import numbers, redact, urls
from assure_doctor.addresses import host_port
from assure_doctor.errors import InputError

if TYPE_CHECKING:  # the pac package loads only where a PAC is named
    from assure_doctor.pac.location import PacLocation

DEFAULT_PROXY_PORT = 1080  # curl's default for a proxy URL without a port
_PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
_NO_PROXY_VARIABLES = ("no_proxy", "NO_PROXY")
PAC_FLAG = "--pac"  # pac.location.PacSource.FLAG, without loading the pac package
# urllib's readers of the OS settings: the Windows registry, macOS' SystemConfiguration.
_SYSTEM_READERS = {"win32": "getproxies_registry", "darwin": "getproxies_macosx_sysconf"}


class Source(StrEnum):
    """Where the proxy setting came from, when it is not an environment variable's name."""

    FLAG = "--proxy"
    NO_PROXY_FLAG = "--no-proxy"
    SYSTEM = "system"
    NONE = "none"
    PAC = "pac"  # a proxy auto-configuration script chose the proxy (or DIRECT)


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy. The password is a secret: only `masked_url` is ever shown."""

    host: str
    port: int
    source: str
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def masked_url(self) -> str:
        user = "" if self.username is None else f"{self.username}:****@"
        return f"http://{user}{host_port(self.host, self.port)}"

    @property
    def authorization(self) -> str | None:
        """The Proxy-Authorization value for Basic, when credentials were given."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


@dataclass(frozen=True)
class Route:
    """How one target is reached: through `proxy`, or directly (proxy None), and why."""

    proxy: Proxy | None
    source: str
    reason: str


@dataclass(frozen=True)
class ProxyRules:
    """The proxy settings as loaded once at the edge; `route` applies them to a target.

    With `pac`, the first of those PACs that is there decides the route (the engine asks it);
    `route` then gives what applies when none is (only WPAD candidates, none there).
    """

    proxy: Proxy | None = None
    no_proxy: str = ""
    no_proxy_source: str | None = None
    forced_direct: bool = False
    pac: tuple[PacLocation, ...] = ()

    @property
    def pac_flag(self) -> PacLocation | None:
        """The PAC given with --pac, if one was."""
        return next((location for location in self.pac if location.source == PAC_FLAG), None)

    def route(self, host: str, port: int) -> Route:
        if self.forced_direct:
            return Route(None, Source.NO_PROXY_FLAG, "--no-proxy: connect directly")
        if self.proxy is None:
            return Route(None, Source.NONE, "no proxy is configured")
        if self.proxy.source != Source.FLAG and bypassed(host, port, self.no_proxy):
            return Route(None, self.no_proxy_source or Source.NONE,
                         f"{self.no_proxy_source} lists {host}")
        return Route(self.proxy, self.proxy.source, f"proxy from {self.proxy.source}")


def parse(url: str, source: str) -> Proxy:
    """An `http://[user:pass@]host[:port]` proxy URL; raises InputError naming `source` (the
    password is registered as a secret before anything else reads the URL)."""
    text = url.strip()
    if not text:
        raise InputError(f"{source}: empty proxy URL")
    if "://" not in text:
        text = "http://" + text  # curl and the Windows registry allow host:port alone
    parts = urls.split(text, source)
    if parts.scheme != "http":
        raise InputError(f"{source}: only http:// proxies are supported")
    if parts.path not in ("", "/") or parts.query is not None or parts.fragment is not None:
        raise InputError(f"{source}: a proxy URL is http://[user:pass@]host:port, nothing more")
    if parts.port == 0:
        raise InputError(f"{source}: port 0 is not a port")
    proxy = Proxy(parts.host, parts.port or DEFAULT_PROXY_PORT, source, parts.username,
                  parts.password)
    if proxy.authorization:
        redact.register(proxy.authorization.removeprefix("Basic "))
    return proxy


def load(flag: str | None, no_proxy_flag: bool, environ: Mapping[str, str],
         system: Mapping[str, str] | None = None, pac: PacLocation | None = None,
         system_pac: Callable[[], Sequence[PacLocation]] | None = None) -> ProxyRules:
    """The rules from --proxy / --no-proxy / --pac, the environment, then the system's PAC
    settings (`system_pac`, called only when nothing before decides) and static proxy."""
    if no_proxy_flag:
        if flag or pac:
            other = "--proxy" if flag else "--pac"
            raise InputError(f"{other} and --no-proxy: give one of them")
        return ProxyRules(forced_direct=True)
    if flag and pac:
        raise InputError("--proxy and --pac: give one of them")
    no_proxy_name = next((name for name in _NO_PROXY_VARIABLES if name in environ), None)
    no_proxy = environ.get(no_proxy_name, "") if no_proxy_name else ""
    if flag:
        return ProxyRules(parse(flag, Source.FLAG))
    if pac is not None:
        return ProxyRules(pac=(pac,))
    for name in _PROXY_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return ProxyRules(parse(value, name), no_proxy, no_proxy_name)
    # Windows tries its automatic configuration (WPAD, AutoConfigURL) before its static proxy,
    # which stays the route when no PAC is there.
    locations = tuple(system_pac()) if system_pac is not None else ()
    if system:
        value = system.get("https") or system.get("all") or ""
        if value:
            bypass = system.get("no", "")
            return ProxyRules(parse(value, Source.SYSTEM), bypass or no_proxy,
                              Source.SYSTEM if bypass else no_proxy_name, pac=locations)
    return ProxyRules(no_proxy=no_proxy, no_proxy_source=no_proxy_name, pac=locations)


def system_settings() -> dict[str, str]:
    """The OS's own proxy settings: the Windows registry or macOS' configuration. On Linux
    the environment is the system's setting, read by `load` already."""
    reader = _SYSTEM_READERS.get(sys.platform)
    if reader is None:
        return {}
    import urllib.request  # http.client and ssl: only where a system proxy is read

    found = getattr(urllib.request, reader)()
    return {key: value for key, value in found.items() if isinstance(value, str)}


def system_pac() -> tuple[PacLocation, ...]:
    """The PACs the OS names (Windows: WPAD when auto-detect is on, then AutoConfigURL; macOS:
    its PAC URL, then WPAD); none elsewhere, where the pac package is not even loaded."""
    if sys.platform not in ("win32", "darwin"):
        return ()
    from assure_doctor import logs
    from assure_doctor.pac import system

    found = system.read()
    logs.get("pac").info("System PAC settings: %s", found.note)
    return found.locations


def bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether NO_PROXY exempts host:port, as curl reads it: `*` alone matches everything;
    a name matches itself and its subdomains (a leading dot is optional); an IP address or
    CIDR range matches addresses; `name:port` matches only that port."""
    host = host.lower().strip("[]").rstrip(".")
    address = _address(host)
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry, entry_port = _split_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry.strip("[]"), strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = entry.removeprefix("*").strip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _split_port(entry: str) -> tuple[str, int | None]:
    """`host:port`, `[v6]:port` or a bare entry (an IPv6 address or range has many colons).
    A port that is not one (`host:²`) leaves the entry whole, so it matches nothing."""
    if entry.startswith("["):
        inside, _, rest = entry[1:].partition("]")
        if not rest:
            return inside, None
        number = numbers.port(rest[1:]) if rest.startswith(":") else None
        return (inside, number) if number is not None else (entry, None)
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        number = numbers.port(port)
        if number is not None:
            return name, number
    return entry, None
