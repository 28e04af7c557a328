"""Linux network namespaces joined by veth pairs, for kernel-level faults (firewall rules,
missing routes, a small MTU). Only 198.18.0.0/15 addresses; everything is deleted after.
Needs root and `ip netns`; `require()` skips the test with the reason otherwise."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_serial = itertools.count()
# A TLS server for one namespace: accepts, completes the handshake, reads, closes.
SERVER = """
import socket, ssl, sys, threading
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[3], sys.argv[4])
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
listener = socket.create_server((sys.argv[1], int(sys.argv[2])), family=family)
def serve(conn):
    try:
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(10)
            tls.recv(1024)
    except OSError:
        pass
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


# A DNS server for one namespace: the sandbox's, answering for one zone (argv: its address,
# then the zone as JSON); prints "ready" once it listens.
DNS_SERVER = """
import asyncio, json, sys
from assure_doctor.sandbox import dnsserver
async def main():
    z = json.loads(sys.argv[2])
    zone = dnsserver.Zone(z["host"], z["behaviour"], tuple(z.get("ipv4", ())),
                          tuple(z.get("ipv6", ())), tuple(z.get("aliases", ())))
    await dnsserver.start(zone, sys.argv[1], 53)
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def require(*tools: str) -> None:
    """Skip unless root with `ip netns` and the given tools."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("network namespaces need root on Linux")
    for tool in ("ip", *tools):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (.ci/run installs iproute2 and iptables)")
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"ip netns is unavailable here: {probe.stderr.strip()}")


def sh(*args: str, ns: str | None = None) -> str:
    command = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


