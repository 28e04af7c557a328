"""How a check runs: timeouts, retries, trust anchors, resolvers. Validated once, at the edge."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assure_doctor.errors import InputError
from assure_doctor.kinds import Family
from assure_doctor.proxyconfig import ProxyRules
from assure_doctor.target import ResolverAddress

if TYPE_CHECKING:
    from assure_doctor.probes.tlsctx import Trust

DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 2  # the guide: at least 3 attempts
DEFAULT_RETRY_PAUSE = 2.0
DEFAULT_MAX_RETRY_AFTER = 30.0
DEFAULT_MAX_SKEW = 10.0
CERT_WARN_DAYS = 14
MAX_RETRIES = 10


@dataclass(frozen=True)
class CheckOptions:
    """Everything about a check except its target and key."""

    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    retry_pause: float = DEFAULT_RETRY_PAUSE
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    max_skew: float = DEFAULT_MAX_SKEW
    resolvers: tuple[ResolverAddress, ...] = ()
    ca_bundle: str | None = None
    no_ping: bool = False
    family: Family | None = None  # -4 / -6: only this address family, for dns and tcp
    # Direct unless the edge (cli.inputs, the monitor's config) loaded the proxy settings.
    proxy: ProxyRules = field(default_factory=ProxyRules)
    # The anchors for ca_bundle, loaded when the options are made (a file that later vanishes
    # cannot break a running check); re-loaded when a copy names another bundle.
    trust: Trust | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.trust is None or self.trust.ca_bundle != self.ca_bundle:
            from assure_doctor.probes import tlsctx  # the probes package imports this module

            object.__setattr__(self, "trust", tlsctx.load(self.ca_bundle))
        if not (self.timeout > 0 and math.isfinite(self.timeout)):
            raise InputError(f"--timeout {self.timeout}: must be a positive number of seconds")
        if not 0 <= self.retries <= MAX_RETRIES:
            raise InputError(f"--retries {self.retries}: must be 0 to {MAX_RETRIES} (each "
                             "retry spends from the customer's daily quota)")
        for flag, value in (("--retry-pause", self.retry_pause),
                            ("--max-retry-after", self.max_retry_after)):
            if not (value >= 0 and math.isfinite(value)):
                raise InputError(f"{flag} {value}: must be 0 or more seconds")
        if not (self.max_skew > 0 and math.isfinite(self.max_skew)):
            raise InputError(f"--max-skew {self.max_skew}: must be a positive number of seconds")

    @property
    def anchors(self) -> Trust:
        """The loaded trust (always set once the options exist)."""
        assert self.trust is not None
        return self.trust

    @property
    def attempts(self) -> int:
        return self.retries + 1
