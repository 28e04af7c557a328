"""How a check runs: timeouts, retries, trust anchors, resolvers. Validated once, at the edge.

Making options does no I/O: the face loads the trust (`trust.load`) and the proxy rules
(`proxyconfig.load`) and passes them in, so `dataclasses.replace` is always cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assure_doctor.bounds import CHECK_BOUNDS as BOUNDS
from assure_doctor.bounds import (
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_MAX_SKEW,
    DEFAULT_RETRIES,
    DEFAULT_RETRY_PAUSE,
    DEFAULT_TIMEOUT,
)

if TYPE_CHECKING:  # their modules (ssl among them) are loaded by whoever builds options
    from assure_doctor.kinds import Family
    from assure_doctor.proxyconfig import ProxyRules
    from assure_doctor.target import ResolverAddress
    from assure_doctor.trust import Trust

CERT_WARN_DAYS = 14


# The defaults' modules (ssl among them) are imported when a default is first made.
def _direct() -> ProxyRules:
    from assure_doctor.proxyconfig import ProxyRules

    return ProxyRules()


def _no_bundle() -> Trust:
    from assure_doctor.trust import NO_BUNDLE

    return NO_BUNDLE


@dataclass(frozen=True)
class CheckOptions:
    """Everything about a check except its target and key."""

    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    retry_pause: float = DEFAULT_RETRY_PAUSE
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    max_skew: float = DEFAULT_MAX_SKEW
    resolvers: tuple[ResolverAddress, ...] = ()
    no_ping: bool = False
    family: Family | None = None  # -4 / -6: only this address family, for dns and tcp
    # Direct unless the edge (cli.inputs, the monitor's config) loaded the proxy settings.
    proxy: ProxyRules = field(default_factory=_direct)
    # certifi and the system store, plus --ca-bundle when the edge loaded one.
    trust: Trust = field(default_factory=_no_bundle)

    def __post_init__(self) -> None:
        for name, bound in BOUNDS.items():
            bound.check(getattr(self, name), f"--{name.replace('_', '-')}")

    @property
    def ca_bundle(self) -> str | None:
        """The --ca-bundle path the trust was loaded from, if any."""
        return self.trust.ca_bundle

    @property
    def attempts(self) -> int:
        return self.retries + 1
