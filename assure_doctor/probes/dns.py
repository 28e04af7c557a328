"""Stage 1: look the API host up, telling NXDOMAIN, SERVFAIL, NODATA and silence apart."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import socket
from dataclasses import dataclass, replace

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rcode
import dns.resolver

from assure_doctor import logs, sanitize
from assure_doctor.kinds import DNS_SEVERITY, Condition, DnsKind, Facts, Family, ProxyStep
from assure_doctor.model import Outcome, Status
from assure_doctor.probes.results import DnsFound, HostLookup
from assure_doctor.probes.stage import Context
from assure_doctor.target import ResolverAddress

log = logs.get("dns")
_RESOLV_CONF = "/etc/resolv.conf"  # what dnspython reads on POSIX

_SUMMARY = {
    DnsKind.NXDOMAIN: "{host} does not exist (NXDOMAIN) according to {resolver}",
    DnsKind.SERVFAIL: "{resolver} failed to resolve {host} (SERVFAIL)",
    DnsKind.REFUSED: "{resolver} refused to resolve {host} (REFUSED)",
    DnsKind.TIMEOUT: "no answer from {resolver} within {timeout:g} s",
    DnsKind.NODATA: "{host} exists but has no {families} address (NODATA)",
    DnsKind.SINKHOLE: "{resolver} answered {addresses}: a blocked-domain sinkhole",
    DnsKind.NO_RESOLVER: "no DNS server is configured on this machine",
    DnsKind.SYSTEM_FAILED: "the system could not resolve {host}: {error}",
    DnsKind.ERROR: "lookup of {host} failed: {error}",
}
_GRACE = 1.0  # seconds the other record type may lag once one has answered
_SINKHOLES = {ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("::")}
_RDTYPES = {Family.IPV4: "A", Family.IPV6: "AAAA"}
_SHOWN = 4  # addresses named in a summary; the evidence has them all


@dataclass(frozen=True)
class _Lookup:
    """One record type's result: addresses, or the kind of failure."""

    rdtype: str
    addresses: tuple[str, ...] = ()
    kind: DnsKind | None = None
    rcode: str | None = None
    error: str | None = None


async def run(ctx: Context) -> Outcome:
    proxy = ctx.route.proxy
    if proxy is None:
        return _logged(await _resolve(ctx, ctx.target.host, ctx.target.port))
    # Through a proxy only the proxy host must resolve here: on proxied networks only the
    # proxy resolves external names. The API host's own answer is recorded, not required.
    async with asyncio.TaskGroup() as group:
        api_task = group.create_task(_resolve(ctx, ctx.target.host, ctx.target.port))
        own = _logged(await _resolve(ctx, proxy.host, proxy.port))
        done, _ = await asyncio.wait({api_task}, timeout=_GRACE)  # not worth waiting long
        if not done:
            api_task.cancel()
    found = _found(own)
    if done:
        api = api_task.result()
        log.info("The API host's own lookup (not needed through a proxy): %s", api.summary)
        api_found = _found(api)
        api_host = HostLookup(ctx.target.host, api.status.value, api.summary,
                              api_found.addresses)
        if _is_address(proxy.host):  # then the resolver asked was the API name's
            found = replace(found, resolver=api_found.resolver or found.resolver)
    else:
        api_host = HostLookup(ctx.target.host, "unknown", "no answer within the grace period "
                              "(not needed: the proxy resolves it)")
    found = replace(found, proxy_host=proxy.host, api_host=api_host)
    summary = sanitize.text(f"proxy {own.summary}")
    if own.status is Status.FAIL:
        facts = Facts(**own.facts)
        facts.update(Facts(step=ProxyStep.DNS, proxy=proxy.masked_url))
        return Outcome(Status.FAIL, summary, found, Condition.PROXY_CONNECT_FAILED, facts)
    return Outcome(own.status, summary, found, own.condition, own.facts)


def _found(outcome: Outcome) -> DnsFound:
    return outcome.found if isinstance(outcome.found, DnsFound) else DnsFound()


def _logged(outcome: Outcome) -> Outcome:
    if outcome.status is Status.FAIL:
        log.warning("DNS lookup failed: %s", outcome.summary)
    return outcome


async def _resolve(ctx: Context, host: str, port: int) -> Outcome:
    """One name's lookup: the API host's, or the proxy's."""
    if _is_address(host):
        return Outcome(Status.PASS, f"{host} is an address: nothing to look up",
                       DnsFound((host.strip("[]"),), "none (address given)"))
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
        return _failure(ctx, host, DnsKind.NO_RESOLVER, DnsFound(resolver="system (none "
                                                                   "configured)"))

    rdtypes = _wanted(ctx)
    log.info("Resolving %s (%s) via %s", host, ", ".join(rdtypes), described)
    lookups = await _all(resolver, host, rdtypes)
    addresses = tuple(address for lookup in lookups for address in lookup.addresses)
    found = DnsFound(addresses, described, tuple(
        (lookup.rdtype, str(lookup.rcode or lookup.kind)) for lookup in lookups))
    if addresses:
        if all(ipaddress.ip_address(a) in _SINKHOLES for a in addresses):
            return _failure(ctx, host, DnsKind.SINKHOLE, found)
        log.info("%s resolved to %s", host, listed(addresses))
        return Outcome(Status.PASS, sanitize.text(
            f"{host} → {listed(addresses)} (via {described})"), found)

    kind = min((lookup.kind or DnsKind.ERROR for lookup in lookups), key=DNS_SEVERITY.index)
    failed = next(lookup for lookup in lookups if lookup.kind == kind)
    found = replace(found, rcode=failed.rcode, error=failed.error)
    if not ctx.options.resolvers and kind in (DnsKind.NXDOMAIN, DnsKind.NODATA):
        # The system resolver also reads the hosts file, as the integration's own client would.
        fallback = await _system_lookup(ctx, host, port,
                                        f"DNS said {kind}; found in the system's hosts")
        if fallback.status is Status.PASS:
            return fallback
    return _failure(ctx, host, kind, found)


