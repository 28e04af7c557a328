"""Stage 2: connect to the addresses DNS returned, as Happy Eyeballs does (RFC 8305), and tell
refused, unreachable and silence apart, per address family."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field, replace

from assure_doctor import logs, sanitize
from assure_doctor.addresses import host_port
from assure_doctor.kinds import CONNECT_SEVERITY, Condition, ConnectKind, Facts, Family, ProxyStep
from assure_doctor.model import Outcome, Status
from assure_doctor.options import CheckOptions
from assure_doctor.probes import netclass
from assure_doctor.probes.connect import attempt
from assure_doctor.probes.results import Attempt, DnsFound, TcpFound
from assure_doctor.probes.stage import Context

log = logs.get("tcp")

PER_FAMILY = 4  # addresses connected to per family; the rest are reported, not tried
STAGGER = 0.25  # RFC 8305's connection attempt delay
# Once one address connected, the others get this long to answer before they count as
# timed out: a dead IPv6 path must not hold up a working IPv4 one for a whole --timeout.
LOSER_GRACE = 1.0
# A connect that times out is ambiguous: the host may be unreachable (routing) or one port
# filtered (stealth firewall). A second port answering either way, even with a refusal, tells
# them apart. It starts only once an attempt is slow, so healthy checks never send it.
SIDE_PROBE_DELAY = 1.0
SIDE_PORTS = (80, 443)  # the first that is not the API's port
_SHOWN = 3  # failures named in a summary; the evidence has them all


async def run(ctx: Context) -> Outcome:
    """Connect to the API host, or to the proxy when one applies."""
    return _through_proxy(ctx, await _connect(ctx))


async def _connect(ctx: Context) -> Outcome:
    port, timeout = ctx.dial_port, ctx.options.timeout
    resolved = list(ctx.found(DnsFound).addresses) or [ctx.dial_host]
    allowed = [a for a in resolved if _permitted(a, ctx.options)]
    if not allowed:
        wanted = ctx.options.family
        return Outcome(Status.FAIL, f"no {wanted} address to connect to: {_listed(resolved)}",
                       TcpFound(resolved[0], port), Condition.CONNECT_FAILED,
                       Facts(kind=ConnectKind.ERROR, error=f"no {wanted} address"))
    tried = happy_order(allowed)
    race = _Race(tried, port, timeout)
    try:
        async with asyncio.TaskGroup() as group:
            side = group.create_task(race.side_probe())
            attempts = await race.run()
            if not any(a.kind is ConnectKind.TIMEOUT for a in attempts):
                side.cancel()
    except BaseException:
        race.abort_all()  # cancelled: leave no connection open
        raise
    side_result = None if side.cancelled() else side.result()
    attempts.sort(key=lambda a: allowed.index(a.address))  # reported in the resolver's order
    return _outcome(ctx, attempts, race.winner, side_result, not_tried=len(allowed) - len(tried))


def _through_proxy(ctx: Context, outcome: Outcome) -> Outcome:
    """With a proxy, a failure to connect is the proxy's: proxy_connect_failed, step tcp."""
    proxy = ctx.route.proxy
    if proxy is None or outcome.condition is None:
        return outcome
    facts = Facts(**outcome.facts)
    facts.update(Facts(step=ProxyStep.TCP, proxy=proxy.masked_url))
    return replace(outcome, summary=f"proxy {proxy.masked_url}: {outcome.summary}",
                   condition=Condition.PROXY_CONNECT_FAILED, facts=facts)


def happy_order(addresses: list[str]) -> list[str]:
    """The addresses to try, at most PER_FAMILY of each, families interleaved (RFC 8305
    section 4). The preferred family is the resolver's first answer's (dns lists A first):
    the report then names the address most clients of this machine use."""
    by_family: dict[Family, list[str]] = {}
    for address in addresses:
        by_family.setdefault(Family.of(address), []).append(address)
    lists = [found[:PER_FAMILY] for found in by_family.values()]
    return [a for group in _zip_longest(lists) for a in group]


def _zip_longest(lists: list[list[str]]) -> list[list[str]]:
    longest = max((len(found) for found in lists), default=0)
    return [[found[i] for found in lists if i < len(found)] for i in range(longest)]


def _permitted(address: str, options: CheckOptions) -> bool:
    return options.family is None or Family.of(address) is options.family


