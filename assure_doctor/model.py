"""The results the engine produces: immutable, and shaped like the contract's JSON.

A probe returns an `Outcome`: its verdict and what it found, as a typed object (`Found`) that
later stages read by attribute. The evidence dict of the reports is derived from it, never read
back. Illegal states are refused at construction: a FAIL or WARN always names its condition, and
a reported FAIL or WARN always has at least one cause.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from assure_doctor import __version__
from assure_doctor.apikey import ENV_VAR, ApiKey
from assure_doctor.history.changes import Change
from assure_doctor.history.fingerprint import Fingerprint
from assure_doctor.kinds import CauseId, Condition, Facts
from assure_doctor.target import Target


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


class Found(Protocol):
    """What one stage found, typed; `evidence()` is its JSON-able form for the reports."""

    def evidence(self) -> dict[str, Any]: ...


F = TypeVar("F", bound=Found)


@dataclass(frozen=True)
class Cause:
    """One possible cause of a condition, with what a person can do about it."""

    id: CauseId
    title: str
    advice: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", CauseId(self.id))

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title, "advice": self.advice}


@dataclass(frozen=True)
class Fault:
    """Why the engine, not the probe, ended a stage: its deadline passed, or it raised."""

    error: str | None = None
    deadline_seconds: float | None = None
    exception: str | None = None
    message: str | None = None

    def evidence(self) -> dict[str, Any]:
        if self.exception is not None:
            return {"exception": self.exception, "message": self.message}
        return {"error": self.error, "deadline_seconds": self.deadline_seconds}


@dataclass(frozen=True)
class Outcome:
    """What a probe found, before the causes are ranked.

    `found` is the stage's typed result (None: the stage found nothing, e.g. skipped);
    `facts` are the few evidence-derived values the ranking reads (e.g. kind=NXDOMAIN).
    """

    status: Status
    summary: str
    found: Found | None = None
    condition: Condition | None = None
    facts: Facts = field(default_factory=lambda: Facts())
    fault: Fault | None = None
    path: Found | None = None  # the TCP traceroute after a timeout, reset or unreachable

    def __post_init__(self) -> None:
        object.__setattr__(self, "condition", _checked(self.status, self.condition))


@dataclass(frozen=True)
class StageResult:
    """One stage of a check, as reported."""

    name: str
    status: Status
    duration_ms: float
    summary: str
    condition: Condition | None = None
    causes: tuple[Cause, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)
    # What the stage found, typed (faces read it by attribute), and the ranking's inputs, kept
    # so a later run can resume from this result; neither is reported as such.
    found: Found | None = field(default=None, compare=False, repr=False)
    facts: Facts = field(default_factory=lambda: Facts(), compare=False, repr=False)
    fault: Fault | None = field(default=None, compare=False, repr=False)
    path: Found | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "condition", _checked(self.status, self.condition))
        if self.status in _FINDINGS and not self.causes:
            raise ValueError(f"a {self.status} stage must name at least one cause")

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL

    def as_outcome(self) -> Outcome:
        return Outcome(self.status, self.summary, self.found, self.condition, self.facts,
                       self.fault, self.path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "duration_ms": round(self.duration_ms, 1),
            "summary": self.summary,
            "condition": self.condition,
            "causes": [cause.to_dict() for cause in self.causes],
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class KeyInfo:
    """The API key as data, never the key: whether there is one, its source and its length."""

    present: bool = False
    source: str | None = None  # ENV_VAR or "file"
    length: int | None = None
    sent: bool = False  # False with --no-ping: the check sends nothing that carries it
    path: str | None = None  # the key file's path (a path, not a secret), for commands

    @classmethod
    def of(cls, key: ApiKey | None, no_ping: bool) -> KeyInfo:
        if key is None:
            return cls()
        if key.source == ENV_VAR:
            return cls(True, ENV_VAR, len(key.reveal()), not no_ping)
        return cls(True, "file", len(key.reveal()), not no_ping, key.path)

    def to_dict(self) -> dict[str, Any]:
        return {"present": self.present, "source": self.source, "length": self.length,
                "sent": self.sent}


def tool() -> dict[str, str]:
    return {"name": "assure-doctor", "version": __version__}


def platform_info() -> dict[str, str]:
    return {"system": platform.system(), "release": platform.release(),
            "python": platform.python_version()}


@dataclass(frozen=True)
class Report:
    """A whole check: the target, each stage in order, and when it ran."""

    target: Target
    stages: tuple[StageResult, ...]
    started_at: str
    resolver: str
    key_info: KeyInfo = KeyInfo()
    # Against the last good check (None: no path history was kept or consulted).
    changes: tuple[Change, ...] | None = None
    last_good_at: str | None = None
    fingerprint: Fingerprint | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return not any(stage.failed for stage in self.stages)

    @property
    def diagnosis(self) -> StageResult | None:
        """The first failing stage, or None."""
        return next((stage for stage in self.stages if stage.failed), None)

    @property
    def warnings(self) -> tuple[StageResult, ...]:
        return tuple(stage for stage in self.stages if stage.status is Status.WARN)

    def stage(self, name: str) -> StageResult | None:
        return next((stage for stage in self.stages if stage.name == name), None)

    def found(self, kind: type[F]) -> F | None:
        """What the stage of that result type found; None when it found nothing."""
        return next((stage.found for stage in self.stages if isinstance(stage.found, kind)),
                    None)

    def to_dict(self) -> dict[str, Any]:
        diagnosis = self.diagnosis
        return {
            "schema": 1,
            "ok": self.ok,
            "target": self.target.to_dict(),
            "stages": [stage.to_dict() for stage in self.stages],
            "diagnosis": None if diagnosis is None else _finding(diagnosis),
            "warnings": [_finding(stage) for stage in self.warnings if stage.condition],
            "started_at": self.started_at,
            "resolver": self.resolver,
            "api_key": self.key_info.to_dict(),
            "changes": None if self.changes is None else [c.to_dict() for c in self.changes],
            "last_good_at": self.last_good_at,
            "tool": tool(),
            "platform": platform_info(),
        }


_FINDINGS = (Status.FAIL, Status.WARN)


def _checked(status: Status, condition: Condition | str | None) -> Condition | None:
    """The condition as a `Condition`; a FAIL or WARN without one is refused."""
    if condition is None:
        if status in _FINDINGS:
            raise ValueError(f"a {status} outcome must name its condition")
        return None
    return Condition(condition)


def _finding(stage: StageResult) -> dict[str, Any]:
    return {
        "stage": stage.name,
        "condition": stage.condition,
        "causes": [cause.to_dict() for cause in stage.causes],
        "summary": stage.summary,
    }
