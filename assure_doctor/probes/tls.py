"""Stage 3: the TLS handshake with full verification; on failure, read what was presented."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from typing import Any

from assure_doctor import logs
from assure_doctor.kinds import Condition, Facts
from assure_doctor.model import Outcome, Status
from assure_doctor.options import CERT_WARN_DAYS
from assure_doctor.probes import Context, certinfo, netclass, tlsctx
from assure_doctor.probes.connect import connect, handshake, open_tls

NAME = "tls"
log = logs.get(NAME)

_VERIFY_TEXT = {
    "expired": "the certificate has expired",
    "not_yet_valid": "the certificate is not yet valid",
    "hostname_mismatch": "the certificate is not for {host}",
    "unknown_issuer": "the certificate's issuer is not trusted ({issuer})",
    "self_signed": "the certificate is self-signed ({issuer})",
    "revoked": "the certificate has been revoked",
    "other": "certificate verification failed",
}


async def run(ctx: Context) -> Outcome:
    target, address, timeout = ctx.target, ctx.address, ctx.options.timeout
    log.info("TLS handshake with %s at %s port %d (SNI %s)", target.host, address, target.port,
             target.host)
    stream = ctx.take("tcp")
    if stream is None:
        try:
            stream = await connect(address, target.port, timeout)
        except (OSError, TimeoutError) as exc:
            return _connect_failure(ctx, exc)
    writer = stream[1]
    try:
        await handshake(writer, ctx.verify_context, target.host, timeout)
    except ssl.SSLCertVerificationError as exc:
        return await _verify_failure(ctx, exc)
    except (OSError, TimeoutError, EOFError) as exc:
        return _handshake_failure(ctx, exc)

    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    version = ssl_object.version() if ssl_object else None
    cipher = ssl_object.cipher()[0] if ssl_object and ssl_object.cipher() else None
    ctx.hand_over(NAME, stream)  # verified: the clock stage may ask over it
    info = certinfo.describe(der) if der else None
    evidence: dict[str, Any] = {"verified": True, "tls_version": version, "cipher": cipher,
                                "address": address}
    if info is None:
        return Outcome(Status.PASS, f"verified {version}", evidence)
    evidence.update(info.to_evidence())
    days = certinfo.days_left(info)
    evidence["days_left"] = round(days, 2)
    log.info("TLS verified: %s, subject %s, issuer %s, expires %s", version, info.subject,
             info.issuer, info.not_after.isoformat())
    summary = (f"verified {version}, certificate valid until {info.not_after:%Y-%m-%d} "
               f"({days:.0f} days)")
    if days < CERT_WARN_DAYS:
        facts: Facts = {"kind": "expiring", "verify_error": f"expires in {days:.1f} days",
                 "issuer": info.issuer}
        return Outcome(Status.WARN, summary + ": renewal is due", evidence,
                       Condition.TLS_CERTIFICATE_ERROR, facts)
    return Outcome(Status.PASS, summary, evidence)


async def _verify_failure(ctx: Context, exc: ssl.SSLCertVerificationError) -> Outcome:
    target = ctx.target
    kind = certinfo.verify_kind(exc.verify_code)
    evidence: dict[str, Any] = {
        "verified": False,
        "verify_error": exc.verify_message or netclass.describe(exc),
        "verify_code": exc.verify_code,
        "verify_kind": kind,
        "address": ctx.address,
    }
    info = await _presented_certificate(ctx)
    facts: Facts = {"kind": kind, "verify_error": evidence["verify_error"]}
    if info is not None:
        now = datetime.now(UTC)
        evidence.update(info.to_evidence())
        evidence.update(valid_now=certinfo.valid_at(info, now),
                        matches_host=certinfo.matches_host(info, target.host))
        facts.update(Facts(issuer=info.issuer, cert_names=", ".join(info.names) or info.subject,
                     not_before=f"{info.not_before:%Y-%m-%d %H:%M} UTC",
                     not_after=f"{info.not_after:%Y-%m-%d %H:%M} UTC",
                     same_domain=certinfo.same_domain(info, target.host)))
    summary = _VERIFY_TEXT[kind].format(host=target.host, issuer=facts.get("issuer", "?"))
    log.warning("TLS certificate verification failed for %s: %s", target.host,
                evidence["verify_error"])
    return Outcome(Status.FAIL, summary, evidence, Condition.TLS_CERTIFICATE_ERROR, facts)


async def _presented_certificate(ctx: Context) -> certinfo.CertInfo | None:
    """A second, unverified handshake only to read the certificate; nothing is sent over it."""
    try:
        _, writer = await open_tls(ctx.address, ctx.target.port, ctx.options.timeout,
                                   tlsctx.looking(), ctx.target.host)
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        log.info("Could not read the presented certificate: %s", netclass.describe(exc))
        return None
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    writer.transport.abort()
    return certinfo.describe(der) if der else None


def _connect_failure(ctx: Context, exc: BaseException) -> Outcome:
    """The server stopped accepting connections between the tcp stage and this one."""
    error = netclass.describe(exc)
    kind = netclass.connect_kind(exc)
    facts: Facts = {"kind": kind, "default_port": ctx.target.port == 443, "error": error}
    log.warning("TLS stage could not connect: %s", error)
    return Outcome(Status.FAIL, f"cannot connect: {error}",
                   {"verified": False, "error": error, "verify_error": error,
                    "address": ctx.address},
                   netclass.connect_condition(kind), facts)


def _handshake_failure(ctx: Context, exc: BaseException) -> Outcome:
    error = netclass.describe(exc)
    # No certificate was seen; the contract's verify_error still says why TLS failed.
    evidence: dict[str, Any] = {"verified": False, "error": error, "verify_error": error,
                                "address": ctx.address}
    kind = netclass.handshake_kind(exc)
    evidence["handshake"] = kind
    facts: Facts = {"kind": kind, "kind_text": netclass.HANDSHAKE_TEXT[kind],
             "error": evidence["error"]}
    log.warning("TLS handshake with %s failed: %s", ctx.target.host, evidence["error"])
    return Outcome(Status.FAIL, f"TLS handshake {netclass.HANDSHAKE_TEXT[kind]}: "
                   f"{evidence['error']}", evidence, Condition.TLS_HANDSHAKE_FAILED, facts)
