"""The hosts file: where it is, and which of its lines name a host.

The parser is total: any bytes give entries or none, never an exception. It follows the
resolvers' own reading: `#` starts a comment, fields are split by blanks, the first is an
address, the rest are names compared without case.
"""

from __future__ import annotations

import ipaddress
import ntpath
import re
from collections.abc import Mapping
from dataclasses import dataclass

from assure_doctor.kinds import Family

POSIX_PATH = "/etc/hosts"
MAX_BYTES = 16 * 1024 * 1024  # ad-blocking hosts files run to a few MiB
_BOM = b"\xef\xbb\xbf"
_BLANKS = re.compile(rb"[ \t\r\f\v]+")
_DRIVE_ROOT = re.compile(r"^[A-Za-z]:\\[^\x00-\x1f\"<>|?*]*$")


@dataclass(frozen=True)
class HostsEntry:
    """One line's mapping of a name to an address."""

    line: int  # 1-based
    address: str  # normalised (`ipaddress`)

    @property
    def family(self) -> Family:
        return Family.of(self.address)


def path_for(platform: str, environ: Mapping[str, str]) -> str:
    """The hosts file the system resolver reads: `%SystemRoot%\\System32\\drivers\\etc\\hosts`
    on Windows, `/etc/hosts` elsewhere (macOS's is the same file through /private/etc)."""
    if platform != "win32":
        return POSIX_PATH
    root = next((value for key, value in environ.items() if key.upper() == "SYSTEMROOT"), "")
    if not _DRIVE_ROOT.match(root):  # unset or odd: the default installation's
        root = "C:\\Windows"
    return ntpath.join(root, "System32", "drivers", "etc", "hosts")


def find(data: bytes, host: str, family: Family | None = None) -> tuple[HostsEntry, ...]:
    """The entries naming `host` (of `family`, when given), in the file's order."""
    name = _name(host.encode("utf-8", "replace"))
    if not name or name not in data.lower():  # most files never mention it: no parsing
        return ()
    found = []
    for number, line in enumerate(data.split(b"\n"), 1):
        if name not in line.lower():
            continue
        entry = parse_line(line, number)
        if entry is None:
            continue
        address, names = entry
        if name in names and (family is None or Family.of(address) is family):
            found.append(HostsEntry(number, address))
    return tuple(found)


def parse_line(line: bytes, number: int) -> tuple[str, tuple[bytes, ...]] | None:
    """One line's address and names (lower case, no trailing dot), or None: a comment, a blank
    line, or a first field that is not an address."""
    if number == 1:
        line = line.removeprefix(_BOM)  # Notepad's UTF-8
    fields = [f for f in _BLANKS.split(line.split(b"#", 1)[0]) if f]
    if len(fields) < 2:
        return None
    address = _address(fields[0])
    if address is None:
        return None
    return address, tuple(_name(f) for f in fields[1:])


def _address(field: bytes) -> str | None:
    try:
        return str(ipaddress.ip_address(field.decode("ascii")))
    except ValueError:  # UnicodeDecodeError is one
        return None


def _name(field: bytes) -> bytes:
    return field.lower().rstrip(b".")
