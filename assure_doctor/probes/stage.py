"""What every stage shares: the `Probe` shape each one fills in, and the `Context` it runs in.
The one list of stages is `probes.registry.PROBES`.

A probe's `run` reads what earlier stages found by type (`ctx.found(TcpFound).address`), does
its own I/O, and reports an `Outcome` carrying what it found; it never ranks causes, never
skips itself and needs no deadline of its own: the engine decides from `needs` whether it
runs, and bounds it in time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from assure_doctor.apikey import ApiKey
from assure_doctor.kinds import SERVER_ANSWERED, Condition, Facts, Kind
from assure_doctor.model import F, Found, Outcome, Status
from assure_doctor.options import CheckOptions
from assure_doctor.probes.results import DnsFound, Handover, PacChoice, Stream, TcpFound
from assure_doctor.proxyconfig import Route, Source
from assure_doctor.target import Target


@dataclass
class Context:
    """One check's inputs and what its stages have found so far."""

    target: Target
    options: CheckOptions
    key: ApiKey | None
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    # Direct, or through a proxy: then dns and tcp are about the proxy host.
    route: Route = field(init=False)
    # Live connections stages left for later ones; the engine closes what nobody took.
    handovers: list[Handover] = field(default_factory=list)
    # When the proxy settings name a PAC, the engine asks it before the stages: how it chose
    # `route` (or why it could not), and then the proxy stage's failure, which it reports.
    pac: PacChoice | None = None
    route_failure: Outcome | None = None

    def __post_init__(self) -> None:
        self.route = self.options.proxy.route(self.target.host, self.target.port)

    def route_for(self, host: str, port: int) -> Route:
        """How another host is reached (an AIA URL's): the route a PAC chose for the API,
        when one did (it is not asked again for each URL); else the proxy settings'."""
        if self.pac is not None:
            return self.route
        return self.options.proxy.route(host, port)

    @property
    def proxy_source(self) -> str:
        """Where the route came from, as advice says it: `--proxy`, a variable's name,
        `system`, or the PAC and the setting that named it."""
        if self.pac is not None and self.route.source == Source.PAC:
            from assure_doctor.pac.location import PacSource

            return f"the PAC named by {PacSource(self.pac.source).describe}"
        return self.route.source

    @property
    def dial_host(self) -> str:
        """The host the dns and tcp stages look up and connect to."""
        return self.route.proxy.host if self.route.proxy else self.target.host

    @property
    def dial_port(self) -> int:
        return self.route.proxy.port if self.route.proxy else self.target.port

    def found(self, kind: type[F]) -> F:
        """What the stage of that result type found; its empty result when it found nothing
        (it was skipped, or has not run)."""
        found = next((o.found for o in self.outcomes.values() if isinstance(o.found, kind)),
                     None)
        return kind() if found is None else found

    def hand_over(self, stream: Stream) -> Handover:
        """Leave a live connection for a later stage: each reuse saves round trips."""
        handover = Handover(stream)
        self.handovers.append(handover)
        return handover

    def close_streams(self) -> None:
        for handover in self.handovers:
            handover.close()
        self.handovers.clear()

    @property
    def address(self) -> str:
        """The address the tcp stage connected to; later stages use it too."""
        address = self.found(TcpFound).address
        if address is None:
            raise RuntimeError("no address: the tcp stage has not connected")
        return address

    @property
    def base_facts(self) -> Facts:
        """Values every advice text may mention."""
        return Facts(
            host=self.target.host,
            port=self.target.port,
            url=self.target.url,
            timeout=self.options.timeout,
            resolver=self.found(DnsFound).resolver or "the system resolver",
            address=self.found(TcpFound).address or self.target.host,
            proxy=self.route.proxy.masked_url if self.route.proxy else "none",
            proxy_source=self.proxy_source,
        )

    def first_failure(self) -> tuple[str, Outcome] | None:
        return next(((name, o) for name, o in self.outcomes.items()
                     if o.status is Status.FAIL), None)


class Need(StrEnum):
    """What a stage needs from the stages before it; unmet, the stage is skipped."""

    NO_FAILURE = "no earlier failure"
    REACHABLE_SERVER = "a server that answered"  # a certificate error still answered
    KEY = "an API key"
    ROUTE = "a route to the API"  # a PAC that gives none fails the proxy stage instead

    def unmet(self, ctx: Context) -> str | None:
        """Why this need is not met in `ctx` (the skip summary), or None."""
        if self is Need.ROUTE:
            return None if ctx.route_failure is None else (
                "not checked: the proxy auto-configuration script gave no route (see the "
                "proxy stage)")
        failed = ctx.first_failure()
        if self is Need.NO_FAILURE:
            return None if failed is None else f"skipped: {failed[0]} failed"
        if self is Need.REACHABLE_SERVER:
            blocking = next((name for name, o in ctx.outcomes.items() if o.status is Status.FAIL
                             and o.condition not in SERVER_ANSWERED), None)
            return None if blocking is None else (
                f"skipped: the server cannot be reached ({blocking} failed)")
        if ctx.key is None and not ctx.options.no_ping:
            return "not checked: no API key (set ASSURE_API_KEY or --api-key-file)"
        return None


# What a stage reports when it overruns its deadline: a condition and kind (None: no kind
# tells more), or None to skip.
Overrun = tuple[Condition, Kind | None] | None


@dataclass(frozen=True)
class Probe:
    """One stage: its name and title, what it needs, the evidence it promises, how long it may
    take, and the coroutine that runs it."""

    name: str
    title: str  # for people: the TUI's pipeline
    run: Callable[[Context], Awaitable[Outcome]]
    found: Callable[[], Found]  # its result type: empty, it gives the contract's evidence
    needs: tuple[Need, ...] = (Need.NO_FAILURE,)
    operations: int = 1  # sequential network operations, each bounded by --timeout
    retried: bool = False  # attempts x (operations x timeout + pause), as the ping is
    overrun: Overrun = None
    # Facts its ranking takes from other stages' evidence (a TLS failure reads the clock's).
    cross_facts: Callable[[Context], Facts] | None = None
    # Skipped is not a fault: the proxy stage of a direct check has nothing to do.
    optional: bool = False
    # A timeout, reset or unreachable here is followed by a TCP traceroute (`pathtrace`).
    traced: bool = False
    # What it reports when skipped, from what the check knew before it (the proxy stage: the
    # route a PAC chose); None: nothing.
    skipped: Callable[[Context], Found | None] | None = None

    @property
    def keyed(self) -> bool:
        """Whether it sends the key: the monitor's network cadence runs only the others."""
        return Need.KEY in self.needs