@dataclass
class _Race:
    """Staggered connects: each starts STAGGER after the one before, or as soon as that one
    fails; the first to connect wins and bounds how long the others may still take."""

    addresses: list[str]
    port: int
    timeout: float
    started: list[asyncio.Event] = field(default_factory=list)
    scopes: dict[int, asyncio.Timeout] = field(default_factory=dict)  # running connects
    done: list[Attempt | None] = field(default_factory=list)
    won_at: float | None = None
    winner: Attempt | None = None
    pending: set[str] = field(default_factory=set)

    async def run(self) -> list[Attempt]:
        self.started = [asyncio.Event() for _ in self.addresses]
        self.done = [None] * len(self.addresses)
        async with asyncio.TaskGroup() as group:
            for index in range(len(self.addresses)):
                group.create_task(self._one(index))
        return [a for a in self.done if a is not None]

    async def _one(self, index: int) -> None:
        if index:
            with contextlib.suppress(TimeoutError):
                # Bounded by one timeout, so the stage ends within two whatever the count.
                async with asyncio.timeout(min(index * STAGGER, self.timeout)):
                    await self.started[index].wait()
        address = self.addresses[index]
        log.info("Connecting to %s port %d", address, self.port)
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        self.pending.add(address)
        try:
            async with asyncio.timeout(self.timeout) as scope:
                self.scopes[index] = scope
                if self.won_at is not None:
                    scope.reschedule(min(_when(scope), self.won_at + LOSER_GRACE))
                try:
                    stream = await asyncio.open_connection(address, self.port)
                finally:
                    del self.scopes[index]
        except (OSError, TimeoutError) as exc:
            ms = (time.perf_counter() - start) * 1000
            if netclass.connect_kind(exc) is ConnectKind.RESET:
                # A reset (or abort) is not a refusal: the handshake completed and the server
                # cut the connection before we looked; it is the tls stage's to report, with
                # its own fresh connection, however soon it came.
                log.info("%s port %d accepted the connection, then reset it", address,
                         self.port)
                self.done[index] = Attempt(address, self.port, ms,
                                           error=f"reset right after connecting: "
                                                 f"{netclass.describe(exc)}")
                if self.won_at is None:
                    self._win(loop.time(), self.done[index])
                return
            error = netclass.describe(exc)
            if isinstance(exc, TimeoutError) and self.winner is not None:
                error = (f"no answer in {ms:.0f} ms, while {self.winner.address} connected in "
                         f"{self.winner.ms:.0f} ms")
            self.done[index] = Attempt(address, self.port, ms, netclass.connect_kind(exc),
                                       error)
            self._next(index)
        else:
            self.done[index] = Attempt(address, self.port, (time.perf_counter() - start) * 1000,
                                       stream=stream)
            if self.won_at is None:
                self._win(loop.time(), self.done[index])
        finally:
            self.pending.discard(address)

    def _next(self, index: int) -> None:
        if index + 1 < len(self.started):
            self.started[index + 1].set()

    def _win(self, now: float, first: Attempt | None) -> None:
        self.won_at, self.winner = now, first
        for scope in self.scopes.values():
            scope.reschedule(min(_when(scope), now + LOSER_GRACE))
        for event in self.started:  # every address not yet tried is tried now
            event.set()

    async def side_probe(self) -> bool | None:
        """Whether a host that is slow on the API's port answers on another port at all."""
        delay = min(SIDE_PROBE_DELAY, self.timeout / 2)
        await asyncio.sleep(delay)
        slow = next(iter(sorted(self.pending)), None) or next(
            (a.address for a in self.done if a is not None and a.kind is ConnectKind.TIMEOUT),
            None)
        if slow is None:
            return None
        other = next(p for p in SIDE_PORTS if p != self.port)
        result = await attempt(slow, other, self.timeout - delay)
        log.info("Side probe %s port %d: %s", slow, other, result.error or "connected")
        if result.ok or result.kind in (ConnectKind.REFUSED, ConnectKind.RESET):
            return True
        return False if result.kind in (ConnectKind.TIMEOUT, ConnectKind.UNREACHABLE) else None

    def abort_all(self) -> None:
        for found in self.done:
            if found is not None and found.stream is not None:
                found.stream[1].transport.abort()


