"""The route a proxy auto-configuration script (PAC) chooses for the API, before the stages.

The engine runs `Chooser.run` under `deadline`. The first PAC the proxy settings name that is
there (`pac.decide`) is evaluated for the API's URL, and its routes are taken in its order, as
the integration's HTTP stack takes them: an entry assure-doctor cannot take (a SOCKS or HTTPS
proxy, garbage) is passed over with its reason; DIRECT is taken as is, and so is the last proxy
of the list (the stages then test it and say what is wrong with it); any other proxy is taken
when a TCP connection to it opens within the timeout, else passed over with the reason.

The stages see the chosen route in `ctx.route` and how it was chosen in `ctx.pac`. A PAC that
cannot be fetched or evaluated, or names no route assure-doctor can take, is the proxy stage's
failure (`ctx.route_failure`): `proxy_connect_failed`, its kind a `PacKind`.
"""

from __future__ import annotations

import asyncio
import socket

from assure_doctor import logs, sanitize
from assure_doctor.kinds import Condition, Facts, PacKind, ProxyStep
from assure_doctor.model import Outcome, Status
from assure_doctor.options import CheckOptions
from assure_doctor.pac.errors import (
    PacError,
    PacEvalTimeout,
    PacFetchError,
    PacFetchTimeout,
)
from assure_doctor.pac.location import PacLocation, PacSource
from assure_doctor.pac.rules import PacDecision, PacRoute
from assure_doctor.probes import lookup, netclass
from assure_doctor.probes.connect import connect
from assure_doctor.probes.results import PacChoice, ProxyFound, SkippedRoute
from assure_doctor.probes.stage import Context
from assure_doctor.proxyconfig import Route, Source

log = logs.get("pac")
MAX_PROBED = 3  # proxies connected to before the next one is taken as it is
MAX_ADDRESSES = 4  # of one proxy's name, tried in turn


def deadline(options: CheckOptions) -> float:
    """The longest the choice may take: each PAC location fetched, the evaluator started and
    the script run, then MAX_PROBED proxies connected to, each within --timeout."""
    from assure_doctor.pac.evaluate import STARTUP_LIMIT

    fetches = max(len(options.proxy.pac), 1)
    return STARTUP_LIMIT + (fetches + 1 + MAX_PROBED) * options.timeout


