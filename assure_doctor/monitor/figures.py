"""The numbers the metrics show beside each stage's verdict, taken from the stages' typed
results: kept per target between cycles and across restarts (`laststate`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from assure_doctor.model import Report
from assure_doctor.probes.results import ClockFound, PingFound, TlsFound


@dataclass(frozen=True)
class Figures:
    """None: not measured (yet), or the stage that measures it found nothing."""

    cert_not_after: float | None = None  # the certificate's expiry, a Unix time
    clock_skew: float | None = None  # server time minus local time, seconds
    ping_status: int | None = None  # the last keyed request's status; 0: it got none

    def updated(self, report: Report, names: tuple[str, ...]) -> Figures:
        """These figures with what `report`'s stages among `names` measured."""
        figures = self
        if "tls" in names:
            tls = report.found(TlsFound)
            certificate = tls.certificate if tls else None
            figures = replace(figures, cert_not_after=None if certificate is None
                              else certificate.not_after.timestamp())
        if "clock" in names:
            clock = report.found(ClockFound)
            figures = replace(figures, clock_skew=clock.skew_seconds if clock else None)
        if "ping" in names:
            ping = report.found(PingFound)
            if ping is not None and ping.attempts:
                figures = replace(figures, ping_status=ping.status_code or 0)
        return figures
