"""URLs from outside (--url, --proxy, HTTPS_PROXY, --ledger, the TOML file, /probe), split with
their secrets taken out first.

A URL may carry `user:password@`. Before anything looks further into it, the userinfo is cut
off and its password registered with `redact`, so that no message, log line or traceback can
show it (urllib's own errors quote the port, which is where a password containing `/` lands).
The rest is split here, strictly and totally: the scheme, the host (a name, IPv4, or [IPv6]),
the port in ASCII digits. Errors name the input (`what`), never a part of the URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from assure_doctor import numbers, redact
from assure_doctor.addresses import is_ipv6
from assure_doctor.errors import InputError

MAX_LENGTH = 8192
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,15}")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,253}")
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f-\x9f]")  # spaces and control characters


@dataclass(frozen=True)
class Url:
    """The parts of a URL; `password` is a secret (registered with `redact` already)."""

    scheme: str  # lower-case
    host: str  # lower-case; an IPv6 address without its brackets
    port: int | None  # None when the URL names none (0 is returned: callers refuse it)
    path: str = ""
    query: str | None = None
    fragment: str | None = None
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)


def _pieces(text: str) -> tuple[str, str, str, str]:
    """(scheme, "://" or "", authority, the rest): the authority ends at the first / ? #."""
    scheme, sep, rest = text.partition("://")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    return scheme, sep, rest[:end], rest[end:]


def has_userinfo(text: str) -> bool:
    """Whether `text` carries `user[:password]@` (for URLs from strangers, refused unread:
    their secrets are not ours to register)."""
    return "@" in _pieces(text[: MAX_LENGTH + 1])[2]


def split(text: str, what: str) -> Url:
    """The parts of `text`, or InputError naming `what` and the problem (never the URL)."""
    text = text[: MAX_LENGTH + 1]
    scheme, sep, authority, tail = _pieces(text)
    userinfo, at, hostport = authority.rpartition("@")
    username = password = None
    if at:  # the secret first: registered before any check can fail and say anything
        username, colon, raw_password = userinfo.partition(":")
        if colon:
            password = unquote(raw_password)
            redact.register(raw_password)
            redact.register(password)
        username = unquote(username)
    if len(text) > MAX_LENGTH:
        raise InputError(f"{what}: the URL is longer than {MAX_LENGTH} characters")
    if not sep or not _SCHEME.fullmatch(scheme):
        raise InputError(f"{what}: not a URL (give scheme://host[:port]...)")
    if _FORBIDDEN.search(text):
        raise InputError(f"{what}: the URL contains spaces or control characters")
    host, port = _host_port(hostport, what)
    path, _, fragment = tail.partition("#")
    path, question, query = path.partition("?")
    return Url(scheme.lower(), host, port, path, query if question else None,
               fragment if "#" in tail else None, username, password)


def _host_port(hostport: str, what: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        host, bracket, rest = hostport[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")) or not is_ipv6(host):
            raise InputError(f"{what}: the URL's host is not a valid [IPv6] address")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_found = hostport.rpartition(":")
        if not colon:
            host, port_text = hostport, None
        else:
            port_text = port_text_found
        if ":" in host:
            raise InputError(f"{what}: write an IPv6 address in brackets ([ADDRESS]:PORT)")
        if host and not _NAME.fullmatch(host):
            raise InputError(f"{what}: the URL's host is not a valid name or address")
    if not host:
        raise InputError(f"{what}: the URL has no host")
    port = None
    if port_text:  # "host:" names no port, as for urllib and curl
        port = numbers.port(port_text, low=0)
        if port is None:
            raise InputError(f"{what}: the URL's port is not a number from 1 to 65535")
    return host.lower(), port