class Chooser:
    """One check's choice; `run` sets `ctx.route` and `ctx.pac` (or `ctx.route_failure`)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.decision: PacDecision | None = None
        self.skipped: list[SkippedRoute] = []
        self.trying: PacRoute | None = None  # the proxy being connected to

    async def run(self) -> None:
        from assure_doctor.pac.decide import decide

        ctx, locations = self.ctx, self.ctx.options.proxy.pac
        try:
            decision = await decide(locations, ctx.target.url, timeout=ctx.options.timeout,
                                    ssl_context=ctx.options.trust.local)
        except PacError as exc:
            self._failed(exc)
            return
        if decision is None:  # only WPAD candidates, none there: the settings' own route
            tried = f"no PAC at the {len(locations)} WPAD location(s) tried"
            log.info("%s; %s", tried, ctx.route.reason)
            ctx.route = Route(ctx.route.proxy, ctx.route.source, f"{tried}; {ctx.route.reason}")
            return
        self.decision = decision
        usable = decision.usable
        if not usable:
            self._no_route(decision)
            return
        probed = 0
        for route in decision.routes:
            if not route.usable:
                self._pass_over(route, route.problem or "not a route")
                continue
            if route.direct or route is usable[-1] or probed == MAX_PROBED:
                self._take(route)
                return
            probed += 1
            self.trying = route
            reason = await self._unreachable(route)
            if reason is None:
                self._take(route)
                return
            self._pass_over(route, reason)

    def overran(self, limit: float) -> None:
        """The engine's deadline passed: a proxy being tried is taken as it is (its stages
        test it); without a decision, the PAC gave no route in time."""
        if self.trying is not None:
            self._take(self.trying)
            return
        locations = self.ctx.options.proxy.pac
        first = locations[0]
        self._fail(PacKind.FETCH_TIMEOUT, f"no route from the PAC within {limit:g} s",
                   first, PacChoice(first.source.value, _shown(locations), None))

    # --- the outcomes ------------------------------------------------------------------------
    def _take(self, route: PacRoute) -> None:
        ctx, decision = self.ctx, self.decision
        assert decision is not None
        source = PacSource(decision.source)
        said = f"the PAC from {source.describe} chose {route.text}"
        if route.direct:
            ctx.route = Route(None, Source.PAC, said)
        else:
            ctx.route = Route(route.to_proxy(Source.PAC), Source.PAC, said)
        ctx.pac = PacChoice(source.value, decision.url, decision.rule, route.text,
                            tuple(self.skipped), fetch_ms=decision.fetch_ms,
                            eval_ms=decision.ms)
        log.info("Route: %s (rule %s)", said, decision.rule)

    def _pass_over(self, route: PacRoute, reason: str) -> None:
        log.info("Passing over %s of the PAC's answer: %s", route.text, reason)
        self.skipped.append(SkippedRoute(route.text, sanitize.text(reason, 200)))

    def _failed(self, exc: PacError) -> None:
        locations = self.ctx.options.proxy.pac
        location = next((found for found in locations if found.source.value == exc.source),
                        locations[0])
        kind = (PacKind.FETCH_TIMEOUT if isinstance(exc, PacFetchTimeout)
                else PacKind.FETCH if isinstance(exc, PacFetchError)
                else PacKind.EVAL_TIMEOUT if isinstance(exc, PacEvalTimeout)
                else PacKind.EVAL)
        waiting = exc.waiting if isinstance(exc, PacEvalTimeout) else None
        choice = PacChoice(location.source.value, exc.url or location.shown, None,
                           error=exc.reason)
        self._fail(kind, exc.reason, location, choice, waiting=waiting,
                   summary=exc.message)

    def _no_route(self, decision: PacDecision) -> None:
        for route in decision.routes:
            self._pass_over(route, route.problem or "not a route")
        what = "; ".join(f"{s.route}: {s.reason}" for s in self.skipped)
        error = sanitize.text(f"no route assure-doctor can take ({what})", 300)
        choice = PacChoice(decision.source.value, decision.url, decision.rule,
                           skipped=tuple(self.skipped), error=error,
                           fetch_ms=decision.fetch_ms, eval_ms=decision.ms)
        location = next((found for found in self.ctx.options.proxy.pac
                         if found.source is decision.source), self.ctx.options.proxy.pac[0])
        self._fail(PacKind.NO_ROUTE, error, location, choice, rule=decision.rule)

    def _fail(self, kind: PacKind, error: str, location: PacLocation, choice: PacChoice, *,
              rule: str | None = None, waiting: str | None = None,
              summary: str | None = None) -> None:
        ctx = self.ctx
        ctx.pac = choice
        facts = Facts(step=ProxyStep.PAC, kind=kind, error=error,
                      pac_source=location.source.describe, pac_url=choice.url or location.shown)
        if rule is not None:
            facts["pac_rule"] = rule
        if waiting is not None:
            facts.update(Facts(pac_dns_wait=True, pac_waiting=waiting))
        said = summary or f"{location.named}: {error}"
        log.warning("No route from the PAC: %s", said)
        ctx.route_failure = Outcome(
            Status.FAIL, f"no route from the proxy auto-configuration script: {said}",
            ProxyFound(source=Source.PAC, pac=choice),
            Condition.PROXY_CONNECT_FAILED, facts)

    # --- I/O ---------------------------------------------------------------------------------
    async def _unreachable(self, route: PacRoute) -> str | None:
        """None when a TCP connection to the proxy opens within the timeout, else why not."""
        assert route.host is not None and route.port is not None  # a usable PROXY entry
        options = self.ctx.options
        error: BaseException | None = None
        try:
            async with asyncio.timeout(options.timeout):
                addresses = await lookup.addresses(options, route.host)
                for address in addresses[:MAX_ADDRESSES]:
                    try:
                        stream = await connect(address, route.port, options.timeout)
                    except (OSError, TimeoutError) as exc:
                        error = exc
                        continue
                    stream[1].transport.abort()
                    log.info("%s answers at %s", route.text, address)
                    return None
        except TimeoutError:
            return f"no connection within {options.timeout:g} s"
        except socket.gaierror as exc:
            return f"its name does not resolve ({exc.strerror or 'no address'})"
        except OSError as exc:
            return netclass.describe(exc)
        return netclass.describe(error) if error is not None else "no address to connect to"


def _shown(locations: tuple[PacLocation, ...]) -> str:
    return sanitize.text(", ".join(location.shown for location in locations), 300)
