"""Stage 1: look the API host up, telling NXDOMAIN, SERVFAIL, NODATA and silence apart."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rcode
import dns.resolver

from assure_doctor import logs
from assure_doctor.model import Outcome, Status
from assure_doctor.probes import Context

NAME = "dns"
log = logs.get(NAME)

# When A and AAAA fail differently, the most telling failure is reported.
_SEVERITY = ("nxdomain", "servfail", "refused", "timeout", "error", "nodata")
_SUMMARY = {
    "nxdomain": "{host} does not exist (NXDOMAIN) according to {resolver}",
    "servfail": "{resolver} failed to resolve {host} (SERVFAIL)",
    "refused": "{resolver} refused to resolve {host} (REFUSED)",
    "timeout": "no answer from {resolver} within {timeout:g} s",
    "nodata": "{host} exists but has no IPv4 or IPv6 address (NODATA)",
    "sinkhole": "{resolver} answered {addresses}: a blocked-domain sinkhole",
    "no_resolver": "no DNS server is configured on this machine",
    "error": "lookup of {host} failed: {error}",
}
_GRACE = 1.0  # seconds the other record type may lag once one has answered
_SINKHOLES = {ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("::")}


@dataclass(frozen=True)
class _Lookup:
    """One record type's result: addresses, or the kind of failure."""

    rdtype: str
    addresses: tuple[str, ...] = ()
    kind: str | None = None
    rcode: str | None = None
    error: str | None = None


async def run(ctx: Context) -> Outcome:
    proxy = ctx.route.proxy
    if proxy is None:
        return _logged(await _resolve(ctx, ctx.target.host, ctx.target.port))
    # Through a proxy only the proxy host must resolve here: on proxied networks only the
    # proxy resolves external names. The API host's own answer is recorded, not required.
    api_task = asyncio.create_task(_resolve(ctx, ctx.target.host, ctx.target.port))
    own = _logged(await _resolve(ctx, proxy.host, proxy.port))
    done, _ = await asyncio.wait({api_task}, timeout=_GRACE)  # not worth waiting long for
    evidence = {**own.evidence, "proxy_host": proxy.host}
    if done:
        api = api_task.result()
        log.info("The API host's own lookup (not needed through a proxy): %s", api.summary)
        api_host = {"host": ctx.target.host, "status": api.status.value,
                    "summary": api.summary, "addresses": api.evidence.get("addresses", [])}
        if _is_address(proxy.host):  # then the resolver asked was the API name's
            evidence["resolver"] = api.evidence.get("resolver", evidence.get("resolver"))
    else:
        api_task.cancel()
        api_host = {"host": ctx.target.host, "status": "unknown", "addresses": [],
                    "summary": "no answer within the grace period (not needed: the proxy "
                    "resolves it)"}
    evidence["api_host"] = api_host
    if own.status is Status.FAIL:
        facts = {**own.facts, "step": "dns", "proxy": proxy.masked_url}
        return Outcome(Status.FAIL, f"proxy {own.summary}", evidence, "proxy_connect_failed",
                       facts)
    return Outcome(own.status, f"proxy {own.summary}", evidence, own.condition, own.facts)


def _logged(outcome: Outcome) -> Outcome:
    if outcome.status is Status.FAIL:
        log.warning("DNS lookup failed: %s", outcome.summary)
    return outcome


async def _resolve(ctx: Context, host: str, port: int) -> Outcome:
    if _is_address(host):
        return Outcome(Status.PASS, f"{host} is an address: nothing to look up",
                       {"addresses": [host.strip("[]")], "resolver": "none (address given)"})
    if _is_localhost(host) and not ctx.options.resolvers:
        return await _system_lookup(ctx, host, port,
                                    "localhost names never go to DNS (RFC 6761)")

    try:
        resolver, described = _resolver(ctx)
    except dns.resolver.NoResolverConfiguration:
        fallback = await _system_lookup(ctx, host, port,
                                        "no DNS server configured; used the system's hosts")
        if fallback.status is Status.PASS:
            return fallback
        return _failure(ctx, host, "no_resolver", "system (none configured)", {})

    log.info("Resolving %s (A, AAAA) via %s", host, described)
    lookups = await _both(resolver, host)
    addresses = [address for lookup in lookups for address in lookup.addresses]
    evidence: dict[str, Any] = {
        "addresses": addresses,
        "resolver": described,
        "answers": {lookup.rdtype: lookup.rcode or lookup.kind for lookup in lookups},
    }
    if addresses:
        if all(ipaddress.ip_address(a) in _SINKHOLES for a in addresses):
            return _failure(ctx, host, "sinkhole", described, evidence)
        log.info("%s resolved to %s", host, ", ".join(addresses))
        return Outcome(Status.PASS, f"{host} → {', '.join(addresses)} (via {described})",
                       evidence)

    kind = min((lookup.kind or "error" for lookup in lookups), key=_SEVERITY.index)
    failed = next(lookup for lookup in lookups if lookup.kind == kind)
    evidence.update(rcode=failed.rcode, error=failed.error)
    if not ctx.options.resolvers and kind in ("nxdomain", "nodata"):
        # The system resolver also reads the hosts file, as the integration's own client would.
        fallback = await _system_lookup(ctx, host, port,
                                        f"DNS said {kind}; found in the system's hosts")
        if fallback.status is Status.PASS:
            return fallback
    return _failure(ctx, host, kind, described, evidence)


