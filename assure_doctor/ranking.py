"""Order a condition's causes by the evidence, and word each one's advice from the same
evidence: a pure function over the `causes` tables."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from assure_doctor.causes import ADVICE, CAUSE_TITLES, GENERIC, RANKING, Advice
from assure_doctor.kinds import CauseId, Condition
from assure_doctor.model import Cause


def rank(condition: Condition | str, facts: Mapping[str, Any]) -> tuple[Cause, ...]:
    """The causes of `condition`, most likely first, with advice chosen and filled in from
    `facts`. The first rule of RANKING[condition] whose facts all match decides the order."""
    try:
        known = Condition(condition)
    except ValueError:
        raise ValueError(f"unknown condition {condition!r}") from None
    order = next(causes for when, causes in RANKING[known] if _holds(when, facts))
    return tuple(_cause(known, cause_id, facts) for cause_id in order)


def advice_for(condition: Condition, cause_id: CauseId, facts: Mapping[str, Any]) -> Advice:
    """The first variant whose facts hold and whose placeholders are all known."""
    variants = (*ADVICE.get((condition, cause_id), ()), *GENERIC[cause_id])
    return next(a for a in variants if _holds(a.when, facts) and _fillable(a.text, facts))


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _cause(condition: Condition, cause_id: CauseId, facts: Mapping[str, Any]) -> Cause:
    advice = advice_for(condition, cause_id, facts)
    return Cause(id=cause_id, title=CAUSE_TITLES[cause_id], advice=advice.text.format_map(
        {name: facts[name] for name in placeholders(advice.text)}))


def _holds(when: Mapping[str, object], facts: Mapping[str, Any]) -> bool:
    """Every fact in `when` is known and equal (a fact that is absent or None holds none)."""
    return all(facts.get(key) is not None and facts.get(key) == value
               for key, value in when.items())


def _fillable(template: str, facts: Mapping[str, Any]) -> bool:
    return all(facts.get(name) is not None for name in placeholders(template))
