"""Facts one stage's ranking takes from another stage's result: a TLS failure re-read in the
light of the server's clock."""

from __future__ import annotations

from datetime import UTC, datetime

from assure_doctor.kinds import Facts
from assure_doctor.probes.clock import skew_text
from assure_doctor.probes.results import ClockFound, TlsFound
from assure_doctor.probes.stage import Context


def tls_facts(ctx: Context) -> Facts:
    skew = ctx.found(ClockFound).skew_seconds
    return Facts(clock_explains=clock_explains(ctx),
                 skew_text=None if skew is None else skew_text(skew))


def clock_explains(ctx: Context) -> bool | None:
    """Whether the certificate is valid at the server's time though not at ours.

    None when the server's clock is unknown; False when the clocks agree or when the certificate
    is invalid at the server's time too (then the platform, not our clock, is at fault).
    """
    skew = ctx.found(ClockFound).skew_seconds
    certificate = ctx.found(TlsFound).certificate
    if skew is None or certificate is None:
        return None
    server_now = datetime.now(UTC).timestamp() + skew
    return certificate.not_before.timestamp() <= server_now <= certificate.not_after.timestamp()
