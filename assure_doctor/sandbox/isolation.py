"""Scenarios the operating system's resolver must decide (a hosts-file pin) run in private
mount and network namespaces of their own.

There, /etc/hosts, /etc/resolv.conf and /etc/nsswitch.conf are the scenario's, bind-mounted over
the machine's; the sandbox's DNS server answers on 127.0.0.1:53; nscd's socket is hidden; and the
network has nothing but loopback. So a check without --resolver resolves as a real client would
(getaddrinfo reads the hosts file, then asks DNS), yet no query can reach a real resolver.

`python -m assure_doctor.sandbox.namespaced serve|demo SCENARIO` is what runs inside: started by
`Remote` (which then runs commands inside with nsenter) or by `demo`. Linux only, as root or
where unprivileged user namespaces work; `unavailable()` says why not elsewhere.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

from assure_doctor.errors import InputError
from assure_doctor.sandbox.scenarios import SCENARIOS, Scenario

HOST = "api.sandbox.sheassure.net"  # stack.HOST, which imports this module
DNS_PORT = 53  # resolv.conf cannot name another
# Hidden inside: glibc asks a running nscd before any file or server, and nscd would resolve
# in the machine's own network.
_NSCD_DIRS = ("/run/nscd", "/var/run/nscd")
# Variables that change how glibc resolves; the namespace's files alone must decide.
_RESOLVER_VARIABLES = ("LOCALDOMAIN", "RES_OPTIONS", "HOSTALIASES")
_START_SECONDS = 30.0
_MS_BIND = 4096
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def files(scenario: Scenario) -> dict[str, bytes]:
    """The files the scenario's namespace sees in /etc."""
    hosts = ("# /etc/hosts of the assure-doctor sandbox's namespace\n"
             "127.0.0.1\tlocalhost\n"
             "::1\tlocalhost ip6-localhost ip6-loopback\n"
             "# left behind by an old installation of the integration:\n"
             f"{scenario.hosts_pin}\t{HOST}\n")
    return {
        "/etc/hosts": hosts.encode(),
        # Short waits: a scenario whose server is silent must not keep glibc busy for long.
        "/etc/resolv.conf": b"nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
        "/etc/nsswitch.conf": b"hosts: files dns\n",
    }


def inside(scenario: Scenario) -> bool:
    """Whether this process sees the scenario's own files in /etc (it runs in its namespace)."""
    for path, content in files(scenario).items():
        try:
            if Path(path).read_bytes() != content:
                return False
        except OSError:
            return False
    return True


@functools.cache
def unavailable() -> str | None:
    """Why the namespaces cannot be made here (one line), or None."""
    if sys.platform != "linux":
        return "needs Linux namespaces"
    for tool in ("unshare", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (util-linux)"
    for path in ("/etc/hosts", "/etc/resolv.conf"):
        if not os.path.isfile(path):
            return f"{path} does not exist to be replaced"
    try:
        done = subprocess.run([*_unshare(), "true"], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare failed: {exc}"
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["unshare failed"])[-1]
        return f"cannot create namespaces here ({reason})"
    return None


def _unshare() -> list[str]:
    """A mount and a network namespace (private propagation: nothing leaks out); without root,
    inside a user namespace of our own."""
    if _is_root():
        return ["unshare", "--mount", "--net"]
    return ["unshare", "--user", "--map-root-user", "--mount", "--net"]


def _is_root() -> bool:
    if sys.platform == "win32":
        return False
    return os.geteuid() == 0


def _child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _RESOLVER_VARIABLES}


def _module(mode: str, name: str, *extra: str) -> list[str]:
    return [*_unshare(), sys.executable, "-m", "assure_doctor.sandbox.namespaced", mode, name,
            *extra]


class Remote:
    """A scenario's sandbox, served inside its namespaces by a child process. `enter` is the
    command prefix that runs a program in there (the check, typically)."""

    def __init__(self, name: str) -> None:
        if name not in SCENARIOS:
            raise InputError(f"scenario {name!r}: unknown; see `assure-doctor sandbox --list`")
        self.scenario = SCENARIOS[name]
        self.proxy = None
        self.proxy_url: str | None = None
        self.pac_url: str | None = None
        self.resolver = f"127.0.0.1:{DNS_PORT}"
        self.url = ""
        self.port = 0
        self.ipv6 = False
        self.ca_bundle = Path()
        self.key_file = Path()
        self.key = ""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def enter(self) -> tuple[str, ...]:
        if self._process is None:
            raise RuntimeError("the sandbox has not started")
        user = () if _is_root() else ("--user", "--preserve-credentials")
        # --wd: the child's directory (entering a mount namespace would leave us at /).
        return ("nsenter", f"--target={self._process.pid}", *user, "--mount", "--net", "--wd")

    def check_args(self) -> list[str]:
        """No --resolver: the system's resolver decides, inside the namespace."""
        return ["--url", self.url, "--ca-bundle", str(self.ca_bundle), "--api-key-file",
                str(self.key_file), "--no-proxy"]

    def start(self) -> Self:
        reason = unavailable()
        if reason is not None:
            raise InputError(f"scenario {self.scenario.name}: {reason}")
        self._process = subprocess.Popen(_module("serve", self.scenario.name),
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         env=_child_env())
        line = self._first_line()
        if not line:
            self.stop()
            raise InputError(f"scenario {self.scenario.name}: its namespace did not start")
        served = json.loads(line)
        self.url, self.port, self.ipv6 = served["url"], served["port"], served["ipv6"]
        self.ca_bundle, self.key_file = Path(served["ca_bundle"]), Path(served["key_file"])
        self.key = self.key_file.read_text().strip()
        return self

    def _first_line(self) -> bytes:
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout
        deadline = time.monotonic() + _START_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([stdout], [], [], left)
            if ready:
                return stdout.readline()
        return b""

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()  # the child stops its sandbox at end of input
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        if self.ca_bundle.name:  # what a killed child could not remove
            shutil.rmtree(self.ca_bundle.parent, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def demo(name: str, colour: bool) -> bool | None:
    """The demo of one isolated scenario, run inside its namespaces; None: skipped (it says
    why in one line)."""
    reason = unavailable()
    if reason is not None:
        print(f"━━ scenario {name}: skipped: {reason}\n", flush=True)
        return None
    done = subprocess.run(_module("demo", name, *(["--colour"] if colour else [])),
                          env=_child_env())
    return done.returncode == 0


# --- inside the namespaces ----------------------------------------------------------------
def enter(scenario: Scenario, workdir: Path) -> None:
    """Put the scenario's files over /etc's, hide nscd, and bring loopback up."""
    empty = workdir / "empty"
    empty.mkdir()
    for target in {os.path.realpath(d) for d in _NSCD_DIRS if os.path.isdir(d)}:
        _bind(str(empty), target)
    for path, content in files(scenario).items():
        if not os.path.exists(path):  # musl reads no nsswitch.conf
            continue
        source = workdir / Path(path).name
        source.write_bytes(content)
        source.chmod(0o644)
        _bind(str(source), path)
    _loopback_up()


def _bind(source: str, target: str) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.mount(source.encode(), target.encode(), None, _MS_BIND, None) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"cannot bind-mount over {target}: {os.strerror(error)}")


def _loopback_up() -> None:
    if sys.platform == "win32":
        return
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | _IFF_UP))
