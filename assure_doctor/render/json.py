"""The contract's JSON document."""

from __future__ import annotations

import json

from assure_doctor import redact
from assure_doctor.model import Report


def render(report: Report) -> str:
    return redact.scrub(json.dumps(report.to_dict(), indent=2, default=str))
