"""The last published result of each target, kept in the state dir across restarts.

Pings are rare (every 15 minutes by default, to spare the quota), so a restarted monitor
would show no `assure_up` until its next ping. It shows the persisted result instead, with
the time each stage really ran. One small file per target (two monitors sharing a state dir
do not overwrite each other's), written atomically, bounded, and parsed totally on load: a
corrupt file is ignored with one warning.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, TypeVar

from assure_doctor import logs, sanitize
from assure_doctor.errors import InputError
from assure_doctor.kinds import CauseId, Condition
from assure_doctor.model import Cause, StageResult, Status
from assure_doctor.monitor.figures import Figures
from assure_doctor.probes.registry import STAGE_NAMES as STAGES
from assure_doctor.statefile import Corrupt, LabelFiles, need, number

_E = TypeVar("_E", Condition, CauseId)

DIRECTORY = "last-results"
MAX_FILE = 64 * 1024
SCHEMA = 2  # 1 kept evidence; 2 keeps the typed figures instead (a schema 1 file is ignored)
Restored = tuple[dict[str, StageResult], dict[str, float], Figures]
log = logs.get("monitor")


class LastState:
    """Save and load (stages, ran_at) per target label."""

    def __init__(self, state_dir: Path) -> None:
        self.files = LabelFiles(state_dir / DIRECTORY, MAX_FILE, "the last result")
        self.directory = self.files.directory

    def save(self, label: str, stages: dict[str, StageResult], ran_at: dict[str, float],
             figures: Figures) -> None:
        # Only the verdicts and figures the collector shows: bodies and names from outside
        # are not kept.
        document = {"schema": SCHEMA, "label": label,
                    "stages": {name: _dump(stage) for name, stage in stages.items()},
                    "ran_at": {name: ran_at[name] for name in stages if name in ran_at},
                    "figures": {"cert_not_after": figures.cert_not_after,
                                "clock_skew": figures.clock_skew,
                                "ping_status": figures.ping_status}}
        data = json.dumps(document, separators=(",", ":")).encode()
        if len(data) > MAX_FILE:
            log.warning("%s: the last result is too large to keep (%d bytes)",
                        sanitize.text(label, 80), len(data))
            return
        self.files.write(label, data)

    def load(self, label: str) -> Restored | None:
        """The saved result, or None when there is none or it cannot be trusted (a symbolic
        link is never followed)."""
        try:
            document = self.files.read(label)
            return None if document is None else _parse(document, label)
        except (InputError, ValueError, RecursionError) as exc:  # Corrupt is a ValueError
            log.warning("%s: ignoring the corrupt last result %s (%s)",
                        sanitize.text(label, 80), self.files.path(label),
                        sanitize.text(exc, 120))
            return None


def _dump(stage: StageResult) -> dict[str, Any]:
    return {"status": stage.status.value, "duration_ms": stage.duration_ms,
            "summary": stage.summary, "condition": stage.condition,
            "causes": [cause.to_dict() for cause in stage.causes[:1]]}


def _short(value: object, what: str, limit: int = 2000) -> str:
    text = need(value, str, what)
    if len(text) > limit:
        raise Corrupt(f"{what} is too long")
    return str(text)


def _optional_number(value: object, what: str) -> float | None:
    return None if value is None else number(value, what)


def _figures(value: object) -> Figures:
    found = need(value, dict, "figures")
    status = found.get("ping_status")
    if status is not None and not 0 <= need(status, int, "ping_status") <= 999:
        raise Corrupt("ping_status is not an HTTP status")
    return Figures(_optional_number(found.get("cert_not_after"), "cert_not_after"),
                   _optional_number(found.get("clock_skew"), "clock_skew"), status)


def _enum(kind: type[_E], value: object, what: str) -> _E:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return kind(value)
    raise Corrupt(f"unknown {what}")


def _parse(document: object, label: str) -> Restored:
    top = need(document, dict, "the document")
    if top.get("schema") != SCHEMA or top.get("label") != label:
        raise Corrupt("another schema or target")
    stages: dict[str, StageResult] = {}
    ran_at: dict[str, float] = {}
    times = need(top.get("ran_at"), dict, "ran_at")
    for name, raw in need(top.get("stages"), dict, "stages").items():
        if name not in STAGES:
            raise Corrupt(f"unknown stage {sanitize.text(name, 20)!r}")
        stage = need(raw, dict, name)
        try:
            status = Status(stage.get("status"))
        except ValueError:
            raise Corrupt(f"{name}: unknown status") from None
        condition = stage.get("condition")
        causes = tuple(
            Cause(_enum(CauseId, c.get("id"), "cause id"), _short(c.get("title"), "cause title"),
                  _short(c.get("advice"), "cause advice"))
            for c in (need(item, dict, "cause") for item in need(stage.get("causes"), list,
                                                                   "causes")))
        try:
            stages[name] = StageResult(
                name, status, number(stage.get("duration_ms"), "duration_ms"),
                _short(stage.get("summary"), "summary"),
                None if condition is None else _enum(Condition, condition, "condition"), causes)
        except ValueError as exc:  # a finding without a condition or causes: not ours
            raise Corrupt(f"{name}: {sanitize.text(exc, 80)}") from None
        ran_at[name] = number(times.get(name), f"ran_at.{name}")
    return stages, ran_at, _figures(top.get("figures"))
