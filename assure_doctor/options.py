"""How a check runs: timeouts, retries, trust anchors, resolvers. Validated once, at the edge."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assure_doctor import localfile, sanitize
from assure_doctor.bounds import Bound
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
CA_BUNDLE_LIMIT = 10 * localfile.MIB
# Each bound names the flag; the TOML file checks its keys against the same bounds.
BOUNDS = {
    "timeout": Bound(0, 600, low_open=True),
    "retries": Bound(0, MAX_RETRIES, integer=True, unit=" (each retry spends from the "
                     "customer's daily quota)"),
    "retry_pause": Bound(0, 3600),
    "max_retry_after": Bound(0, 86400),
    "max_skew": Bound(0, 365 * 86400, low_open=True),
}


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
        for name, bound in BOUNDS.items():
            bound.check(getattr(self, name), f"--{name.replace('_', '-')}")
        if self.trust is None or self.trust.ca_bundle != self.ca_bundle:
            from assure_doctor.probes import tlsctx  # the probes package imports this module

            if self.ca_bundle is not None:
                check_ca_bundle(self.ca_bundle)  # bad input, named, before any traffic
            object.__setattr__(self, "trust", tlsctx.load(self.ca_bundle))

    @property
    def anchors(self) -> Trust:
        """The loaded trust (always set once the options exist)."""
        assert self.trust is not None
        return self.trust

    @property
    def attempts(self) -> int:
        return self.retries + 1


def check_ca_bundle(path: str, name: str = "--ca-bundle") -> None:
    """A CA bundle is a regular PEM file of bounded size (OpenSSL would read `/dev/zero` for
    ever); errors name `name` (the flag, or a TOML key)."""
    from assure_doctor.probes import tlsctx  # the probes package imports this module

    localfile.require_regular(path, CA_BUNDLE_LIMIT, name)
    try:
        tlsctx.verifying(path)
    except InputError as exc:
        reason = str(exc).partition(": ")[2]
        raise InputError(f"{name} {sanitize.text(path, 200)}: {reason}") from None
