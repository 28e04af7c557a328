"""What FindProxyForURL returned, read as routes, and the decision a PAC made for one URL.

Pure. The returned string is hostile (a PAC may return any text): it is read totally, entry by
entry (`PROXY host:port; HTTPS host:port; SOCKS5 host:port; DIRECT`), bounded in length and in
the number of entries, with ports read by one strict ASCII parser. Entries assure-doctor cannot
take (HTTPS and SOCKS proxies) are kept, marked with the reason; entries that are not routes
at all are kept as `INVALID` with theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

from assure_doctor import numbers, sanitize
from assure_doctor.addresses import host_port, is_ipv6
from assure_doctor.pac.errors import PacEvalError
from assure_doctor.pac.location import PacSource

if TYPE_CHECKING:
    from assure_doctor.proxyconfig import Proxy

MAX_RULE_CHARS = 4096  # what is read of the returned string; browsers' PAC results are short
MAX_ROUTES = 16  # entries read; more are dropped and the decision says so
SHOWN_RULE_CHARS = 300
SHOWN_ENTRY_CHARS = 80
_WHITESPACE = " \t\r\n"  # ASCII only: Unicode spaces are not separators in a PAC result
_SPACES = re.compile(f"[{_WHITESPACE}]+")
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


class RouteKind(StrEnum):
    """An entry's keyword (upper-cased), or INVALID when it is not a route."""

    DIRECT = "DIRECT"
    PROXY = "PROXY"
    HTTP = "HTTP"
    HTTPS = "HTTPS"
    SOCKS = "SOCKS"
    SOCKS4 = "SOCKS4"
    SOCKS5 = "SOCKS5"
    INVALID = "INVALID"


# Chromium's default ports for an entry without one.
_DEFAULT_PORTS = {RouteKind.PROXY: 80, RouteKind.HTTP: 80, RouteKind.HTTPS: 443,
                  RouteKind.SOCKS: 1080, RouteKind.SOCKS4: 1080, RouteKind.SOCKS5: 1080}
_UNSUPPORTED = {
    RouteKind.HTTPS: "an HTTPS proxy (TLS to the proxy itself); assure-doctor speaks plain "
                     "HTTP to proxies",
    RouteKind.SOCKS: "a SOCKS proxy; assure-doctor tunnels only through HTTP proxies",
    RouteKind.SOCKS4: "a SOCKS4 proxy; assure-doctor tunnels only through HTTP proxies",
    RouteKind.SOCKS5: "a SOCKS5 proxy; assure-doctor tunnels only through HTTP proxies",
}


@dataclass(frozen=True)
class PacRoute:
    """One entry of the result. `problem` is None for a route assure-doctor can take."""

    kind: RouteKind
    text: str  # the entry as written, sanitised and bounded
    host: str | None = None  # without brackets for IPv6
    port: int | None = None
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.problem is None

    @property
    def direct(self) -> bool:
        return self.kind is RouteKind.DIRECT

    @property
    def authority(self) -> str | None:
        """`host:port` (`[v6]:port`), or None for DIRECT and invalid entries."""
        if self.host is None or self.port is None:
            return None
        return host_port(self.host, self.port)

    def to_proxy(self, source: str = "pac") -> Proxy:
        """The HTTP proxy of a usable PROXY / HTTP entry, for the proxy stage."""
        if not self.usable or self.direct or self.host is None or self.port is None:
            raise ValueError(f"{self.kind} entry is not an HTTP proxy")
        from assure_doctor.proxyconfig import Proxy

        return Proxy(self.host, self.port, source)


class ParsedRule(NamedTuple):
    routes: tuple[PacRoute, ...]
    truncated: bool  # entries past MAX_ROUTES or characters past MAX_RULE_CHARS were dropped


def parse_rule(rule: str) -> ParsedRule:
    """Every entry of a FindProxyForURL result, in order; never raises."""
    truncated = len(rule) > MAX_RULE_CHARS
    entries = [entry.strip(_WHITESPACE) for entry in rule[:MAX_RULE_CHARS].split(";")]
    entries = [entry for entry in entries if entry]
    if len(entries) > MAX_ROUTES:
        entries, truncated = entries[:MAX_ROUTES], True
    return ParsedRule(tuple(_entry(entry) for entry in entries), truncated)