def _when(scope: asyncio.Timeout) -> float:
    when = scope.when()
    return float("inf") if when is None else when


def _outcome(ctx: Context, attempts: list[Attempt], winner: Attempt | None,
             side_result: bool | None, not_tried: int) -> Outcome:
    port = ctx.dial_port
    good = [a for a in attempts if a.ok]
    bad = [a for a in attempts if not a.ok]
    for a in attempts:
        log.info("%s port %d: %s in %.1f ms", a.address, port, a.error or "connected", a.ms)
    for spare in good:
        if spare is not winner and spare.stream:
            spare.stream[1].transport.abort()
    found = TcpFound(
        address=winner.address if winner else attempts[0].address, port=port,
        attempts=tuple(replace(a, stream=None) for a in attempts),
        not_tried=not_tried or None,  # all of them are in the dns stage's evidence
        other_port_answered=side_result,
        # the tls stage upgrades this very connection
        connection=ctx.hand_over(winner.stream) if winner and winner.stream else None)
    if winner is not None and not bad:
        cut = f", then {winner.error}" if winner.error else ""  # a reset: tls reports it
        return Outcome(Status.PASS, f"connected to {_where(winner)} in {winner.ms:.0f} ms{cut}",
                       found)

    worst = min(bad, key=lambda a: CONNECT_SEVERITY.index(_kind(a)))
    facts = Facts(kind=_kind(worst), default_port=port == 443, host_answers=side_result,
                  address=worst.address, error=worst.error)
    condition = netclass.connect_condition(_kind(worst))
    failures = _failures(bad)
    if winner is None:
        log.warning("TCP connect to %s port %d failed: %s", ctx.dial_host, port, failures)
        return Outcome(Status.FAIL, f"cannot connect: {failures}", found, condition, facts)
    failed_family = _failed_family(attempts)
    works = f"connected to {_where(winner)} in {winner.ms:.0f} ms"
    if failed_family is None:
        return Outcome(Status.WARN, f"{works}, but {failures}", found, condition, facts)
    worst_of_family = min((a for a in bad if Family.of(a.address) is failed_family),
                          key=lambda a: CONNECT_SEVERITY.index(_kind(a)))
    facts.update(Facts(failed_family=failed_family, working_family=failed_family.other,
                       address=worst_of_family.address, error=worst_of_family.error,
                       kind=_kind(worst_of_family)))
    found = replace(found, failed_family=failed_family)
    summary = (f"{failed_family} to {ctx.dial_host} {_verb(_kind(worst_of_family))} "
               f"({failures}); {failed_family.other} works: {works}")
    log.warning("TCP: %s", summary)
    return Outcome(Status.WARN, sanitize.text(summary), found,
                   netclass.connect_condition(_kind(worst_of_family)), facts)


def _failed_family(attempts: list[Attempt]) -> Family | None:
    """The family whose every address failed while the other family connected."""
    for family in Family:
        mine = [a for a in attempts if Family.of(a.address) is family]
        others = [a for a in attempts if Family.of(a.address) is not family]
        if mine and not any(a.ok for a in mine) and any(a.ok for a in others):
            return family
    return None


def _kind(a: Attempt) -> ConnectKind:
    return ConnectKind(a.kind or ConnectKind.ERROR)


_VERBS = {ConnectKind.TIMEOUT: "timed out", ConnectKind.REFUSED: "was refused",
          ConnectKind.UNREACHABLE: "is unreachable", ConnectKind.RESET: "was reset",
          ConnectKind.BLOCKED_LOCALLY: "is blocked on this machine"}


def _verb(kind: ConnectKind) -> str:
    return _VERBS.get(kind, "failed")


def _failures(bad: list[Attempt]) -> str:
    """The first few failures, bounded: hundreds of addresses make one short line."""
    shown = "; ".join(f"{_where(a)} {a.error}" for a in bad[:_SHOWN])
    more = f"; and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
    return sanitize.text(shown + more)


def _listed(addresses: list[str]) -> str:
    more = f" and {len(addresses) - _SHOWN} more" if len(addresses) > _SHOWN else ""
    return sanitize.text(", ".join(addresses[:_SHOWN]) + more)


def _where(a: Attempt) -> str:
    return host_port(a.address, a.port)
