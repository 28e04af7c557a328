"""The operating system's own lookup, as the integration's client makes it: getaddrinfo (the
hosts file, nsswitch, search domains; on Windows the DNS client), bounded in time; and the hosts
file read to tell whether it decided, and on which line.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from assure_doctor import localfile
from assure_doctor.errors import InputError
from assure_doctor.kinds import Family, OsFailure
from assure_doctor.probes import gai, hostsfile
from assure_doctor.probes.results import HostsPin, OsSource

_FAMILIES = {None: socket.AF_UNSPEC, Family.IPV4: socket.AF_INET, Family.IPV6: socket.AF_INET6}
# Lookups whose thread still waits for the system's resolver (a dead DNS server keeps glibc
# busy for up to 30 s); past this many, a new lookup is reported as not answered.
MAX_WAITING = 64
_waiting = threading.BoundedSemaphore(MAX_WAITING)


@dataclass(frozen=True)
class OsAnswer:
    """The addresses getaddrinfo gave, in its order, or how it failed."""

    addresses: tuple[str, ...] = ()
    failure: OsFailure | None = None
    error: str | None = None


@dataclass(frozen=True)
class HostsView:
    """What the hosts file says about one name: its path, the entries, or why it is unread."""

    path: str
    entries: tuple[hostsfile.HostsEntry, ...] = ()
    error: str | None = None


async def getaddrinfo(host: str, port: int, family: Family | None, timeout: float) -> OsAnswer:
    """The system's answer for `host`, within `timeout`.

    It runs on a daemon thread of its own rather than the loop's executor: getaddrinfo cannot
    be cancelled, and a thread of the default executor still waiting for a dead DNS server
    would hold up the process's exit (asyncio.run joins them) and starve the monitor's other
    work. Abandoned, this thread ends when the system's resolver gives up.
    """
    if not _waiting.acquire(blocking=False):
        return OsAnswer(failure=OsFailure.TEMPORARY, error=(
            f"{MAX_WAITING} earlier lookups still wait for the system's resolver"))
    loop = asyncio.get_running_loop()
    future: asyncio.Future[list[Any]] = loop.create_future()
    try:
        threading.Thread(target=_lookup, args=(loop, future, host, port, _FAMILIES[family]),
                         name="assure-getaddrinfo", daemon=True).start()
    except RuntimeError as exc:  # no thread to be had: as if the resolver did not answer
        _waiting.release()
        return OsAnswer(failure=OsFailure.TEMPORARY, error=f"cannot start a lookup: {exc}")
    try:
        async with asyncio.timeout(timeout):
            infos = await future
    except TimeoutError:
        return OsAnswer(failure=OsFailure.TEMPORARY, error=(
            f"no answer from the system's resolver within {timeout:g} s"))
    except OSError as exc:  # socket.gaierror, as each platform numbers it
        failure, error = gai.classify(exc, sys.platform)
        return OsAnswer(failure=failure, error=error)
    except UnicodeError:  # a name IDNA cannot encode: no resolver could look it up
        return OsAnswer(failure=OsFailure.NO_NAME, error="the name cannot be encoded (IDNA)")
    return OsAnswer(tuple(dict.fromkeys(str(info[4][0]) for info in infos)))


def _lookup(loop: asyncio.AbstractEventLoop, future: asyncio.Future[list[Any]], host: str,
            port: int, family: int) -> None:
    try:
        try:
            result: list[Any] | BaseException = socket.getaddrinfo(host, port, family,
                                                                    socket.SOCK_STREAM)
        except Exception as exc:  # handed to the waiting coroutine, which maps it
            result = exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, future, result)
    finally:
        _waiting.release()


def _settle(future: asyncio.Future[list[Any]], result: list[Any] | BaseException) -> None:
    if future.done():  # timed out meanwhile
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def read_hosts(host: str, family: Family | None) -> HostsView:
    """The hosts file's entries for `host`; a file that cannot be read is reported, not fatal."""
    path = hostsfile.path_for(sys.platform, os.environ)
    try:
        data = localfile.read_regular(path, hostsfile.MAX_BYTES, "the hosts file")
    except InputError as exc:
        return HostsView(path, error=str(exc))
    return HostsView(path, hostsfile.find(data, host, family))


def source(addresses: tuple[str, ...], hosts: HostsView, dns_addresses: tuple[str, ...] | None
           ) -> tuple[OsSource, tuple[HostsPin, ...]]:
    """Where the system's answer came from: the hosts file when it has every address the system
    gave (with each one's first line), DNS when DNS gave any of them, else unknown."""
    lines: dict[str, int] = {}
    for entry in hosts.entries:
        lines.setdefault(normal(entry.address), entry.line)
    if addresses and all(normal(a) in lines for a in addresses):
        return OsSource.HOSTS, tuple(HostsPin(a, lines[normal(a)]) for a in addresses)
    if dns_addresses and same_any(addresses, dns_addresses):
        return OsSource.DNS, ()
    return OsSource.UNKNOWN, ()


def same_set(left: Iterable[str], right: Iterable[str]) -> bool:
    return {normal(a) for a in left} == {normal(a) for a in right}


def same_any(left: Iterable[str], right: Iterable[str]) -> bool:
    return bool({normal(a) for a in left} & {normal(a) for a in right})


def normal(address: str) -> str:
    """One spelling per address (`::1` and `0::1` are the same)."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address
