"""The stages of a check: the `Probe` protocol every stage fills in, and the `Context` it
runs in. The one list of stages is `probes.registry.PROBES`.

A probe's `run` reads what earlier stages found from `ctx.outcomes` (their evidence), does its
own I/O, and reports an `Outcome`; it never ranks causes, never skips itself and needs no
deadline of its own: the engine decides from `needs` whether it runs, and bounds it in time.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from assure_doctor.apikey import ApiKey
from assure_doctor.kinds import SERVER_ANSWERED, Condition, Facts, Kind
from assure_doctor.model import Outcome, Status
from assure_doctor.options import CheckOptions
from assure_doctor.proxyconfig import Route
from assure_doctor.target import Target

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class Context:
    """One check's inputs and what its stages have found so far."""

    target: Target
    options: CheckOptions
    key: ApiKey | None
    verify_context: ssl.SSLContext
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    # Live connections a stage leaves for the next: each reuse saves round trips.
    streams: dict[str, Stream] = field(default_factory=dict)
    # Direct, or through a proxy: then dns and tcp are about the proxy host.
    route: Route = field(init=False)

    def __post_init__(self) -> None:
        self.route = self.options.proxy.route(self.target.host, self.target.port)

    @property
    def dial_host(self) -> str:
        """The host the dns and tcp stages look up and connect to."""
        return self.route.proxy.host if self.route.proxy else self.target.host

    @property
    def dial_port(self) -> int:
        return self.route.proxy.port if self.route.proxy else self.target.port

    def hand_over(self, stage: str, stream: Stream) -> None:
        self.streams[stage] = stream

    def take(self, stage: str) -> Stream | None:
        return self.streams.pop(stage, None)

    def close_streams(self) -> None:
        for _, writer in self.streams.values():
            writer.transport.abort()
        self.streams.clear()

    def evidence(self, stage: str) -> dict[str, Any]:
        outcome = self.outcomes.get(stage)
        return outcome.evidence if outcome else {}

    @property
    def address(self) -> str:
        """The address the tcp stage connected to; later stages use it too."""
        return str(self.evidence("tcp")["address"])

    @property
    def base_facts(self) -> Facts:
        """Values every advice text may mention."""
        return Facts(
            host=self.target.host,
            port=self.target.port,
            url=self.target.url,
            timeout=self.options.timeout,
            resolver=str(self.evidence("dns").get("resolver") or "the system resolver"),
            address=str(self.evidence("tcp").get("address") or self.target.host),
            proxy=self.route.proxy.masked_url if self.route.proxy else "none",
            proxy_source=self.route.source,
        )

    def first_failure(self) -> tuple[str, Outcome] | None:
        return next(((name, o) for name, o in self.outcomes.items()
                     if o.status is Status.FAIL), None)


class Need(StrEnum):
    """What a stage needs from the stages before it; unmet, the stage is skipped."""

    NO_FAILURE = "no earlier failure"
    REACHABLE_SERVER = "a server that answered"  # a certificate error still answered
    KEY = "an API key"

    def unmet(self, ctx: Context) -> str | None:
        """Why this need is not met in `ctx` (the skip summary), or None."""
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


# What a stage reports when it overruns its deadline: a condition and kind, or None to skip.
Overrun = tuple[Condition, Kind] | None


@dataclass(frozen=True)
class Probe:
    """One stage: its name and title, what it needs, the evidence it promises, how long it may
    take, and the coroutine that runs it."""

    name: str
    title: str  # for people: the TUI's pipeline
    run: Callable[[Context], Awaitable[Outcome]]
    needs: tuple[Need, ...] = (Need.NO_FAILURE,)
    evidence: Mapping[str, Any] = field(default_factory=dict)  # the contract's, before it runs
    operations: int = 1  # sequential network operations, each bounded by --timeout
    retried: bool = False  # attempts x (operations x timeout + pause), as the ping is
    overrun: Overrun = None
    # Facts its ranking takes from other stages' evidence (a TLS failure reads the clock's).
    cross_facts: Callable[[Context], Facts] | None = None
    # Skipped is not a fault: the proxy stage of a direct check has nothing to do.
    optional: bool = False

    @property
    def keyed(self) -> bool:
        """Whether it sends the key: the monitor's network cadence runs only the others."""
        return Need.KEY in self.needs
