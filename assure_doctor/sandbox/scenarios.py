"""Every fault the sandbox can simulate, as data: one row per row of the guide's tables.

Each scenario also says what a correct diagnosis is, so the tests and the demo can compare.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DAY = 86400.0
DNS_BEHAVIOURS = ("answer", "nxdomain", "servfail", "refused", "nodata", "silent", "sinkhole",
                  "drop_aaaa")
SERVER_KINDS = ("https", "refuse", "blackhole", "stall", "reset", "reset_at_accept", "plain",
                "ipv6_blackhole")
CERT_KINDS = ("valid", "expired", "expiring", "not_yet_valid", "mismatch", "unknown_issuer",
              "self_signed", "server_time", "expired_intermediate", "missing_intermediate")
# The platform's gateway name a sandbox alias points at (example.net: never a real host).
PLATFORM_GATEWAY = "gw-sandbox.platform.example.net"
# An address of the benchmarking range (RFC 2544) that nothing in the sandbox's namespace
# routes: a stale hosts-file entry.
STALE_ADDRESS = "198.18.0.99"
# The sandbox's forward proxy: tunnels, wants Basic, wants NTLM/Negotiate only, refuses (403),
# cannot reach the API (502), or tunnels and terminates TLS with its own CA (inspection).
PROXY_KINDS = ("open", "basic", "ntlm", "deny", "upstream", "intercept")
# The sandbox's proxy auto-configuration script (PAC), served over HTTP: it names the sandbox's
# proxy, then DIRECT; names first a proxy that is not there, then the sandbox's; throws; or is
# not there (HTTP 404).
PAC_KINDS = ("proxy", "fallback", "broken", "missing")
# What changes once the sandbox has answered its first request (the path history's
# scenarios): the certificate's issuer (TLS inspection appears), or the DNS answer.
CHANGES = ("issuer", "address")


@dataclass(frozen=True)
class Reply:
    """What /v1/ping answers to a request carrying the key."""

    status: int = 200
    body: str = ('{"message": "Ping successful. Usage of this resource is throttled to prevent '
                 'misuse (do not use this as part of regular integration processes)."}')
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    fail_first: int = 0  # answer this many requests with `status`, then 200
    every: int = 0  # answer only every n-th request with `status`, the others 200 (flapping)

    def for_request(self, number: int) -> Reply:
        """The reply to the number-th keyed request (1-based)."""
        if self.fail_first and number > self.fail_first:
            return Reply()
        if self.every and number % self.every:
            return Reply()
        return self


@dataclass(frozen=True)
class Expect:
    """The diagnosis a correct doctor gives: the stage, its condition and most likely cause."""

    stage: str | None = None
    condition: str | None = None
    cause: str | None = None
    status: str = "fail"

    def met_by(self, document: Mapping[str, Any]) -> bool:
        """Whether a `check --json` document shows this diagnosis."""
        stages = {stage["name"]: stage for stage in document["stages"]}
        if self.stage is None:
            # The proxy stage is skipped where no proxy applies.
            return bool(document["ok"]) and all(
                s["status"] == "pass" or (name == "proxy" and s["status"] == "skip")
                for name, s in stages.items())
        found = stages[self.stage]
        causes = found["causes"]
        if self.status == "fail" and (document["diagnosis"] or {}).get("stage") != self.stage:
            return False
        return (found["status"] == self.status and found["condition"] == self.condition
                and bool(causes) and causes[0]["id"] == self.cause)

    def __str__(self) -> str:
        if self.stage is None:
            return "every stage passes"
        return f"{self.stage} {self.status}: {self.condition}, most likely {self.cause}"


@dataclass(frozen=True)
class Scenario:
    name: str
    guide_row: str
    dns: str = "answer"  # one of DNS_BEHAVIOURS
    server: str = "https"  # one of SERVER_KINDS
    cert: str = "valid"  # one of CERT_KINDS
    clock_offset: float = 0.0  # the server's clock minus the real time, seconds
    reply: Reply = field(default_factory=Reply)
    expect: Expect = field(default_factory=Expect)
    proxy: str | None = None  # one of PROXY_KINDS: the check goes through the sandbox's proxy
    # One of PAC_KINDS: the check follows the sandbox's PAC (--pac), which names its proxy.
    pac: str | None = None
    # One of CHANGES: a first check passes, then this changes; `expect` is the second's.
    changes: str | None = None
    # The API name is an alias: HOST CNAME cname[0], cname[0] CNAME cname[1], ...; `dns` is then
    # the last name's behaviour ("nxdomain": a dangling alias).
    cname: tuple[str, ...] = ()
    # The hosts file pins the API name to this address. The check then goes through the
    # operating system's resolver, so it runs in namespaces of its own (sandbox.isolation).
    hosts_pin: str | None = None

    @property
    def checks(self) -> int:
        """How many checks it takes to see the diagnosis: two when something changes."""
        return 1 if self.changes is None else 2

    @property
    def isolated(self) -> bool:
        """Whether the scenario needs its own /etc/hosts and resolv.conf (Linux namespaces)."""
        return self.hosts_pin is not None

    def __post_init__(self) -> None:
        for value, known in ((self.dns, DNS_BEHAVIOURS), (self.server, SERVER_KINDS),
                             (self.cert, CERT_KINDS), (self.proxy or "open", PROXY_KINDS),
                             (self.changes or "issuer", CHANGES),
                             (self.pac or "broken", PAC_KINDS)):
            if value not in known:
                raise ValueError(f"scenario {self.name}: {value!r} is not one of {known}")
        if self.pac in ("proxy", "fallback") and self.proxy is None:
            raise ValueError(f"scenario {self.name}: its PAC names the proxy: give one")


def _json(message: str) -> str:
    return json.dumps({"message": message})


_ALL = (
    Scenario("healthy", "200 OK: the API is reachable and the key works"),
    # The guide's connectivity table.
    Scenario("dns-nxdomain", "Failure to lookup API hostname: incorrect setup/config",
             dns="nxdomain", expect=Expect("dns", "dns_lookup_failed", "config")),
    Scenario("dns-servfail", "Failure to lookup API hostname: DNS service issue (SERVFAIL)",
             dns="servfail", expect=Expect("dns", "dns_lookup_failed", "dns_service")),
    Scenario("dns-silent", "Failure to lookup API hostname: DNS service issue (no answer)",
             dns="silent", expect=Expect("dns", "dns_lookup_failed", "dns_service")),
    Scenario("dns-refused", "Failure to lookup API hostname: DNS service issue (REFUSED)",
             dns="refused", expect=Expect("dns", "dns_lookup_failed", "dns_service")),
    Scenario("dns-nodata", "Failure to lookup API hostname: platform issue (no address)",
             dns="nodata", expect=Expect("dns", "dns_lookup_failed", "platform")),
    Scenario("dns-sinkhole", "Failure to lookup API hostname: DNS filter answers 0.0.0.0",
             dns="sinkhole", expect=Expect("dns", "dns_lookup_failed", "dns_service")),
    Scenario("dns-aaaa-dropped", "A resolver that drops AAAA queries: IPv4 still works",
             dns="drop_aaaa"),
    Scenario("dns-dangling-cname", "Failure to lookup API hostname: the platform's alias points "
             "at a name that does not exist", dns="nxdomain", cname=(PLATFORM_GATEWAY,),
             expect=Expect("dns", "dns_lookup_failed", "platform")),
    Scenario("dns-cname-chain", "The API name is a chain of aliases that resolves: healthy",
             cname=("edge.sandbox.sheassure.net", PLATFORM_GATEWAY)),
    Scenario("hosts-pin", "Failure to connect: the hosts file pins the API name to an old "
             "address, while DNS gives the right one", hosts_pin=STALE_ADDRESS,
             expect=Expect("tcp", "connect_failed", "config")),
    Scenario("tcp-refused", "Failure to connect to API hostname: nothing listens on the port",
             server="refuse", expect=Expect("tcp", "connect_failed", "config")),
    Scenario("tcp-timeout", "Connection timeout: a stealth firewall drops the SYNs",
             server="blackhole", expect=Expect("tcp", "connect_timeout", "firewall")),
    Scenario("ipv6-broken", "Connection timeout on IPv6 only: IPv4 works (half-broken IPv6)",
             server="ipv6_blackhole",
             expect=Expect("tcp", "connect_timeout", "routing", status="warn")),
    Scenario("tls-handshake-stall", "Connected, but the TLS handshake never completes (DPI)",
             server="stall", expect=Expect("tls", "tls_handshake_failed", "firewall")),
    Scenario("tls-handshake-reset", "Connected, but the TLS handshake is cut (reset)",
             server="reset", expect=Expect("tls", "tls_handshake_failed", "firewall")),
    Scenario("tcp-reset-after-accept", "Connected, then reset at once, before the TLS "
             "handshake (a middlebox, or a server that takes connections it will not serve)",
             server="reset_at_accept",
             expect=Expect("tls", "tls_handshake_failed", "firewall")),
    Scenario("tls-not-tls", "Connected, but the port speaks plain HTTP, not TLS",
             server="plain", expect=Expect("tls", "tls_handshake_failed", "config")),
    Scenario("tls-hostname-mismatch", "SSL certificate error: certificate for another name",
             cert="mismatch", expect=Expect("tls", "tls_certificate_error", "config")),
    Scenario("tls-expired", "SSL certificate error: expired, clocks agree (platform)",
             cert="expired", expect=Expect("tls", "tls_certificate_error", "platform")),
    Scenario("tls-expired-intermediate", "SSL certificate error: a valid certificate under an "
             "expired intermediate (the platform's chain, not this machine's clock)",
             cert="expired_intermediate",
             expect=Expect("tls", "tls_certificate_error", "platform")),
    Scenario("tls-missing-intermediate", "SSL certificate error: the server does not send its "
             "intermediate; browsers fetch it from the AIA URL, API clients fail",
             cert="missing_intermediate",
             expect=Expect("tls", "tls_certificate_error", "platform")),
    Scenario("tls-expiring-soon", "SSL certificate: expires in 5 days (a warning)",
             cert="expiring",
             expect=Expect("tls", "tls_certificate_error", "platform", status="warn")),
    Scenario("tls-not-yet-valid", "SSL certificate error: not yet valid, clocks agree",
             cert="not_yet_valid", expect=Expect("tls", "tls_certificate_error", "platform")),
    Scenario("tls-unknown-issuer", "SSL certificate error: a TLS-inspecting proxy's issuer",
             cert="unknown_issuer",
             expect=Expect("tls", "tls_certificate_error", "tls_interception")),
    Scenario("tls-self-signed", "SSL certificate error: a self-signed certificate",
             cert="self_signed", expect=Expect("tls", "tls_certificate_error", "tls_interception")),
    Scenario("clock-server-ahead", "SSL certificate error: our clock is days behind",
             cert="server_time", clock_offset=3 * DAY,
             expect=Expect("tls", "tls_certificate_error", "clock")),
    Scenario("clock-server-behind", "SSL certificate error: our clock is a year ahead",
             cert="server_time", clock_offset=-400 * DAY,
             expect=Expect("tls", "tls_certificate_error", "clock")),
    Scenario("clock-skew-small", "Clock skew: our clock is 90 s behind (a warning)",
             clock_offset=90.0, expect=Expect("clock", "clock_skew", "clock", status="warn")),
    # The guide's HTTP table.
    Scenario("http-301", "300-399: redirected to another path",
             reply=Reply(301, _json("Moved"), {"Location": "/v2/ping"}),
             expect=Expect("ping", "http_redirect", "config")),
    Scenario("http-302-portal", "300-399: redirected off-site by a proxy or captive portal",
             reply=Reply(302, "", {"Location": "https://login.proxy.example/portal"}),
             expect=Expect("ping", "http_redirect", "tls_interception")),
    Scenario("http-400", "400 Bad request",
             reply=Reply(400, _json("Bad request")),
             expect=Expect("ping", "http_bad_request", "config")),
    Scenario("http-401", "401 Authentication failed: the key is refused",
             reply=Reply(401, _json("Invalid API key")),
             expect=Expect("ping", "http_unauthorized", "invalid_key")),
    Scenario("http-401-wrong-stack", "401 Authentication failed: a key of another stack",
             reply=Reply(401, _json("Unauthorized: API key is not valid for this stack")),
             expect=Expect("ping", "http_unauthorized", "wrong_stack")),
    Scenario("http-403", "401/403: an API gateway refusing the key",
             reply=Reply(403, _json("Forbidden")),
             expect=Expect("ping", "http_unauthorized", "invalid_key")),
    Scenario("http-404", "404 Not found: wrong URL suffix",
             reply=Reply(404, _json("Not Found: no such method")),
             expect=Expect("ping", "http_not_found", "wrong_url")),
    Scenario("http-418", "Any other status: unexpected",
             reply=Reply(418, _json("I'm a teapot")),
             expect=Expect("ping", "http_unexpected", "config")),
    Scenario("http-429", "429 Too many requests, with Retry-After",
             reply=Reply(429, _json("Too Many Requests"), {"Retry-After": "1"}),
             expect=Expect("ping", "http_throttled", "rate_limited")),
    Scenario("http-500", "500-599 API platform problem",
             reply=Reply(500, _json("Internal server error")),
             expect=Expect("ping", "http_server_error", "platform")),
    Scenario("http-503-flaky", "500-599 once, then 200: the retry pattern recovers (a warning)",
             reply=Reply(503, _json("Service Unavailable"), fail_first=1),
             expect=Expect("ping", "http_server_error", "platform", status="warn")),
    Scenario("http-slow", "Connected, but no response in time",
             reply=Reply(delay=60.0), expect=Expect("ping", "http_timeout", "platform")),
    # Corporate proxies. The API's name does not resolve here: only the proxy reaches it.
    Scenario("proxy-open", "Through an open proxy, the only way out (the API's name does not "
             "resolve locally)", dns="nxdomain", proxy="open"),
    Scenario("proxy-auth-basic", "The proxy answers CONNECT with 407, Basic offered",
             proxy="basic", expect=Expect("proxy", "proxy_auth_required", "proxy")),
    Scenario("proxy-auth-ntlm", "The proxy answers CONNECT with 407, only NTLM / Negotiate",
             proxy="ntlm", expect=Expect("proxy", "proxy_auth_required", "proxy")),
    Scenario("proxy-denied", "The proxy's policy refuses CONNECT to the API (403)",
             proxy="deny", expect=Expect("proxy", "proxy_refused", "proxy")),
    Scenario("proxy-upstream-502", "The proxy cannot reach the API (502): beyond the proxy",
             proxy="upstream", expect=Expect("proxy", "proxy_upstream_failed", "platform")),
    Scenario("proxy-intercept", "A TLS-inspecting proxy re-signs the API's certificate",
             proxy="intercept",
             expect=Expect("tls", "tls_certificate_error", "tls_interception")),
    # Proxy auto-configuration: a PAC served over HTTP chooses the route (--pac; by default
    # the system's AutoConfigURL / WPAD on Windows and macOS).
    Scenario("pac-proxy", "A PAC names the proxy, the only way out, then DIRECT: the check "
             "follows it", dns="nxdomain", proxy="open", pac="proxy"),
    Scenario("pac-fallback", "A PAC's first proxy is not there; its second is: the check "
             "falls back in the PAC's order", dns="nxdomain", proxy="open", pac="fallback"),
    Scenario("pac-broken", "A PAC whose FindProxyForURL throws: no route (the PAC's own "
             "wording)", pac="broken", expect=Expect("proxy", "proxy_connect_failed", "proxy")),
    Scenario("pac-missing", "The PAC's URL answers 404: no route (the PAC's own wording)",
             pac="missing", expect=Expect("proxy", "proxy_connect_failed", "proxy")),
    # What changed since it last worked (two checks: the first passes, then it changes).
    Scenario("changed-issuer", "It worked; now TLS inspection re-signs the certificate (the "
             "issuer changed since the last good check)", changes="issuer",
             expect=Expect("tls", "tls_certificate_error", "tls_interception")),
    Scenario("changed-address", "It worked; now DNS answers another address, which refuses "
             "(the address changed since the last good check)", changes="address",
             expect=Expect("tcp", "connect_failed", "dns_service")),
)

SCENARIOS: Mapping[str, Scenario] = {scenario.name: scenario for scenario in _ALL}
DEMO_SET = ("healthy", "dns-nxdomain", "dns-dangling-cname", "hosts-pin", "tcp-timeout",
            "tls-unknown-issuer", "clock-server-ahead", "http-401", "http-429", "proxy-denied")
