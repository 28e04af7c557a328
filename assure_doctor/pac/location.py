"""Where a PAC comes from: `--pac URL_OR_FILE`, or the system's settings (Windows, macOS).

Pure. A location keeps the text it was given; `target()` reads it as an http(s) URL or a local
file, or says why it cannot (`LocationError`). A URL's userinfo is a secret: the password is
registered with `redact` and only `shown` (masked) ever leaves this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote, urlsplit

from assure_doctor import redact, sanitize
from assure_doctor.errors import InputError

MAX_LOCATION_CHARS = 2048  # an AutoConfigURL longer than this is not a URL anyone typed
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
# The userinfo runs to the last "@" before the path: a password may hold "@".
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)@")


class PacSource(StrEnum):
    """Which setting named the PAC."""

    FLAG = "--pac"
    WINDOWS = "windows_autoconfig_url"
    WPAD = "wpad"
    MACOS = "macos_autoconfig_url"

    @property
    def describe(self) -> str:
        return {
            PacSource.FLAG: "the --pac option",
            PacSource.WINDOWS: "the Windows AutoConfigURL setting",
            PacSource.WPAD: "automatic proxy detection (WPAD)",
            PacSource.MACOS: "the macOS automatic proxy configuration URL",
        }[self]


class LocationError(ValueError):
    """The text is not an http(s) URL or a file path we can read; the message never repeats
    the text."""


@dataclass(frozen=True)
class Url:
    """An http(s) PAC URL; `url` may carry credentials, `shown` has the password masked."""

    url: str = field(repr=False)
    shown: str


@dataclass(frozen=True)
class File:
    """A PAC on the local disk."""

    path: Path


@dataclass(frozen=True)
class PacLocation:
    """One place a PAC may be: the text as the setting gave it, and which setting that was."""

    source: PacSource
    text: str = field(repr=False)

    @property
    def shown(self) -> str:
        """The location for display: the password masked, sanitised, bounded."""
        return sanitize.text(_masked(self.text.strip()), 200)

    @property
    def named(self) -> str:
        """How messages name this PAC: the flag's value is never repeated (a key pasted in
        the wrong place must not be echoed); a system setting's is, masked."""
        if self.source is PacSource.FLAG:
            return "the PAC given with --pac"
        return f"the PAC at {self.shown} ({self.source.describe})"

    @property
    def optional(self) -> bool:
        """A WPAD candidate that is not there is not an error: discovery tries the next."""
        return self.source is PacSource.WPAD

    def target(self) -> Url | File:
        """The URL or file this location names; LocationError says why it names neither."""
        return parse_target(self.text)


def parse_target(text: str) -> Url | File:
    """`http(s)://...` is a URL, `file://...` and anything without a scheme a local path."""
    text = text.strip()
    if not text:
        raise LocationError("empty")
    if len(text) > MAX_LOCATION_CHARS:
        raise LocationError(f"longer than {MAX_LOCATION_CHARS} characters")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        raise LocationError("control characters in it")
    scheme = _SCHEME.match(text)
    if scheme is None:
        return File(Path(text))
    name = scheme.group(1).lower()
    if name == "file":
        return File(_file_path(text))
    if name not in ("http", "https"):
        raise LocationError("only http://, https:// and file paths are supported")
    try:
        parts = urlsplit(text)
        port = parts.port  # urllib accepts only ASCII digits, up to 65535
    except ValueError:
        raise LocationError("not a URL (its host or port cannot be read)") from None
    if not parts.hostname:
        raise LocationError("the URL has no host")
    if port == 0:
        raise LocationError("the URL's port is 0")
    # A password is a secret; so is a user name alone (a token, as in https://TOKEN@host/).
    secret = parts.password if parts.password is not None else parts.username
    if secret:
        redact.register(secret)
        redact.register(unquote(secret))
    return Url(text, _masked(text))


def _file_path(text: str) -> Path:
    """`file:///etc/x.pac`, `file://localhost/etc/x.pac`, `file:///C:/x.pac` as a path."""
    from urllib.request import url2pathname

    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        raise LocationError("a file:// URL on another host is not supported")
    if not parts.path:
        raise LocationError("the file:// URL has no path")
    return Path(url2pathname(unquote(parts.path)))


def _masked(text: str) -> str:
    """`scheme://user:****@host...`, or `scheme://****@host...` for a user name alone."""
    found = _USERINFO.match(text)
    if found is None:
        return text
    user, colon, _ = found.group(2).partition(":")
    shown = f"{user}:****" if colon else "****"
    return found.group(1) + shown + "@" + text[found.end():]


def from_flag(text: str, name: str = "--pac") -> PacLocation:
    """The location `--pac URL_OR_FILE` names; InputError naming `name` (the flag, or a TOML
    key), never the value."""
    try:
        parse_target(text)
    except LocationError as exc:
        raise InputError(f"{name}: {exc}") from None
    return PacLocation(PacSource.FLAG, text.strip())
