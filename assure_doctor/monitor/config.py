"""What the monitor watches: targets from the command line or a TOML file, validated once.

Every value of the TOML file is checked for its exact type (a bool is a bool, an integer is
not a float, a string is a string) and range, and errors name the TOML key and table, not
the command line's flags.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from assure_doctor import apikey, localfile, proxyconfig, trust
from assure_doctor.apikey import ApiKey
from assure_doctor.bounds import CHECK_BOUNDS, DAY, MONITOR_BOUNDS, Bound
from assure_doctor.errors import InputError, shown
from assure_doctor.monitor import fleet
from assure_doctor.monitor.allow import Allowed
from assure_doctor.options import CheckOptions
from assure_doctor.proxyconfig import ProxyRules
from assure_doctor.statedir import default_state_dir, state_directory
from assure_doctor.target import Target, parse_resolver, resolve_target

DEFAULT_INTERVAL = 60.0
DEFAULT_PING_BUDGET = 100  # 1% of the customer's 10,000 a day
DEFAULT_PING_INTERVAL = 900.0  # 96 a day: under the budget, with room for retries
DEFAULT_JITTER = 5.0
CONFIG_LIMIT = localfile.MIB
BOUNDS = MONITOR_BOUNDS
LABEL_LIMIT = 64
_LABEL_FORBIDDEN = set("\"'`\\[]{}<>")  # break Prometheus' text format, Rich markup, shells
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


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
    # What /probe may check besides the configured targets and sheassure.net (--probe.allow).
    probe_allow: tuple[Allowed, ...] = ()

    def __post_init__(self) -> None:
        fleet.validate_settings(self.site, self.ledger_url, self.customer_budget)
        for name, bound in BOUNDS.items():
            bound.check(getattr(self, name), f"--{name.replace('_', '-')}")
        if not self.targets:
            raise InputError("no target: give --stack, --url, --config FILE or --sandbox")
        labels = [t.label for t in self.targets]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise InputError(f"--config: target label {shown(duplicates[0])} is used twice; give "
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


def check_label(label: str, name: str) -> str:
    """A target's name as the `target` label: printable, bounded, nothing that breaks the
    Prometheus text format, a terminal or Rich markup."""
    if not label or len(label) > LABEL_LIMIT:
        raise InputError(f"{name}: must be 1 to {LABEL_LIMIT} characters")
    bad = next((c for c in label if not c.isprintable() or c in _LABEL_FORBIDDEN), None)
    if bad is not None or label != label.strip():
        shown = "leading or trailing space" if bad is None else \
            f"the character {bad!r}" if bad.isprintable() else "a control character"
        raise InputError(f"{name}: {shown} is not allowed in a target name (letters, digits "
                         "and . _ - : / @ + and spaces inside)")
    return label


def watched_target(target: Target, options: CheckOptions, key: ApiKey | None,
                   name: str | None = None) -> WatchedTarget:
    label = name or target.label
    check_label(label, f"name = {_shown(name)}" if name else f"target {_shown(label)}")
    return WatchedTarget(label, target, options, key)


# --- the TOML file ---------------------------------------------------------------------------
FILE_SETTINGS = {"interval", "ping_interval", "ping_budget", "jitter", "state_dir", "listen",
                 *fleet.FILE_SETTINGS}
_ENTRY_KEYS = {"name", "stack", "url", "key_env", "key_file", "resolvers", "ca_bundle",
               "no_ping", "timeout", "proxy", "no_proxy", "pac"}
_TYPE_NAMES = {bool: "true or false", int: "a whole number", float: "a number",
               str: "a string", list: "a list"}


def _typed(table: Mapping[str, Any], key: str, kind: type, here: str) -> Any:
    """The value of `key`, which must be exactly of `kind` (an int is also a float), or None
    when absent."""
    if key not in table:
        return None
    value = table[key]
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok, value = True, float(value)
    if not ok:
        raise InputError(f"{here}: {key} = {_shown(value)}: must be {_TYPE_NAMES[kind]}")
    return value


def _shown(value: object) -> str:
    """A TOML value, shown bounded (the file may hold anything)."""
    from assure_doctor import sanitize

    return sanitize.text(repr(value), 60)


def _number(table: Mapping[str, Any], key: str, bound: Bound, here: str) -> Any:
    value = _typed(table, key, int if bound.integer else float, here)
    if value is not None:
        problem = bound.problem(value)
        if problem:
            raise InputError(f"{here}: {key} = {_shown(value)}: {problem}")
    return value


def load_file(path: str, base: CheckOptions) -> tuple[list[WatchedTarget], dict[str, Any]]:
    """Targets and settings from a TOML file; returns (targets, top-level settings), every
    value of the right type and range."""
    where = f"--config {shown(path)}"
    data = localfile.read_regular(path, CONFIG_LIMIT, "--config")
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{where}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{where}: not valid TOML ({exc})") from None
    except RecursionError:  # tomllib recurses into nested arrays and tables
        raise InputError(f"{where}: nested too deeply") from None
    entries = document.pop("targets", None)
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{where}: needs at least one [[targets]] table")
    unknown = sorted(set(document) - FILE_SETTINGS)
    if unknown:
        raise InputError(f"{where}: unknown setting {_shown(unknown[0])} (known: "
                         f"{', '.join(sorted(FILE_SETTINGS))}, [[targets]])")
    settings: dict[str, Any] = {}
    for key, bound in BOUNDS.items():
        value = _number(document, key, bound, where)
        if value is not None:
            settings[key] = value
    state_dir = _typed(document, "state_dir", str, where)
    if state_dir is not None:
        settings["state_dir"] = state_directory(state_dir, f"{where}: state_dir =")
    listen = _typed(document, "listen", str, where)
    if listen is not None:
        if not listen.strip():
            raise InputError(f"{where}: listen = '': give HOST:PORT, e.g. 127.0.0.1:10459")
        settings["listen"] = listen
    targets = [_entry(entry, index, where, base) for index, entry in enumerate(entries, 1)]
    for key, kind in (("site", str), ("ledger", str), ("customer_budget", int)):
        value = _typed(document, key, kind, where)
        if value is not None:
            settings[key] = value  # MonitorConfig checks it (fleet.validate_settings)
    return targets, settings


def _entry(entry: object, index: int, where: str, base: CheckOptions) -> WatchedTarget:
    here = f"{where} [[targets]] #{index}"
    if not isinstance(entry, dict):
        raise InputError(f"{here}: must be a table")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise InputError(f"{here}: unknown setting {_shown(unknown[0])}")
    name = _typed(entry, "name", str, here)
    stack = _typed(entry, "stack", str, here)
    url = _typed(entry, "url", str, here)
    resolver_texts = _typed(entry, "resolvers", list, here) or []
    ca_bundle = _typed(entry, "ca_bundle", str, here)
    timeout = _number(entry, "timeout", CHECK_BOUNDS["timeout"], here)
    no_ping = _typed(entry, "no_ping", bool, here)
    key_file = _typed(entry, "key_file", str, here)
    key_env = _typed(entry, "key_env", str, here)
    proxy_url = _typed(entry, "proxy", str, here)
    no_proxy = _typed(entry, "no_proxy", bool, here)
    pac = _typed(entry, "pac", str, here)
    try:
        target = resolve_target(stack, url, ("stack =", "url ="))
        resolvers = []
        for text in resolver_texts:
            if not isinstance(text, str):
                raise InputError(f"resolvers = [{_shown(text)}]: each must be a string")
            resolvers.append(parse_resolver(text, "resolvers ="))
        options = replace(base, resolvers=tuple(resolvers) or base.resolvers,
                          # loaded here to be named as the file's key
                          trust=base.trust if ca_bundle is None else trust.load(
                              ca_bundle, "ca_bundle ="),
                          timeout=base.timeout if timeout is None else timeout,
                          no_ping=base.no_ping if no_ping is None else no_ping,
                          proxy=_proxy(proxy_url, no_proxy, pac, base.proxy))
        key = None
        if key_file is not None and key_env is not None:
            raise InputError("key_file and key_env: give one or the other")
        if not options.no_ping:
            if key_file is not None:
                key = apikey.from_file(key_file, "key_file =")
            elif key_env is not None:
                if not _ENV_NAME.match(key_env):
                    raise InputError(f"key_env = {_shown(key_env)}: not a variable name")
                key = apikey.from_env(variable=key_env)
                if key is None:
                    raise InputError(f"key_env = {shown(key_env)}: the variable {key_env} is "
                                     "not set")
            else:
                key = apikey.from_env()
        return watched_target(target, options, key, name)
    except InputError as exc:
        raise InputError(f"{here}: {exc}") from None


def _proxy(url: str | None, no_proxy: bool | None, pac: str | None, base: ProxyRules
           ) -> ProxyRules:
    """A target's `proxy = "http://..."`, `no_proxy = true` or `pac = "URL_OR_FILE"`; else the
    command line's rules (a target's own setting wins over all of them)."""
    if no_proxy or url is not None or pac is not None:
        location = None
        if pac is not None:
            from assure_doctor.pac.fetch import given

            location = given(pac, "pac =")
        return proxyconfig.load(url, bool(no_proxy), {}, pac=location)
    return base

