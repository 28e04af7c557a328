"""How values read in every face: the key, the command that was run, evidence values, titles.

One place, so `check`, the report bundle and the TUI say the same thing in the same words.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from assure_doctor import apikey, sanitize
from assure_doctor.causes import title as condition_title
from assure_doctor.kinds import Family
from assure_doctor.model import KeyInfo, Status
from assure_doctor.options import CheckOptions
from assure_doctor.proxyconfig import Source
from assure_doctor.target import Target

# Texts joined from parts can meet badly: "...'host'.. If", "(system (10.0.0.1))", "-0.0 s".
_TIDY: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?<!\.)\.\.(?!\.)"), "."),
    (re.compile(r"\((\w+) \(([^()]*)\)\)"), r"(\1 \2)"),
    (re.compile(r"(?<![\w.])-(0(?:\.0+)?)(?![\d.])"), r"\1"),
)
def tidy(text: str) -> str:
    """`text` with doubled full stops, nested brackets and negative zeros smoothed out."""
    for pattern, replacement in _TIDY:
        text = pattern.sub(replacement, text)
    return text


def outside(value: object, limit: int | None = sanitize.DEFAULT_LIMIT) -> str:
    """Any text that may hold what a server sent: sanitised, bounded, tidied."""
    return tidy(sanitize.text(value, limit))


def key_text(info: KeyInfo) -> str:
    """'from ASSURE_API_KEY (36 chars)', never the key; 'absent: ...' when there is none."""
    if not info.present:
        return f"absent: set {apikey.ENV_VAR} or use --api-key-file"
    where = "the file given with --api-key-file" if info.source == "file" else info.source
    return f"from {where} ({info.length} chars)" + ("" if info.sent else
                                                     ", not sent (--no-ping)")


def check_command(target: Target, options: CheckOptions | None, *, command: str = "check",
                  key: KeyInfo | None = None) -> str:
    """The `assure-doctor check ...` command line for this target, quoted for a POSIX shell."""
    args = ["assure-doctor", command]
    args += ["--stack", target.stack] if target.stack else ["--url", target.url]
    if key is not None and key.path is not None:
        args += ["--api-key-file", key.path]
    if options is not None:
        if options.family is not None:
            args.append("-4" if options.family is Family.IPV4 else "-6")
        rules = options.proxy
        if rules.forced_direct:
            args.append("--no-proxy")
        elif rules.proxy is not None and rules.proxy.source == Source.FLAG:
            # Credentials stay masked: the command then needs them filled in by hand.
            args += ["--proxy", rules.proxy.masked_url]
        elif rules.pac_flag is not None:
            args += ["--pac", rules.pac_flag.shown]
        for resolver in options.resolvers:
            args += ["--resolver", str(resolver)]
        if options.ca_bundle:
            args += ["--ca-bundle", options.ca_bundle]
        if options.no_ping:
            args.append("--no-ping")
    return sanitize.text(shlex.join(args), None)


def title(condition: str | None, status: Status) -> str:
    """A finding's heading: 'Warning: ...' for a warning, never '... error'."""
    if condition is None:
        return "unknown condition"
    name = condition_title(condition, status)
    return f"Warning: {name}" if status is Status.WARN else name


def value(item: object, limit: int = 200) -> str:
    """An evidence value as a person reads it: lists joined, mappings as `key value` pairs."""
    if isinstance(item, Mapping):
        parts = [f"{key} {_scalar(val)}" for key, val in item.items() if val not in (None, "")]
        return outside(", ".join(parts), limit)
    if isinstance(item, list | tuple):
        shown = [f"({value(part, limit)})" if isinstance(part, Mapping) else _scalar(part)
                 for part in item]
        return outside(", ".join(shown), limit)
    return outside(" ".join(_scalar(item).split()), limit)


def _scalar(item: Any) -> str:
    if isinstance(item, bool):
        return "yes" if item else "no"
    if isinstance(item, float):
        return tidy(f"{item:g}")
    return str(item)


def when(iso: str) -> str:
    """An ISO 8601 time as people read it, in UTC ("2026-12-07 09:14 UTC"); an unreadable
    one as escaped text."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return outside(iso, 40)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M} UTC"