class Lab:
    """Namespaces, links between them, and processes inside them; `close` removes it all."""

    def __init__(self) -> None:
        self.tag = f"ad{os.getpid() % 100000}x{next(_serial)}"
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self.etc_dirs: list[Path] = []

    def namespace(self, role: str) -> str:
        name = f"{self.tag}{role}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "link", "set", "lo", "up", ns=name)
        return name

    def link(self, left: str, left_cidr: str, right: str, right_cidr: str,
             left_mtu: int = 1500, right_mtu: int = 1500) -> None:
        """A veth pair between two namespaces, with an address on each end."""
        a, b = f"{left[-6:]}{right[-1]}", f"{right[-6:]}{left[-1]}"
        sh("ip", "link", "add", a, "netns", left, "type", "veth", "peer", "name", b,
           "netns", right)
        for ns, dev, cidr, mtu in ((left, a, left_cidr, left_mtu),
                                   (right, b, right_cidr, right_mtu)):
            # nodad: an IPv6 address is usable at once, not after duplicate detection
            sh("ip", "addr", "add", cidr, "dev", dev, *(["nodad"] if ":" in cidr else []), ns=ns)
            sh("ip", "link", "set", dev, "mtu", str(mtu), "up", ns=ns)

    def tls_server(self, ns: str, address: str, port: int, cert: Path, key: Path) -> None:
        process = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER,
                                    address, str(port), str(cert), str(key)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        for _ in range(100):
            if connects(ns, address, port):
                return
            if process.poll() is not None:
                raise RuntimeError("the namespace's TLS server exited")
        raise RuntimeError("the namespace's TLS server did not start")

    def etc(self, ns: str, files: dict[str, str]) -> None:
        """Files `ip netns exec NS` bind-mounts over /etc's (hosts, resolv.conf, ...)."""
        folder = Path("/etc/netns") / ns
        folder.mkdir(parents=True, exist_ok=True)
        self.etc_dirs.append(folder)
        for name, text in files.items():
            (folder / name).write_text(text)

    def dns_server(self, ns: str, address: str, zone: dict[str, object]) -> None:
        """The sandbox's DNS server on `address` port 53 inside `ns`, answering for `zone`."""
        process = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", DNS_SERVER,
                                    address, json.dumps(zone)], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, cwd=Path(__file__).parent.parent)
        self.processes.append(process)  # type: ignore[arg-type]
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the namespace's DNS server did not start")

    def wait_reachable(self, ns: str, address: str, port: int) -> None:
        """Until a TCP connect from `ns` gets through (routers' neighbour discovery done);
        a SYN is small, so a lowered MTU does not stop it."""
        for _ in range(50):
            if connects(ns, address, port):
                return
        raise RuntimeError(f"{address} port {port} is not reachable from {ns}")

    def close(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        for folder in self.etc_dirs:
            shutil.rmtree(folder, ignore_errors=True)


def connects(ns: str, address: str, port: int) -> bool:
    try:
        sh(sys.executable, "-c", f"import socket; socket.create_connection("
           f"({address!r}, {port}), 0.2).close()", ns=ns)
    except RuntimeError:
        return False
    return True


@contextmanager
def lab() -> Iterator[Lab]:
    built = Lab()
    try:
        yield built
    except RuntimeError as exc:
        if "Operation not permitted" in str(exc):
            pytest.skip(f"namespaces cannot be built here: {exc}")
        raise
    finally:
        built.close()


# A TCP listener for one namespace: accepts and closes (a traceroute needs only the SYN-ACK).
LISTENER = """
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
listener = socket.create_server((sys.argv[1], int(sys.argv[2])), family=family)
while True:
    listener.accept()[0].close()
"""


class Chain:
    """client -- r1 -- r2 -- r3 -- server, each router forwarding IPv4 and IPv6.

    Link k (1..4) joins node k-1 and node k (the client is node 0, the server node 4): the
    left end is 198.18.k.1 and fd00:ad:k::1, the right end 198.18.k.2 and fd00:ad:k::2. A
    router answers a trace from its address toward the client: hop k is 198.18.k.2.
    ICMP rate limits are off everywhere, so every expired probe gets its answer.
    """

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.nodes = [lab.namespace(role) for role in ("c", "r1", "r2", "r3", "s")]
        self.client, self.server = self.nodes[0], self.nodes[-1]
        self.routers = self.nodes[1:-1]
        for k in range(1, len(self.nodes)):
            lab.link(self.nodes[k - 1], f"198.18.{k}.1/24", self.nodes[k], f"198.18.{k}.2/24")
            self._add6(k)
        for ns in self.nodes:
            sh("sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
               ns=ns)
        for ns in self.routers:
            sh("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
               ns=ns)
        last = len(self.nodes) - 1
        self._route(self.client, "default", 1, right=True)
        self._route(self.server, "default", last, right=False)
        for p in range(1, last):
            for k in range(1, last + 1):
                if k < p:
                    self._route(self.nodes[p], k, p, right=False)
                elif k > p + 1:
                    self._route(self.nodes[p], k, p + 1, right=True)

    def _add6(self, k: int) -> None:
        """The IPv6 addresses on link k's veth pair (made by the IPv4 `link`)."""
        left, right = self.nodes[k - 1], self.nodes[k]
        for ns, peer, end in ((left, right, 1), (right, left, 2)):
            dev = f"{ns[-6:]}{peer[-1]}"
            sh("ip", "addr", "add", f"fd00:ad:{k}::{end}/64", "dev", dev, "nodad", ns=ns)

    def _route(self, ns: str, to: int | str, link: int, right: bool) -> None:
        """A route in `ns` to link `to` (or default) via its neighbour on `link`."""
        via = 2 if right else 1
        v4 = to if to == "default" else f"198.18.{to}.0/24"
        v6 = to if to == "default" else f"fd00:ad:{to}::/64"
        sh("ip", "route", "add", str(v4), "via", f"198.18.{link}.{via}", ns=ns)
        sh("ip", "-6", "route", "add", str(v6), "via", f"fd00:ad:{link}::{via}", ns=ns)

    def address(self, node: int, version: int = 4) -> str:
        """Node `node`'s address toward the client (the client's own for node 0)."""
        if node == 0:
            return "198.18.1.1" if version == 4 else "fd00:ad:1::1"
        return f"198.18.{node}.2" if version == 4 else f"fd00:ad:{node}::2"

    def listen(self, port: int) -> None:
        """A TCP listener on the server's IPv4 and IPv6 address, reachable from the client
        (neighbour discovery done on every link)."""
        for version in (4, 6):
            address = self.address(len(self.nodes) - 1, version)
            process = subprocess.Popen(
                ["ip", "netns", "exec", self.server, sys.executable, "-c", LISTENER, address,
                 str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.lab.processes.append(process)
            self.lab.wait_reachable(self.client, address, port)
