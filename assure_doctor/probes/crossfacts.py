"""Facts one stage's ranking takes from another stage's result: a TLS failure re-read in the
light of the server's clock, a failed connection in the light of the hosts file."""

from __future__ import annotations

from datetime import UTC, datetime

from assure_doctor.kinds import Facts, PinSource
from assure_doctor.probes import oslookup
from assure_doctor.probes.clock import skew_text
from assure_doctor.probes.dns import listed
from assure_doctor.probes.results import ClockFound, DnsFound, TcpFound, TlsFound
from assure_doctor.probes.stage import Context


def tcp_facts(ctx: Context) -> Facts:
    """`pinned_by` when the hosts file gave an address that failed and DNS does not give it:
    then the pin, not the network, is the first suspect."""
    dns = ctx.found(DnsFound)
    if dns.hosts_file is None:
        return Facts()
    for attempt in ctx.found(TcpFound).attempts:
        pin = None if attempt.ok else dns.pin(attempt.address)
        if pin is None or oslookup.same_any([pin.address], dns.dns_addresses or ()):
            continue
        facts = Facts(pinned_by=PinSource.HOSTS_FILE, hosts_file=dns.hosts_file,
                      hosts_line=pin.line, pinned_address=pin.address)
        if dns.dns_addresses:
            facts.update(Facts(dns_addresses=listed(dns.dns_addresses)))
        return facts
    return Facts()


def tls_facts(ctx: Context) -> Facts:
    skew = ctx.found(ClockFound).skew_seconds
    return Facts(clock_explains=clock_explains(ctx),
                 skew_text=None if skew is None else skew_text(skew))


def clock_explains(ctx: Context) -> bool | None:
    """Whether the certificate whose window failed (the leaf, an intermediate or the root;
    the leaf when no other is known to have failed) is valid at the server's time though not
    at ours.

    None when the server's clock is unknown; False when the clocks agree or when that
    certificate is invalid at the server's time too (then the platform, not our clock, is at
    fault).
    """
    skew = ctx.found(ClockFound).skew_seconds
    tls = ctx.found(TlsFound)
    window = tls.failing or tls.certificate
    if skew is None or window is None:
        return None
    return valid_at_server_time(window.not_before, window.not_after, skew, datetime.now(UTC))


def valid_at_server_time(not_before: datetime, not_after: datetime, skew: float,
                         now: datetime) -> bool:
    """Whether a window holds at the server's time (`now` plus `skew`, server minus local)."""
    server_now = now.timestamp() + skew
    return not_before.timestamp() <= server_now <= not_after.timestamp()