def listed(addresses: tuple[str, ...] | list[str]) -> str:
    """The first few addresses and how many more: hundreds of records make one short line."""
    more = f" and {len(addresses) - _SHOWN} more" if len(addresses) > _SHOWN else ""
    return ", ".join(addresses[:_SHOWN]) + more


def _wanted(ctx: Context) -> tuple[str, ...]:
    family = ctx.options.family
    return tuple(_RDTYPES.values()) if family is None else (_RDTYPES[family],)


async def _all(resolver: dns.asyncresolver.Resolver, host: str, rdtypes: tuple[str, ...]
               ) -> list[_Lookup]:
    """The record types at once. Once one has addresses, the others get a short grace, not
    the whole timeout: a resolver that drops AAAA queries must not stall a working IPv4 path."""
    found: dict[str, _Lookup] = {}
    answered = asyncio.Event()

    async def one(rdtype: str) -> None:
        found[rdtype] = await _lookup(resolver, host, rdtype)
        if found[rdtype].addresses:
            answered.set()

    async def grace() -> None:
        await answered.wait()
        await asyncio.sleep(_GRACE)
        for task in lookups:
            task.cancel()

    async with asyncio.TaskGroup() as group:
        lookups = [group.create_task(one(rdtype)) for rdtype in rdtypes]
        timer = group.create_task(grace())
        await asyncio.wait(lookups)
        timer.cancel()
    return [found.get(rdtype) or _Lookup(rdtype, kind=DnsKind.TIMEOUT,
                                         error="no answer within the grace period")
            for rdtype in rdtypes]


def _failure(ctx: Context, host: str, kind: DnsKind, found: DnsFound) -> Outcome:
    """A failed lookup, with what was asked and answered (a sinkhole's addresses too)."""
    described = found.resolver or "system"
    families = (" or ".join(str(f) for f in Family) if ctx.options.family is None
                else str(ctx.options.family))
    facts = Facts(
        kind=kind,
        rcode=found.rcode or kind.upper(),
        resolver=described,
        addresses=listed(found.addresses) or "nothing",
        error=sanitize.text(found.error),
        timeout=ctx.options.timeout,
        host=host,
    )
    summary = sanitize.text(_SUMMARY[kind].format_map({**facts, "families": families}))
    return Outcome(Status.FAIL, summary, found, Condition.DNS_LOOKUP_FAILED, facts)


def _resolver(ctx: Context) -> tuple[dns.asyncresolver.Resolver, str]:
    """The resolver for these options, built once and reused by every check (the system's is
    built again when its configuration file changes: a VPN may rewrite it)."""
    return _built(ctx.options.resolvers, ctx.options.timeout,
                  None if ctx.options.resolvers else _system_stamp())


def _system_stamp() -> tuple[int, int] | None:
    try:
        info = os.stat(_RESOLV_CONF)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


@functools.lru_cache(maxsize=32)
def _built(resolvers: tuple[ResolverAddress, ...], timeout: float,
           _stamp: tuple[int, int] | None) -> tuple[dns.asyncresolver.Resolver, str]:
    if resolvers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(r.host, r.port) for r in resolvers]
        described = ", ".join(str(r) for r in resolvers)
    else:
        resolver = dns.asyncresolver.Resolver()  # NoResolverConfiguration is not cached
        servers = ", ".join(str(ns) for ns in resolver.nameservers) or "none"
        described = f"system ({servers})"
    resolver.lifetime = timeout
    resolver.timeout = max(timeout / 2, 0.5)  # one retransmission of a lost UDP query
    return resolver, described


async def _lookup(resolver: dns.asyncresolver.Resolver, host: str, rdtype: str) -> _Lookup:
    try:
        answer = await resolver.resolve(host, rdtype, search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return _Lookup(rdtype, kind=DnsKind.NXDOMAIN, rcode="NXDOMAIN")
    except dns.resolver.NoNameservers as exc:
        rcode = _rcode_of(exc)
        kind = {"SERVFAIL": DnsKind.SERVFAIL, "REFUSED": DnsKind.REFUSED}.get(rcode or "",
                                                                             DnsKind.ERROR)
        return _Lookup(rdtype, kind=kind, rcode=rcode, error=_short(exc))
    except dns.exception.Timeout as exc:
        return _Lookup(rdtype, kind=DnsKind.TIMEOUT, error=_short(exc))
    except dns.exception.DNSException as exc:
        return _Lookup(rdtype, kind=DnsKind.ERROR, error=_short(exc))
    addresses = tuple(rdata.to_text() for rdata in answer.rrset or ())
    if not addresses:
        return _Lookup(rdtype, kind=DnsKind.NODATA, rcode="NOERROR")
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
    family = {None: socket.AF_UNSPEC, Family.IPV4: socket.AF_INET,
              Family.IPV6: socket.AF_INET6}[ctx.options.family]
    described = "system (getaddrinfo)"
    try:
        async with asyncio.timeout(ctx.options.timeout):
            infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
    except TimeoutError:
        return _failure(ctx, host, DnsKind.TIMEOUT, DnsFound(resolver=described))
    except OSError as exc:  # socket.gaierror: the name is unknown to the system
        return _failure(ctx, host, DnsKind.SYSTEM_FAILED,
                        DnsFound(resolver=described, error=exc.strerror or str(exc)))
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    return Outcome(Status.PASS, sanitize.text(f"{host} → {listed(addresses)} ({how})"),
                   DnsFound(addresses, described, note=how))