async def _both(resolver: dns.asyncresolver.Resolver, host: str) -> list[_Lookup]:
    """A and AAAA at once. Once one has addresses, the other gets a short grace, not the whole
    timeout: a resolver that drops AAAA queries must not stall a working IPv4 path."""
    tasks = {rdtype: asyncio.create_task(_lookup(resolver, host, rdtype))
             for rdtype in ("A", "AAAA")}
    pending = set(tasks.values())
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if pending and any(task.result().addresses for task in done):
            _, pending = await asyncio.wait(pending, timeout=_GRACE)
            for task in pending:
                task.cancel()
            break
    return [tasks[rdtype].result() if tasks[rdtype].done() and not tasks[rdtype].cancelled()
            else _Lookup(rdtype, kind="timeout", error="no answer within the grace period")
            for rdtype in ("A", "AAAA")]


def _failure(ctx: Context, host: str, kind: str, described: str, evidence: dict[str, Any]
             ) -> Outcome:
    evidence = {"addresses": [], "resolver": described, **evidence}
    facts = {
        "kind": kind,
        "rcode": evidence.get("rcode") or kind.upper(),
        "resolver": described,
        "addresses": ", ".join(evidence["addresses"]) or "nothing",
        "error": evidence.get("error"),
        "timeout": ctx.options.timeout,
        "host": host,
    }
    summary = _SUMMARY[kind].format_map(facts)
    return Outcome(Status.FAIL, summary, evidence, "dns_lookup_failed", facts)


def _resolver(ctx: Context) -> tuple[dns.asyncresolver.Resolver, str]:
    timeout = ctx.options.timeout
    if ctx.options.resolvers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(r.host, r.port) for r in ctx.options.resolvers
        ]
        described = ", ".join(str(r) for r in ctx.options.resolvers)
    else:
        resolver = dns.asyncresolver.Resolver()
        servers = ", ".join(str(ns) for ns in resolver.nameservers) or "none"
        described = f"system ({servers})"
    resolver.lifetime = timeout
    resolver.timeout = max(timeout / 2, 0.5)  # one retransmission of a lost UDP query
    return resolver, described


async def _lookup(resolver: dns.asyncresolver.Resolver, host: str, rdtype: str) -> _Lookup:
    try:
        answer = await resolver.resolve(host, rdtype, search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return _Lookup(rdtype, kind="nxdomain", rcode="NXDOMAIN")
    except dns.resolver.NoNameservers as exc:
        rcode = _rcode_of(exc)
        kind = {"SERVFAIL": "servfail", "REFUSED": "refused"}.get(rcode or "", "error")
        return _Lookup(rdtype, kind=kind, rcode=rcode, error=_short(exc))
    except dns.exception.Timeout as exc:
        return _Lookup(rdtype, kind="timeout", error=_short(exc))
    except dns.exception.DNSException as exc:
        return _Lookup(rdtype, kind="error", error=_short(exc))
    addresses = tuple(rdata.to_text() for rdata in answer.rrset or ())
    if not addresses:
        return _Lookup(rdtype, kind="nodata", rcode="NOERROR")
    return _Lookup(rdtype, addresses=addresses, rcode="NOERROR")


def _rcode_of(exc: dns.resolver.NoNameservers) -> str | None:
    """The rcode a server answered with, from dnspython's list of per-server errors."""
    for error in exc.kwargs.get("errors", ()):
        response = error[-1] if isinstance(error, tuple) else None
        if response is not None and hasattr(response, "rcode"):
            return dns.rcode.to_text(response.rcode())
    return None


def _short(exc: BaseException) -> str:
    return str(exc).split(". ")[0][:200]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _is_localhost(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


async def _system_lookup(ctx: Context, host: str, port: int, how: str) -> Outcome:
    """getaddrinfo: the hosts file and the system's own resolution, as most clients do it."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM),
            ctx.options.timeout,
        )
    except (OSError, TimeoutError) as exc:
        return Outcome(Status.FAIL, f"system lookup failed: {exc}", {"addresses": []})
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    return Outcome(Status.PASS, f"{host} → {', '.join(addresses)} ({how})",
                   {"addresses": addresses, "resolver": "system (getaddrinfo)", "note": how})