def _entry(entry: str) -> PacRoute:
    shown = sanitize.text(entry, SHOWN_ENTRY_CHARS)
    words = _split(entry)
    keyword = words[0].upper() if words[0].isascii() else ""
    kind = RouteKind.__members__.get(keyword)
    if kind is None or kind is RouteKind.INVALID:
        return PacRoute(RouteKind.INVALID, shown, problem="not a route: the keyword is not "
                        "DIRECT, PROXY, HTTP, HTTPS, SOCKS, SOCKS4 or SOCKS5")
    if kind is RouteKind.DIRECT:
        if len(words) != 1:
            return PacRoute(RouteKind.INVALID, shown, problem="not a route: DIRECT takes no "
                            "host")
        return PacRoute(kind, shown)
    if len(words) != 2:
        return PacRoute(RouteKind.INVALID, shown, problem=f"not a route: {kind} takes one "
                        "host:port")
    host_port = _host_port(words[1], _DEFAULT_PORTS[kind])
    if isinstance(host_port, str):
        return PacRoute(RouteKind.INVALID, shown, problem=f"not a route: {host_port}")
    host, port = host_port
    return PacRoute(kind, shown, host, port, _UNSUPPORTED.get(kind))


def _split(entry: str) -> list[str]:
    """The entry's words, split at runs of ASCII whitespace (entry is stripped, not empty)."""
    return _SPACES.split(entry)


def _host_port(text: str, default_port: int) -> tuple[str, int] | str:
    """`host`, `host:port`, `[v6]` or `[v6]:port`; a string says what is wrong."""
    port_text: str | None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not is_ipv6(host):
            return "not an IPv6 address in brackets"
        if rest and not rest.startswith(":"):
            return "text after the IPv6 address"
        port_text = rest[1:] if rest else None
    else:
        host, colon, after = text.partition(":")
        if ":" in after:
            return "an IPv6 address must be in brackets ([::1]:3128)"
        if not _is_host_name(host):
            return "not a host name"
        port_text = after if colon else None
    if port_text is None:
        return host.lower(), default_port
    port = numbers.port(port_text)
    if port is None:
        return "the port is not a number from 1 to 65535"
    return host.lower(), port


def _is_host_name(text: str) -> bool:
    """An ASCII host name or IPv4 address: dot-separated labels of letters, digits, `-`, `_`."""
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253 or not name.isascii():
        return False
    return all(_LABEL.fullmatch(label) for label in name.split("."))


@dataclass(frozen=True)
class PacDecision:
    """What a PAC decided for one URL: where it came from, its answer, and the routes in the
    order to try them. `url` is masked (or a file path); `rule` is sanitised and bounded."""

    source: PacSource
    url: str
    rule: str
    routes: tuple[PacRoute, ...]
    truncated: bool = False
    ms: float = 0.0  # the script's run, in milliseconds (the evaluator's start-up apart)
    fetch_ms: float = 0.0  # fetching (or reading) the script

    @property
    def usable(self) -> tuple[PacRoute, ...]:
        """The routes assure-doctor can take, in the PAC's order (first to try first)."""
        return tuple(route for route in self.routes if route.usable)

    def evidence(self) -> dict[str, str]:
        """The contract's `proxy.pac`: `{"source", "url", "rule"}`."""
        return {"source": self.source.value, "url": self.url, "rule": self.rule}


def decision(rule: str, source: PacSource, url: str, ms: float = 0.0, fetch_ms: float = 0.0
             ) -> PacDecision:
    """The decision for a FindProxyForURL result; PacEvalError when no entry is a route (an
    empty or garbled result): the integration would have nothing to follow either."""
    parsed = parse_rule(rule)
    shown = sanitize.text(rule, SHOWN_RULE_CHARS)
    if all(route.kind is RouteKind.INVALID for route in parsed.routes):
        what = f"'{shown}'" if rule.strip(_WHITESPACE) else "an empty string"
        raise PacEvalError(f"FindProxyForURL returned no route ({what})", source=source,
                           url=url)
    return PacDecision(source, url, shown, parsed.routes, parsed.truncated, ms, fetch_ms)
