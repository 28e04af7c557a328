"""What to check: the ping URL (from --stack or --url) and the DNS servers to ask."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from assure_doctor import numbers, urls
from assure_doctor.addresses import bracketed, host_port, is_address
from assure_doctor.errors import InputError, TargetError, shown

STACK_DOMAIN = "sheassure.net"
PING_PATH = "/v1/ping"
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Target:
    """The ping URL split into the parts the stages need."""

    url: str
    host: str
    port: int
    path: str
    stack: str | None = None

    @property
    def host_is_address(self) -> bool:
        """True when the URL names an IP address, so there is nothing to look up."""
        return is_address(self.host)

    @property
    def host_header(self) -> str:
        """The Host header: the name, bracketed if IPv6, with the port unless it is 443."""
        return bracketed(self.host) if self.port == 443 else host_port(self.host, self.port)

    @property
    def label(self) -> str:
        """The monitor's `target` label: the stack name, else the URL host."""
        return self.stack or self.host

    def to_dict(self) -> dict[str, object]:
        return {"url": self.url, "host": self.host, "port": self.port, "stack": self.stack}


def from_stack(name: str, flag: str = "--stack") -> Target:
    """`--stack uk2` → https://api.uk2.sheassure.net/v1/ping.

    `flag` names the input in errors (`--stack`, or a TOML key such as `stack =`).
    """
    stack = name.strip().lower()
    if not _LABEL.match(stack):
        raise TargetError(f"{flag} {shown(name)}: a stack name is one DNS label such as uk2, "
                          "anz, na")
    host = f"api.{stack}.{STACK_DOMAIN}"
    return Target(url=f"https://{host}{PING_PATH}", host=host, port=443, path=PING_PATH,
                  stack=stack)


def from_url(url: str, flag: str = "--url") -> Target:
    """`--url https://host[:port]/path`: https only, a host required, the path kept as given.

    Errors name `flag`, never a part of the URL (it may carry a secret, or a pasted key).
    """
    try:
        parts = urls.split(url.strip(), flag)
    except InputError as exc:
        raise TargetError(str(exc)) from None
    if parts.scheme != "https":
        raise TargetError(f"{flag}: must be an https:// URL (the API is HTTPS only)")
    if parts.username is not None or parts.password is not None:
        raise TargetError(f"{flag}: must not carry credentials (user:password@)")
    host = parts.host.rstrip(".")
    if not host:
        raise TargetError(f"{flag}: has no host")
    if parts.port == 0:
        raise TargetError(f"{flag}: port 0 is not a port")
    if not is_address(host) and not all(_LABEL.match(label) for label in host.split(".")):
        raise TargetError(f"{flag}: the host is not a valid host name")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    target = Target(url="", host=host, port=parts.port or 443, path=path)
    return replace(target, url=f"https://{target.host_header}{path}")


def resolve_target(stack: str | None, url: str | None, flags: tuple[str, str] = ("--stack", "--url")
                   ) -> Target:
    """Exactly one of --stack and --url (`flags` names them in errors)."""
    if stack and url:
        raise TargetError(f"{flags[0]} and {flags[1]}: give one or the other, not both")
    if stack:
        return from_stack(stack, flags[0])
    if url:
        return from_url(url, flags[1])
    raise TargetError(f"no target: give {flags[0]} NAME (e.g. uk2) or {flags[1]} https://...")


@dataclass(frozen=True)
class ResolverAddress:
    """A DNS server given with --resolver."""

    host: str
    port: int = 53

    def __str__(self) -> str:
        return host_port(self.host, self.port)


def parse_resolver(text: str, flag: str = "--resolver") -> ResolverAddress:
    """`1.1.1.1`, `1.1.1.1:5353`, `::1`, `[::1]:53`; an IP address, never a name.

    An unbracketed IPv6 address whose last group could be a port (`::1:53`: the address ::1
    port 53, or the address ::1:53?) is ambiguous and refused; bracket it.
    """
    raw = text.strip()
    host, port_text = raw, ""
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise TargetError(f"{flag} {shown(text)}: write IPv6 as [ADDRESS]:PORT")
        port_text = rest[1:]
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
    elif raw.count(":") > 1 and _ambiguous_ipv6(raw):
        raise TargetError(f"{flag} {shown(text)}: write IPv6 as [ADDRESS]:PORT (or [ADDRESS] for "
                          "port 53): the last group could be a port")
    if not is_address(host):
        raise TargetError(f"{flag} {shown(text)}: {shown(host)} is not an IP address")
    port = 53
    if port_text:
        parsed = numbers.port(port_text)
        if parsed is None:
            raise TargetError(f"{flag} {shown(text)}: {shown(port_text)} is not a port number")
        port = parsed
    return ResolverAddress(str(ipaddress.ip_address(host)), port)


def _ambiguous_ipv6(text: str) -> bool:
    """True when `text` without its last `:group` is still an address and that group is a
    decimal number: then it may be ADDRESS:PORT written without brackets."""
    head, _, last = text.rpartition(":")
    return numbers.whole(last, 0, 10**9) is not None and is_address(head)
