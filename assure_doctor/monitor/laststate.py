"""The last published result of each target, kept in the state dir across restarts.

Pings are rare (every 15 minutes by default, to spare the quota), so a restarted monitor
would show no `assure_up` until its next ping. It shows the persisted result instead, with
the time each stage really ran. One small file per target (two monitors sharing a state dir
do not overwrite each other's), written atomically, bounded, and parsed totally on load: a
corrupt file is ignored with one warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from pathlib import Path
from typing import Any, TypeVar

from assure_doctor import localfile, logs, sanitize
from assure_doctor.kinds import CauseId, Condition
from assure_doctor.model import Cause, StageResult, Status
from assure_doctor.monitor.figures import Figures
from assure_doctor.probes.registry import STAGE_NAMES as STAGES

_E = TypeVar("_E", Condition, CauseId)

DIRECTORY = "last-results"
MAX_FILE = 64 * 1024
SCHEMA = 2  # 1 kept evidence; 2 keeps the typed figures instead (a schema 1 file is ignored)
Restored = tuple[dict[str, StageResult], dict[str, float], Figures]
log = logs.get("monitor")


class Corrupt(ValueError):
    """The file is not what this module writes."""


class LastState:
    """Save and load (stages, ran_at) per target label."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / DIRECTORY

    def _path(self, label: str) -> Path:
        return self.directory / (hashlib.sha256(label.encode()).hexdigest()[:24] + ".json")

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
        self.directory.mkdir(parents=True, exist_ok=True)
        localfile.write_private(self._path(label), data)

    def load(self, label: str) -> Restored | None:
        """The saved result, or None when there is none or it cannot be trusted."""
        path = self._path(label)
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_FILE + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("%s: cannot read %s (%s); starting without it",
                        sanitize.text(label, 80), path, exc.strerror)
            return None
        try:
            if len(data) > MAX_FILE:
                raise Corrupt("too large")
            return _parse(json.loads(data), label)
        except (Corrupt, ValueError, UnicodeDecodeError) as exc:
            log.warning("%s: ignoring the corrupt last result %s (%s)",
                        sanitize.text(label, 80), path, sanitize.text(exc, 120))
            return None


def _dump(stage: StageResult) -> dict[str, Any]:
    return {"status": stage.status.value, "duration_ms": stage.duration_ms,
            "summary": stage.summary, "condition": stage.condition,
            "causes": [cause.to_dict() for cause in stage.causes[:1]]}


def _need(value: object, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise Corrupt(f"{what} has the wrong type")
    return value


def _number(value: object, what: str) -> float:
    number = float(_need(value, (int, float), what))
    if not math.isfinite(number):
        raise Corrupt(f"{what} is not finite")
    return number


def _short(value: object, what: str, limit: int = 2000) -> str:
    text = _need(value, str, what)
    if len(text) > limit:
        raise Corrupt(f"{what} is too long")
    return str(text)


def _optional_number(value: object, what: str) -> float | None:
    return None if value is None else _number(value, what)


def _figures(value: object) -> Figures:
    found = _need(value, dict, "figures")
    status = found.get("ping_status")
    if status is not None and not 0 <= _need(status, int, "ping_status") <= 999:
        raise Corrupt("ping_status is not an HTTP status")
    return Figures(_optional_number(found.get("cert_not_after"), "cert_not_after"),
                   _optional_number(found.get("clock_skew"), "clock_skew"), status)


def _enum(kind: type[_E], value: object, what: str) -> _E:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return kind(value)
    raise Corrupt(f"unknown {what}")


def _parse(document: object, label: str) -> Restored:
    top = _need(document, dict, "the document")
    if top.get("schema") != SCHEMA or top.get("label") != label:
        raise Corrupt("another schema or target")
    stages: dict[str, StageResult] = {}
    ran_at: dict[str, float] = {}
    times = _need(top.get("ran_at"), dict, "ran_at")
    for name, raw in _need(top.get("stages"), dict, "stages").items():
        if name not in STAGES:
            raise Corrupt(f"unknown stage {sanitize.text(name, 20)!r}")
        stage = _need(raw, dict, name)
        try:
            status = Status(stage.get("status"))
        except ValueError:
            raise Corrupt(f"{name}: unknown status") from None
        condition = stage.get("condition")
        causes = tuple(
            Cause(_enum(CauseId, c.get("id"), "cause id"), _short(c.get("title"), "cause title"),
                  _short(c.get("advice"), "cause advice"))
            for c in (_need(item, dict, "cause") for item in _need(stage.get("causes"), list,
                                                                   "causes")))
        try:
            stages[name] = StageResult(
                name, status, _number(stage.get("duration_ms"), "duration_ms"),
                _short(stage.get("summary"), "summary"),
                None if condition is None else _enum(Condition, condition, "condition"), causes)
        except ValueError as exc:  # a finding without a condition or causes: not ours
            raise Corrupt(f"{name}: {sanitize.text(exc, 80)}") from None
        ran_at[name] = _number(times.get(name), f"ran_at.{name}")
    return stages, ran_at, _figures(top.get("figures"))
