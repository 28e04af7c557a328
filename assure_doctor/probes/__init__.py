"""The stages of a check. Every probe module has the same shape:

    NAME: str
    async def run(ctx: Context) -> Outcome

A probe reads what earlier stages found from `ctx.outcomes` (their evidence), does its own
I/O, and reports an `Outcome`; it never ranks causes and never skips itself.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any

from assure_doctor.apikey import ApiKey
from assure_doctor.model import Outcome
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
    def base_facts(self) -> dict[str, Any]:
        """Values every advice text may mention."""
        return {
            "host": self.target.host,
            "port": self.target.port,
            "url": self.target.url,
            "timeout": self.options.timeout,
            "resolver": self.evidence("dns").get("resolver", "the system resolver"),
            "address": self.evidence("tcp").get("address", self.target.host),
            "proxy": self.route.proxy.masked_url if self.route.proxy else "none",
            "proxy_source": self.route.source,
        }
