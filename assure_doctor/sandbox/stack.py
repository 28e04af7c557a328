"""`Sandbox`: one scenario's DNS server and API side, on loopback, in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import ssl
import tempfile
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Self

from cryptography.hazmat.primitives import serialization

from assure_doctor.sandbox import dnsserver, isolation, pacserver, pki, proxyserver, servers
from assure_doctor.sandbox.scenarios import SCENARIOS, Scenario

HOST = isolation.HOST
MOVED_TO = "127.0.0.2"  # loopback, where nothing of the sandbox listens: connections refused
AIA_PATH = "/assure-doctor-sandbox-issuing-ca.crt"
PAC_PATH = "/proxy.pac"


@cache
def sandbox_ca() -> pki.Issued:
    """The root the sandbox's --ca-bundle trusts; minted once per process."""
    return pki.make_ca("assure-doctor sandbox CA")


@cache
def sandbox_intermediate() -> pki.Issued:
    """The intermediate that issues the sandbox API's certificates; the server sends it."""
    return pki.make_ca("assure-doctor sandbox Issuing CA 1", sandbox_ca())


@cache
def expired_intermediate() -> pki.Issued:
    """An intermediate of the sandbox root whose validity ended ten days ago."""
    now = datetime.now(UTC)
    return pki.make_ca("assure-doctor sandbox Issuing CA 0", sandbox_ca(),
                       now - timedelta(days=400), now - timedelta(days=10))


@cache
def proxy_ca() -> pki.Issued:
    """A CA nobody trusts, as a TLS-inspecting proxy's would be."""
    return pki.make_ca("Corporate TLS Inspection CA (sandbox)")


@cache
def inspection_ca() -> pki.Issued:
    """The root of the sandbox's TLS-inspecting proxy, named as a real product's would be."""
    return pki.make_ca("Zscaler Root CA (assure-doctor sandbox)")


def leaf_for(kind: str, server_now: datetime, aia_url: str | None = None
             ) -> tuple[pki.Issued, tuple[pki.Issued, ...]]:
    """The certificate the API side presents in a scenario, and the chain sent after it.
    `aia_url`: where its issuer is published (the missing-intermediate scenario)."""
    real_now = datetime.now(UTC)
    names = [HOST, "127.0.0.1", "::1"]
    days = timedelta(days=1)
    valid = (real_now - 30 * days, real_now + 60 * days)
    issuing = sandbox_intermediate()
    table = {
        "valid": (names, issuing, *valid),
        "expired": (names, issuing, real_now - 90 * days, real_now - 10 * days),
        "expiring": (names, issuing, real_now - 85 * days, real_now + 5 * days),
        "not_yet_valid": (names, issuing, real_now + 5 * days, real_now + 95 * days),
        "mismatch": (["portal.example.net"], issuing, *valid),
        "unknown_issuer": (names, proxy_ca(), *valid),
        "self_signed": (names, None, *valid),
        "server_time": (names, issuing, server_now - days, server_now + 60 * days),
        "expired_intermediate": (names, expired_intermediate(), *valid),
        "missing_intermediate": (names, issuing, *valid),
    }
    leaf_names, issuer, not_before, not_after = table[kind]
    leaf = pki.make_leaf(leaf_names, issuer, not_before, not_after,
                         ca_issuers=aia_url if kind == "missing_intermediate" else None)
    # The sandbox's intermediates are sent with the leaf, except where that is the fault.
    intermediates = (issuing, expired_intermediate())
    sent = issuer in intermediates and kind != "missing_intermediate"
    return leaf, (issuer,) if sent and issuer is not None else ()


