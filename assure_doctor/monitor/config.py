"""What the monitor watches: targets from the command line or a TOML file, validated once."""

from __future__ import annotations

import math
import os
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from assure_doctor import apikey, proxyconfig
from assure_doctor.apikey import ApiKey
from assure_doctor.errors import InputError
from assure_doctor.monitor import fleet
from assure_doctor.options import CheckOptions
from assure_doctor.proxyconfig import ProxyRules
from assure_doctor.target import Target, parse_resolver, resolve_target

DAY = 86400
DEFAULT_INTERVAL = 60.0
DEFAULT_PING_BUDGET = 100  # 1% of the customer's 10,000 a day
DEFAULT_PING_INTERVAL = 900.0  # 96 a day: under the budget, with room for retries
DEFAULT_JITTER = 5.0
DEFAULT_RETRY_PAUSE = 10.0  # the guide's pause between attempts


@dataclass(frozen=True)
class WatchedTarget:
    """One target with its own key, resolvers and trust anchors."""

    label: str
    target: Target
    options: CheckOptions
    key: ApiKey | None

    @property
    def pings(self) -> bool:
        return self.key is not None and not self.options.no_ping


@dataclass(frozen=True)
class MonitorConfig:
    targets: tuple[WatchedTarget, ...]
    interval: float = DEFAULT_INTERVAL
    ping_interval: float = DEFAULT_PING_INTERVAL
    ping_budget: int = DEFAULT_PING_BUDGET
    jitter: float = DEFAULT_JITTER
    state_dir: Path = field(default_factory=lambda: default_state_dir())
    # Accept a cadence the budget cannot sustain all day: pings stop once it is spent.
    allow_exhaustion: bool = False
    # A `site` label on every series, and one customer budget shared through a ledger.
    site: str | None = None
    ledger_url: str | None = None
    customer_budget: int | None = None

    def __post_init__(self) -> None:
        fleet.validate_settings(self.site, self.ledger_url, self.customer_budget)
        if not self.interval > 0:
            raise InputError(f"--interval {self.interval:g}: must be more than 0 seconds")
        if not self.ping_interval > 0:
            raise InputError(f"--ping-interval {self.ping_interval:g}: must be more than 0")
        if self.ping_budget < 0:
            raise InputError(f"--ping-budget {self.ping_budget}: must be 0 or more")
        if self.jitter < 0:
            raise InputError(f"--jitter {self.jitter:g}: must be 0 or more")
        if not self.targets:
            raise InputError("no target: give --stack, --url, --config FILE or --sandbox")
        labels = [t.label for t in self.targets]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise InputError(f"--config: target label {duplicates[0]!r} is used twice; give "
                             "each target a distinct name")
        if not self.allow_exhaustion:
            self._refuse_overspending()

    def _refuse_overspending(self) -> None:
        """Refuse, before anything runs, a ping cadence the daily budget cannot pay for."""
        per_key: dict[str, list[str]] = defaultdict(list)
        for watched in self.targets:
            if watched.pings and watched.key is not None:
                per_key[watched.key.fingerprint].append(watched.label)
        for labels in per_key.values():
            daily = len(labels) * math.ceil(DAY / self.ping_interval)
            if daily > self.ping_budget:
                floor = math.ceil(DAY * len(labels) / max(self.ping_budget, 1))
                raise InputError(
                    f"--ping-interval {self.ping_interval:g}: {daily} pings a day for "
                    f"{', '.join(labels)} would exceed --ping-budget {self.ping_budget} "
                    f"(one key's share of its 10,000 a day); use --ping-interval {floor} or "
                    "more, --no-ping, or --allow-budget-exhaustion")


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "assure-doctor"


def watched_target(target: Target, options: CheckOptions, key: ApiKey | None,
                   name: str | None = None) -> WatchedTarget:
    return WatchedTarget(name or target.label, target, options, key)


def load_file(path: str, base: CheckOptions) -> tuple[list[WatchedTarget], dict[str, Any]]:
    """Targets and settings from a TOML file; returns (targets, top-level settings)."""
    where = f"--config {path}"
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{where}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: not valid TOML ({exc})") from None
    entries = data.pop("targets", None)
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{where}: needs at least one [[targets]] table")
    unknown = sorted(set(data) - FILE_SETTINGS)
    if unknown:
        raise InputError(f"{where}: unknown setting {unknown[0]!r} (known: "
                         f"{', '.join(sorted(FILE_SETTINGS))}, [[targets]])")
    targets = [_entry(entry, index, where, base) for index, entry in enumerate(entries, 1)]
    return targets, data


FILE_SETTINGS = {"interval", "ping_interval", "ping_budget", "jitter", "state_dir", "listen",
                 *fleet.FILE_SETTINGS}


_ENTRY_KEYS = {"name", "stack", "url", "key_env", "key_file", "resolvers", "ca_bundle",
               "no_ping", "timeout", "proxy", "no_proxy"}


def _entry(entry: object, index: int, where: str, base: CheckOptions) -> WatchedTarget:
    here = f"{where} [[targets]] #{index}"
    if not isinstance(entry, dict):
        raise InputError(f"{here}: must be a table")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise InputError(f"{here}: unknown setting {unknown[0]!r}")
    try:
        target = resolve_target(entry.get("stack"), entry.get("url"))
        resolvers = tuple(parse_resolver(str(r)) for r in entry.get("resolvers", []))
        options = replace(base, resolvers=resolvers or base.resolvers,
                          ca_bundle=entry.get("ca_bundle", base.ca_bundle),
                          timeout=float(entry.get("timeout", base.timeout)),
                          no_ping=bool(entry.get("no_ping", base.no_ping)),
                          proxy=_proxy(entry, base.proxy))
        key = None
        if not options.no_ping:
            if "key_file" in entry:
                key = apikey.from_file(entry["key_file"])
            else:
                variable = entry.get("key_env", apikey.ENV_VAR)
                raw = os.environ.get(variable)
                key = None if raw is None else ApiKey(apikey.validate(raw, variable), variable)
    except InputError as exc:
        raise InputError(f"{here}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"{here}: {exc}") from None
    return watched_target(target, options, key, entry.get("name"))


def _proxy(entry: dict[str, Any], base: ProxyRules) -> ProxyRules:
    """A target's `proxy = "http://..."` or `no_proxy = true`; else the command line's rules."""
    no_proxy = entry.get("no_proxy", False)
    if not isinstance(no_proxy, bool):
        raise InputError("no_proxy must be true or false")
    if "proxy" in entry and not isinstance(entry["proxy"], str):
        raise InputError("proxy must be a URL string")
    if no_proxy or "proxy" in entry:
        return proxyconfig.load(entry.get("proxy"), no_proxy, {})
    return base
