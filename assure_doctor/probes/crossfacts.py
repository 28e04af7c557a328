"""Facts one stage's ranking takes from another stage's evidence: a TLS failure re-read in the
light of the server's clock."""

from __future__ import annotations

from datetime import UTC, datetime

from assure_doctor.kinds import Facts
from assure_doctor.probes import Context
from assure_doctor.probes.clock import skew_text


def tls_facts(ctx: Context) -> Facts:
    skew = ctx.evidence("clock").get("skew_seconds")
    return Facts(clock_explains=clock_explains(ctx),
                 skew_text=None if skew is None else skew_text(float(skew)))


def clock_explains(ctx: Context) -> bool | None:
    """Whether the certificate is valid at the server's time though not at ours.

    None when the server's clock is unknown; False when the clocks agree or when the certificate
    is invalid at the server's time too (then the platform, not our clock, is at fault).
    """
    tls_evidence, clock_evidence = ctx.evidence("tls"), ctx.evidence("clock")
    skew = clock_evidence.get("skew_seconds")
    if skew is None or not tls_evidence.get("not_before") or not tls_evidence.get("not_after"):
        return None
    not_before = datetime.fromisoformat(str(tls_evidence["not_before"]))
    not_after = datetime.fromisoformat(str(tls_evidence["not_after"]))
    server_now = datetime.now(UTC).timestamp() + float(skew)
    return bool(not_before.timestamp() <= server_now <= not_after.timestamp())
