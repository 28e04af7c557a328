"""Which URLs `/probe` may check: an allow-list, so that the exporter is no open relay.

Whoever reaches the exporter chooses `/probe?target=`. Unchecked, that is a port scanner of
the monitor's network (loopback, private addresses) and a relay through the operator's
proxy, with its credentials. By default only hosts under sheassure.net (the API's own domain,
any port) and the configured targets' hosts and ports are allowed; `--probe.allow HOST[:PORT]`
adds one (a HOST alone: any of its ports). The decision is made from the URL alone, before
any lookup or connection.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from assure_doctor import urls
from assure_doctor.errors import InputError
from assure_doctor.target import STACK_DOMAIN

FLAG = "--probe.allow"


@dataclass(frozen=True)
class Allowed:
    """One `--probe.allow` entry: a host, and a port (None: any)."""

    host: str
    port: int | None = None

    def matches(self, host: str, port: int) -> bool:
        return canonical(host) == self.host and self.port in (None, port)


def parse(text: str) -> Allowed:
    """`HOST`, `HOST:PORT` or `[IPv6]:PORT`; InputError naming the flag, never the value."""
    raw = text.strip()
    if not raw or any(mark in raw for mark in "/?#@"):
        raise InputError(f"{FLAG}: give HOST or HOST:PORT, e.g. api.example.com:443")
    parts = urls.split(f"https://{raw}", FLAG)
    if parts.port == 0:
        raise InputError(f"{FLAG}: port 0 is not a port")
    return Allowed(canonical(parts.host), parts.port)


def canonical(host: str) -> str:
    """A host as compared here: lower-case, no trailing dot, an IP address in its short form
    (so `0:0::1` is `::1`)."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def permits(allowed: Iterable[Allowed], host: str, port: int) -> bool:
    """Whether `/probe` may check host:port."""
    name = canonical(host)
    if name == STACK_DOMAIN or name.endswith("." + STACK_DOMAIN):
        return True
    return any(entry.matches(name, port) for entry in allowed)
