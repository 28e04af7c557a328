"""Order a condition's causes by the evidence: a pure function over `causes` tables."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from assure_doctor.causes import ADVICE, CAUSES, CONDITIONS, KIND_ADVICE, RANKING
from assure_doctor.model import Cause


def rank(condition: str, facts: Mapping[str, Any]) -> tuple[Cause, ...]:
    """The causes of `condition`, most likely first, with advice filled in from `facts`.

    The first rule of RANKING[condition] whose facts all match decides the order.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}")
    order = next(
        causes
        for when, causes in RANKING[condition]
        if all(facts.get(key) == value for key, value in when.items())
    )
    return tuple(_cause(condition, cause_id, facts) for cause_id in order)


def _cause(condition: str, cause_id: str, facts: Mapping[str, Any]) -> Cause:
    title, generic = CAUSES[cause_id]
    template = KIND_ADVICE.get((condition, cause_id, str(facts.get("kind"))),
                               ADVICE.get((condition, cause_id), generic))
    return Cause(id=cause_id, title=title, advice=_fill(template, facts))


UNKNOWN = "(not known)"


class _Blanks(dict[str, Any]):
    """A format mapping that leaves unknown placeholders readable instead of raising."""

    def __missing__(self, key: str) -> str:
        return UNKNOWN


def _fill(template: str, facts: Mapping[str, Any]) -> str:
    values = _Blanks({k: v for k, v in facts.items() if v is not None})
    return string.Formatter().vformat(template, (), values)
