"""Stage 1: look the API host up as the integration does, and tell why a lookup failed.

Without --resolver the operating system's resolver decides (getaddrinfo: the hosts file,
nsswitch, search domains; on Windows the DNS client), in its order, as it does for the
integration's own client. dnspython asks DNS at the same time, for the detail: the rcode
(NXDOMAIN, SERVFAIL, NODATA and silence apart), the CNAME chain, the servers asked. With
--resolver only that server is asked, and nothing falls back to the system.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
from dataclasses import dataclass, field, replace

import dns.asyncresolver
import dns.exception
import dns.message
import dns.nameserver
import dns.rcode
import dns.resolver

from assure_doctor import logs, sanitize
from assure_doctor.addresses import is_address
from assure_doctor.kinds import (
    DNS_SEVERITY,
    Condition,
    DnsKind,
    Facts,
    Family,
    OsFailure,
    PinSource,
    ProxyStep,
)
from assure_doctor.model import Outcome, Status
from assure_doctor.probes import cname, oslookup
from assure_doctor.probes.results import CnameLink, DnsFound, HostLookup, OsSource
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
    DnsKind.SYSTEM_FAILED: "the system's resolver could not resolve {host}: {error}",
    DnsKind.ERROR: "lookup of {host} failed: {error}",
}
# The chain broke past the name typed: the alias's target is what is missing.
_BROKEN_ALIAS = {
    DnsKind.NXDOMAIN: "{host} is an alias of {broken_link}, which does not exist (NXDOMAIN) "
                      "according to {resolver}",
    DnsKind.NODATA: "{host} is an alias of {broken_link}, which has no {families} address "
                    "(NODATA) according to {resolver}",
}
# What DNS said, beside a system answer it disagrees with.
_DNS_SAID = {
    DnsKind.NXDOMAIN: "that it does not exist (NXDOMAIN)",
    DnsKind.NODATA: "no address (NODATA)",
    DnsKind.SERVFAIL: "SERVFAIL",
    DnsKind.REFUSED: "REFUSED",
    DnsKind.TIMEOUT: "nothing in time",
}
_NO_DNS = "system (no DNS server configured)"
_GRACE = 1.0  # seconds the other record type may lag once one has answered
_SINKHOLES = {ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("::")}
_RDTYPES = {Family.IPV4: "A", Family.IPV6: "AAAA"}
_SHOWN = 4  # addresses named in a summary; the evidence has them all


@dataclass(frozen=True)
class Lookup:
    """One record type's result: addresses, or the kind of failure; and its CNAME chain."""

    rdtype: str
    addresses: tuple[str, ...] = ()
    kind: DnsKind | None = None
    rcode: str | None = None
    error: str | None = None
    chain: tuple[CnameLink, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Detail:
    """What DNS itself answered, per record type."""

    lookups: tuple[Lookup, ...]

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(address for lookup in self.lookups for address in lookup.addresses)

    @property
    def answers(self) -> tuple[tuple[str, str], ...]:
        return tuple((lookup.rdtype, str(lookup.rcode or lookup.kind))
                     for lookup in self.lookups)

    @property
    def failed(self) -> Lookup:
        """The most telling failure, when no record type has addresses."""
        kind = min((lookup.kind or DnsKind.ERROR for lookup in self.lookups),
                   key=DNS_SEVERITY.index)
        return next(lookup for lookup in self.lookups if (lookup.kind or DnsKind.ERROR) == kind)

    @property
    def chain(self) -> tuple[CnameLink, ...]:
        """The chain of the lookup that decided (the first with addresses, else the failure),
        as evidence: nothing for a name that is no alias and resolved."""
        answered = next((lookup for lookup in self.lookups if lookup.addresses), None)
        return cname.recorded((answered or self.failed).chain)


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
        if is_address(proxy.host):  # then the resolver asked was the API name's
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
    if is_address(host):
        return Outcome(Status.PASS, f"{host} is an address: nothing to look up",
                       DnsFound((host,), "none (address given)"))
    if ctx.options.resolvers:
        return await _asking_only_the_resolver(ctx, host)
    return await _as_the_system(ctx, host, port)


async def _asking_only_the_resolver(ctx: Context, host: str) -> Outcome:
    """--resolver: that server decides; the system's resolver is not asked."""
    resolver, described = _resolver(ctx)
    rdtypes = _wanted(ctx)
    log.info("Resolving %s (%s) via %s only", host, ", ".join(rdtypes), described)
    detail = Detail(tuple(await _all(resolver, host, rdtypes)))
    addresses = detail.addresses
    found = DnsFound(addresses, described, detail.answers, chain=detail.chain,
                     os_consulted=False)
    if addresses:
        if _all_sinkholes(addresses):
            return _failure(ctx, host, DnsKind.SINKHOLE, found)
        log.info("%s resolved to %s", host, listed(addresses))
        return Outcome(Status.PASS, sanitize.text(
            f"{host} → {listed(addresses)} (via {described} only)"), found)
    failed = detail.failed
    found = replace(found, rcode=failed.rcode, error=failed.error)
    return _failure(ctx, host, failed.kind or DnsKind.ERROR, found)


async def _as_the_system(ctx: Context, host: str, port: int) -> Outcome:
    """getaddrinfo decides; DNS, asked at the same time, explains."""
    resolver, described, note = _system_dns(ctx, host)
    rdtypes = _wanted(ctx)
    log.info("Resolving %s through the system's resolver (getaddrinfo), and %s via %s", host,
             ", ".join(rdtypes), described)
    dns_task: asyncio.Task[list[Lookup]] | None = None
    async with asyncio.TaskGroup() as group:
        if resolver is not None:
            dns_task = group.create_task(_all(resolver, host, rdtypes))
        answer = await oslookup.getaddrinfo(host, port, ctx.options.family, ctx.options.timeout)
        if dns_task is not None and answer.addresses:
            # The system decided: DNS's detail gets a short grace, not a whole timeout.
            await asyncio.wait({dns_task}, timeout=_GRACE)
            if not dns_task.done():
                dns_task.cancel()
                note = note or "DNS gave no detail within the grace period"
    detail = (None if dns_task is None or dns_task.cancelled()
              else Detail(tuple(dns_task.result())))
    found = DnsFound(answer.addresses, described, None if detail is None else detail.answers,
                     note=note, os_consulted=True, os_addresses=answer.addresses,
                     chain=() if detail is None else detail.chain,
                     dns_addresses=None if detail is None else detail.addresses)
    if not answer.addresses:
        return system_failed(ctx, host, answer, found, detail)

    hosts = oslookup.read_hosts(host, ctx.options.family)
    origin, pins = oslookup.source(answer.addresses, hosts, found.dns_addresses)
    found = replace(found, os_source=origin, hosts_pins=pins,
                    dns_agrees=None if detail is None else oslookup.same_set(
                        answer.addresses, detail.addresses))
    if origin is OsSource.HOSTS:
        found = replace(found, hosts_file=hosts.path, hosts_line=pins[0].line)
    elif hosts.error is not None:
        found = replace(found, note=hosts.error)
    if _all_sinkholes(answer.addresses):
        return _failure(ctx, host, DnsKind.SINKHOLE, found)
    log.info("%s resolved to %s (%s)", host, listed(answer.addresses), origin)
    where = {OsSource.HOSTS: f"from {found.hosts_file} line {found.hosts_line}",
             OsSource.DNS: f"via {described}",
             OsSource.UNKNOWN: "from the system's resolver"}[origin]
    summary = f"{host} → {listed(answer.addresses)} ({where}{_disagreement(found, detail)})"
    if found.dns_agrees is False:
        log.warning("The system's resolver and DNS disagree on %s: %s", host, summary)
    return Outcome(Status.PASS, sanitize.text(summary), found)


def _disagreement(found: DnsFound, detail: Detail | None) -> str:
    """"; DNS answers … instead" where DNS itself says otherwise than the system."""
    if detail is None or found.dns_agrees is not False:
        return ""
    if detail.addresses:
        return f"; DNS answers {listed(detail.addresses)} instead"
    said = _DNS_SAID.get(detail.failed.kind or DnsKind.ERROR, "an error")
    return f"; DNS answers {said}"


def system_failed(ctx: Context, host: str, answer: oslookup.OsAnswer, found: DnsFound,
                   detail: Detail | None) -> Outcome:
    """getaddrinfo found nothing: the kind is DNS's own answer where that is telling, else the
    system's failure (EAI_AGAIN and the like point at the DNS service)."""
    failure = answer.failure or OsFailure.OTHER
    found = replace(found, os_error=answer.error)
    definitive = (DnsKind.NXDOMAIN, DnsKind.NODATA, DnsKind.SERVFAIL, DnsKind.REFUSED,
                  DnsKind.TIMEOUT)
    if detail is not None and not detail.addresses and detail.failed.kind in definitive:
        failed = detail.failed
        kind = failed.kind or DnsKind.ERROR
        found = replace(found, rcode=failed.rcode, error=failed.error)
    else:  # DNS has addresses the system does not give, or nothing telling to say
        kind = DnsKind.NO_RESOLVER if found.resolver == _NO_DNS else DnsKind.SYSTEM_FAILED
        found = replace(found, error=answer.error)
    return _failure(ctx, host, kind, found,
                    Facts(os_failure=failure, os_error=answer.error or "unknown"))


def listed(addresses: tuple[str, ...] | list[str]) -> str:
    """The first few addresses and how many more: hundreds of records make one short line."""
    more = f" and {len(addresses) - _SHOWN} more" if len(addresses) > _SHOWN else ""
    return ", ".join(addresses[:_SHOWN]) + more


def _wanted(ctx: Context) -> tuple[str, ...]:
    family = ctx.options.family
    return tuple(_RDTYPES.values()) if family is None else (_RDTYPES[family],)


def _all_sinkholes(addresses: tuple[str, ...]) -> bool:
    return all(ipaddress.ip_address(oslookup.normal(a).split("%")[0]) in _SINKHOLES
               for a in addresses)


async def _all(resolver: dns.asyncresolver.Resolver, host: str, rdtypes: tuple[str, ...]
               ) -> list[Lookup]:
    """The record types at once. Once one has addresses, the others get a short grace, not
    the whole timeout: a resolver that drops AAAA queries must not stall a working IPv4 path."""
    found: dict[str, Lookup] = {}
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
    return [found.get(rdtype) or Lookup(rdtype, kind=DnsKind.TIMEOUT,
                                         error="no answer within the grace period",
                                         chain=cname.links(host, None, DnsKind.TIMEOUT))
            for rdtype in rdtypes]


def _failure(ctx: Context, host: str, kind: DnsKind, found: DnsFound,
             extra: Facts | None = None) -> Outcome:
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
    if extra is not None:
        facts.update(extra)
    if found.dns_addresses:
        facts.update(Facts(dns_addresses=listed(found.dns_addresses)))
    pin = found.pin(found.addresses[0]) if found.addresses else None
    if pin is not None and found.hosts_file is not None:
        facts.update(Facts(pinned_by=PinSource.HOSTS_FILE, hosts_file=found.hosts_file,
                           hosts_line=pin.line, pinned_address=pin.address))
    broken = cname.broken_alias(found.chain) if kind in _BROKEN_ALIAS else None
    template = _SUMMARY[kind]
    if broken is not None:
        facts.update(Facts(alias_broken=True, broken_link=broken.name,
                           chain_text=cname.text(found.chain)))
        template = _BROKEN_ALIAS[kind]
    elif kind is DnsKind.SINKHOLE and pin is not None:
        template = "{hosts_file} line {hosts_line} maps {host} to {addresses}: blocked"
    if kind is DnsKind.SYSTEM_FAILED and found.dns_addresses:
        template += "; DNS answers {dns_addresses}"
    summary = sanitize.text(template.format_map({**facts, "families": families}))
    return Outcome(Status.FAIL, summary, found, Condition.DNS_LOOKUP_FAILED, facts)


def _system_dns(ctx: Context, host: str
                ) -> tuple[dns.asyncresolver.Resolver | None, str, str | None]:
    """The resolver dnspython asks beside the system's lookup (None: none to ask), its
    description, and a note on why none is asked."""
    if _is_localhost(host):
        return None, "system (getaddrinfo)", "localhost names never go to DNS (RFC 6761)"
    try:
        resolver, described = _resolver(ctx)
    except dns.resolver.NoResolverConfiguration:
        return None, _NO_DNS, None
    return resolver, described, None


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


async def _lookup(resolver: dns.asyncresolver.Resolver, host: str, rdtype: str) -> Lookup:
    try:
        answer = await resolver.resolve(host, rdtype, search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN as exc:
        return Lookup(rdtype, kind=DnsKind.NXDOMAIN, rcode="NXDOMAIN",
                       chain=cname.links(host, _nxdomain_response(exc), DnsKind.NXDOMAIN))
    except dns.resolver.NoNameservers as exc:
        rcode = _rcode_of(exc)
        kind = {"SERVFAIL": DnsKind.SERVFAIL, "REFUSED": DnsKind.REFUSED}.get(rcode or "",
                                                                             DnsKind.ERROR)
        return Lookup(rdtype, kind=kind, rcode=rcode, error=_short(exc),
                       chain=cname.links(host, None, kind))
    except dns.exception.Timeout as exc:
        return Lookup(rdtype, kind=DnsKind.TIMEOUT, error=_short(exc),
                       chain=cname.links(host, None, DnsKind.TIMEOUT))
    except dns.exception.DNSException as exc:
        return Lookup(rdtype, kind=DnsKind.ERROR, error=_short(exc),
                       chain=cname.links(host, None, DnsKind.ERROR))
    addresses = tuple(rdata.to_text() for rdata in answer.rrset or ())
    if not addresses:
        return Lookup(rdtype, kind=DnsKind.NODATA, rcode="NOERROR",
                       chain=cname.links(host, answer.response, DnsKind.NODATA))
    return Lookup(rdtype, addresses=addresses, rcode="NOERROR",
                   chain=cname.links(host, answer.response, cname.OK))


def _nxdomain_response(exc: dns.resolver.NXDOMAIN) -> dns.message.Message | None:
    """The answer that said NXDOMAIN: its CNAMEs show where the chain broke."""
    responses = exc.kwargs.get("responses") or {}
    return next((r for r in responses.values() if isinstance(r, dns.message.Message)), None)


def _rcode_of(exc: dns.resolver.NoNameservers) -> str | None:
    """The rcode a server answered with, from dnspython's list of per-server errors."""
    for error in exc.kwargs.get("errors", ()):
        response = error[-1] if isinstance(error, tuple) else None
        if response is not None and hasattr(response, "rcode"):
            return dns.rcode.to_text(response.rcode())
    return None


def _short(exc: BaseException) -> str:
    return str(exc).split(". ")[0][:200]


def _is_localhost(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")