class Sandbox:
    """A simulated Assure stack for one scenario. Use as a context manager or start()/stop()."""

    def __init__(self, scenario: str | Scenario = "healthy") -> None:
        if isinstance(scenario, str):
            if scenario not in SCENARIOS:
                from assure_doctor.errors import InputError

                raise InputError(f"scenario {scenario!r}: unknown; see `assure-doctor sandbox "
                                 "--list`")
            scenario = SCENARIOS[scenario]
        self.scenario = scenario
        self.key = "sbx_" + secrets.token_urlsafe(24)
        self.api = servers.PingApi(scenario, self.key)
        self.workdir = Path(tempfile.mkdtemp(prefix="assure-sandbox-"))
        self.ca_bundle = self.workdir / "ca.pem"
        self.key_file = self.workdir / "api-key"
        self.dns_port = 0
        self.port = 0
        self.proxy_port = 0
        self.proxy: proxyserver.SandboxProxy | None = None
        self.issuer_files: servers.IssuerFiles | None = None  # the AIA server, where served
        self.issuer_url: str | None = None
        self.pac: pacserver.PacServer | None = None  # the PAC server, where served
        self.pac_url: str | None = None
        self.ipv6 = False
        self._dns: dnsserver.DnsServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._closers: list[object] = []
        self._tls: ssl.SSLContext | None = None

    # --- what a client needs -------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}/v1/ping"

    @property
    def resolver(self) -> str:
        return f"127.0.0.1:{self.dns_port}"

    @property
    def enter(self) -> tuple[str, ...]:
        """The prefix that runs a command where this sandbox's clients run: here, nothing
        (an isolated scenario's `isolation.Remote` enters its namespaces)."""
        return ()

    @property
    def traffic(self) -> servers.Traffic:
        return self.api.traffic

    @property
    def dns_queries(self) -> list[tuple[str, str]]:
        return self._dns.queries if self._dns else []

    @property
    def proxy_url(self) -> str | None:
        """The scenario's proxy, without credentials (see `proxyserver.USER`)."""
        return f"http://127.0.0.1:{self.proxy_port}" if self.proxy else None

    def check_args(self) -> list[str]:
        """The target options that point `check` (or tui, monitor) at this sandbox: following
        its PAC, or through its proxy, where the scenario has one, else directly whatever the
        environment says."""
        route = (["--pac", self.pac_url] if self.pac_url else
                 ["--proxy", self.proxy_url] if self.proxy_url else ["--no-proxy"])
        # Isolated, the system's resolver decides: it reads the namespace's own files.
        resolver = [] if self.scenario.isolated else ["--resolver", self.resolver]
        return ["--url", self.url, *resolver, "--ca-bundle", str(self.ca_bundle),
                "--api-key-file", str(self.key_file), *route]

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> Self:
        if self.scenario.isolated and not isolation.inside(self.scenario):
            shutil.rmtree(self.workdir, ignore_errors=True)
            from assure_doctor.errors import InputError

            raise InputError(f"scenario {self.scenario.name}: runs only in namespaces of its own "
                             f"(`assure-doctor sandbox --scenario {self.scenario.name}` or "
                             f"`assure-doctor demo {self.scenario.name}`)")
        self.ca_bundle.write_bytes(sandbox_ca().cert_pem)
        self.key_file.write_text(self.key + "\n")
        os.chmod(self.key_file, 0o600)
        self._thread = threading.Thread(target=self._run, name="assure-sandbox", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        # Failed handshakes are this sandbox's purpose, not errors worth printing.
        loop.set_exception_handler(lambda _loop, _context: None)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # handed to the starting thread, which re-raises it
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            # Let every handler finish unwinding (a proxy tunnel closes two connections).
            with contextlib.suppress(BaseException):
                loop.run_until_complete(asyncio.wait_for(
                    asyncio.gather(*tasks, return_exceptions=True), 5))
            for close in self._closers:
                close()  # type: ignore[operator]
            # A transport closes its socket on the loop's next turn: give it that turn.
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    async def _serve(self) -> None:
        scenario = self.scenario
        server_now = datetime.now(UTC) + timedelta(seconds=scenario.clock_offset)
        aia_url = await self._serve_issuer() if scenario.cert == "missing_intermediate" else None
        leaf, chain = leaf_for(scenario.cert, server_now, aia_url)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert_file, key_file = self.workdir / "server.pem", self.workdir / "server.key"
        cert_file.write_bytes(leaf.cert_pem + b"".join(c.cert_pem for c in chain))
        key_file.write_bytes(leaf.key_pem)
        tls.load_cert_chain(cert_file, key_file)
        self._tls = tls
        if scenario.changes is not None:
            self.api.after_first_answer = self._change
        listening = await servers.listen(scenario.server, self.api, tls)
        self.port, self.ipv6 = listening.port, listening.ipv6
        self._closers.append(listening.close)
        if scenario.proxy is not None:
            await self._serve_proxy(scenario.proxy)
        if scenario.pac is not None:
            await self._serve_pac(scenario.pac)
        zone = dnsserver.Zone(HOST, scenario.dns, ipv6=("::1",) if listening.ipv6 else (),
                              aliases=scenario.cname)
        # Isolated, the namespace's resolv.conf names 127.0.0.1, which means port 53.
        port = isolation.DNS_PORT if scenario.isolated else 0
        transport, self._dns = await dnsserver.start(zone, port=port)
        self.dns_port = transport.get_extra_info("sockname")[1]
        self._closers.append(transport.close)

    def _change(self) -> None:
        """The scenario's change, once its first request was answered: later handshakes get
        a certificate from the inspection CA, or DNS answers an address nothing listens on."""
        if self.scenario.changes == "issuer" and self._tls is not None:
            self._tls.load_cert_chain(*self._inspected_leaf("changed"))
        elif self.scenario.changes == "address" and self._dns is not None:
            self._dns.zone = replace(self._dns.zone, ipv4=(MOVED_TO,), ipv6=())

    def _inspected_leaf(self, stem: str) -> tuple[Path, Path]:
        """The API's name re-signed by the inspection CA, as a TLS-inspecting proxy presents
        it: (certificate file, key file) in the workdir."""
        real_now = datetime.now(UTC)
        leaf = pki.make_leaf([HOST, "127.0.0.1", "::1"], inspection_ca(),
                             real_now - timedelta(days=1), real_now + timedelta(days=30))
        cert_file, key_file = self.workdir / f"{stem}.pem", self.workdir / f"{stem}.key"
        cert_file.write_bytes(leaf.cert_pem)
        key_file.write_bytes(leaf.key_pem)
        return cert_file, key_file

    async def _serve_issuer(self) -> str:
        """The sandbox CA's plain-HTTP publication point, on loopback: its URL."""
        der = sandbox_intermediate().cert.public_bytes(serialization.Encoding.DER)
        self.issuer_files = servers.IssuerFiles({AIA_PATH: der})
        server = await asyncio.start_server(self.issuer_files.handle, "127.0.0.1", 0)
        self._closers.append(server.close)
        self.issuer_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}{AIA_PATH}"
        return self.issuer_url

    async def _serve_proxy(self, kind: str) -> None:
        intercept = None
        if kind == "intercept":
            intercept = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            intercept.load_cert_chain(*self._inspected_leaf("inspect"))
        self.proxy = proxyserver.SandboxProxy(kind, self.port, intercept)
        server = await asyncio.start_server(self.proxy.handle, "127.0.0.1", 0)
        self.proxy_port = server.sockets[0].getsockname()[1]
        self._closers.append(server.close)

    async def _serve_pac(self, kind: str) -> None:
        """The scenario's PAC over plain HTTP on loopback, as corporate networks serve them."""
        proxy = f"PROXY 127.0.0.1:{self.proxy_port}"
        # 127.0.0.2 is loopback too, where nothing of the sandbox listens: refused at once.
        scripts = {
            "proxy": pacserver.script_returning(f"{proxy}; DIRECT"),
            "fallback": pacserver.script_returning(
                f"PROXY 127.0.0.2:{self.proxy_port}; {proxy}; DIRECT"),
            "broken": b"function FindProxyForURL(url, host) {\n"
                      b"  throw new Error('pac-broken: the script fails');\n}\n",
        }
        replies = {PAC_PATH: pacserver.PacReply(scripts[kind])} if kind in scripts else {}
        self.pac = pacserver.PacServer(replies)  # no path served: 404, as for "missing"
        server = await asyncio.start_server(self.pac.handle, "127.0.0.1", 0)
        self._closers.append(server.close)
        self.pac_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}{PAC_PATH}"
