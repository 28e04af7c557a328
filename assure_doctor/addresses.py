"""IP address literals among host names: telling them apart, and writing a host where a port
may follow (an IPv6 address in brackets, RFC 3986 section 3.2.2). Pure."""

from __future__ import annotations

import ipaddress


def is_address(text: str) -> bool:
    """Whether `text` is an IPv4 or IPv6 address, written bare (`::1`, not `[::1]`) and in
    ASCII (ipaddress takes any zone id after `%`, `fe80::1%é` too)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return text.isascii()


def is_ipv6(text: str) -> bool:
    """Whether `text` is an IPv6 address, written bare and in ASCII."""
    try:
        return ipaddress.ip_address(text).version == 6 and text.isascii()
    except ValueError:
        return False


def bracketed(host: str) -> str:
    """The host as a URL or an authority writes it: an IPv6 address (any host with a colon)
    in brackets, anything else as it is."""
    return f"[{host}]" if ":" in host else host


def host_port(host: str, port: int) -> str:
    """`host:port`, an IPv6 address bracketed: `[::1]:443`."""
    return f"{bracketed(host)}:{port}"
