"""Stage 4: the TLS handshake with full verification; on failure, read what was presented.

It verifies against certifi plus --ca-bundle first, and records which anchors verify the API
(certifi, the machine's store, --ca-bundle): a certificate only the machine's store trusts is a
TLS-inspecting proxy that some clients accept and others refuse. A handshake that stalls is
tried once more with small TCP segments, to tell a path MTU black hole from a firewall.

The chain the server presented is in the evidence link by link, leaf first, each certificate
with its problem: read from the verified handshake, or after a failure from the look-only one
(never from anything that carries the key). A chain that stops short of an anchor is completed,
where its top certificate names an AIA caIssuers URL, from that URL: if it then verifies, the
server does not send its intermediate (browsers fetch it and work; API clients fail).

A reset or end of stream once TCP connected is the handshake's failure, however soon it came.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.x509.verification import Store

from assure_doctor import logs, trust
from assure_doctor.kinds import CertKind, ChainLink, Condition, ConnectKind, Facts, HandshakeKind
from assure_doctor.model import Outcome, Status
from assure_doctor.options import CERT_WARN_DAYS
from assure_doctor.probes import (
    certchain,
    certinfo,
    chaincheck,
    inspection,
    netclass,
    path,
)
from assure_doctor.probes.connect import handshake
from assure_doctor.probes.results import (
    CertProblem,
    ProxyFound,
    Stream,
    TcpFound,
    TlsFound,
    TrustVerdicts,
)
from assure_doctor.probes.stage import Context

if TYPE_CHECKING:
    from assure_doctor.probes import aia

NAME = "tls"
log = logs.get(NAME)

_VERIFY_TEXT = {
    CertKind.EXPIRED: "the certificate has expired",
    CertKind.NOT_YET_VALID: "the certificate is not yet valid",
    CertKind.HOSTNAME_MISMATCH: "the certificate is not for {host}",
    CertKind.UNKNOWN_ISSUER: "the certificate's issuer is not trusted ({issuer})",
    CertKind.SELF_SIGNED: "the certificate is self-signed ({issuer})",
    CertKind.REVOKED: "the certificate has been revoked",
    CertKind.OTHER: "certificate verification failed",
}
_DATE_KINDS = {CertKind.EXPIRED: CertProblem.EXPIRED,
               CertKind.NOT_YET_VALID: CertProblem.NOT_YET_VALID}
_DATE_TEXT = {CertKind.EXPIRED: "has expired", CertKind.NOT_YET_VALID: "is not yet valid"}
# OpenSSL's "unable to get (local) issuer certificate" and "unable to verify the first
# certificate": an issuer that was neither sent nor trusted, perhaps only not sent.
_ISSUER_NOT_FOUND = frozenset({2, 20, 21})


# Which anchor sets verify a certificate is asked again at most once a minute: the TUI's watch
# and the monitor check every few seconds, each time with three extra handshakes otherwise.
_TRUST_TTL = 60.0
_TRUST_SEEN_MAX = 64
_TRUST_SEEN: dict[tuple[object, ...], tuple[float, TrustVerdicts]] = {}
_SMALL_MSS = 500  # bytes: segments this small pass any sane path MTU (IPv6 minimum 1280)
_CAN_CLAMP = hasattr(socket, "TCP_MAXSEG")
_HANDSHAKE_TEXT = {**netclass.HANDSHAKE_TEXT,
                   HandshakeKind.MTU: "stalled until its segments were small"}


async def run(ctx: Context) -> Outcome:
    target, address, timeout = ctx.target, ctx.address, ctx.options.timeout
    anchors = ctx.options.trust
    via = f" via {ctx.route.proxy.masked_url}" if ctx.route.proxy else ""
    log.info("TLS handshake with %s at %s port %d (SNI %s)%s", target.host, address,
             target.port, target.host, via)
    handed = (ctx.found(ProxyFound).tunnel if ctx.route.proxy
              else ctx.found(TcpFound).connection)
    stream = handed.take() if handed else None
    if stream is None:
        try:
            stream = await path.open_stream(ctx)
        except (OSError, TimeoutError) as exc:
            if netclass.connect_kind(exc) is ConnectKind.RESET:
                # Accepted, then cut: the handshake's failure, however soon the reset came.
                return _with_trust(await _handshake_failure(ctx, exc), ctx,
                                   TrustVerdicts(False, False, None))
            return _connect_failure(ctx, exc)
    try:
        await handshake(stream[1], anchors.strict, target.host, timeout)
    except ssl.SSLCertVerificationError as exc:
        system = await _verified_stream(ctx, anchors.system)
        if system is None:
            outcome = await _verify_failure(ctx, exc)
            return _with_trust(outcome, ctx, TrustVerdicts(False, False, None))
        # Only the machine's store trusts it: a TLS-inspecting proxy this machine trusts.
        return _with_trust(_verified(ctx, system, anchors.system, only_system=True), ctx,
                           TrustVerdicts(False, True, None))
    except (OSError, TimeoutError, EOFError) as exc:
        return _with_trust(await _handshake_failure(ctx, exc), ctx,
                           TrustVerdicts(False, False, None))
    chain = chaincheck.presented_chain(stream[1].get_extra_info("ssl_object"))
    outcome = _verified(ctx, stream, anchors.strict, only_system=False, presented=chain)
    offline = None if chain is None else _offline_verdicts(ctx, chain)
    if offline is not None:
        return _with_trust(outcome, ctx, offline)
    certificate = outcome.found.certificate if isinstance(outcome.found, TlsFound) else None
    key = (anchors, target.host, target.port, certificate.sha256 if certificate else None)
    known = _TRUST_SEEN.get(key)
    if known is not None and time.monotonic() - known[0] < _TRUST_TTL:
        return _with_trust(outcome, ctx, known[1])  # the same certificate, seen moments ago
    verdicts = await _each_anchor_set(ctx)
    if len(_TRUST_SEEN) >= _TRUST_SEEN_MAX:
        _TRUST_SEEN.pop(next(iter(_TRUST_SEEN)))
    _TRUST_SEEN[key] = (time.monotonic(), verdicts)
    return _with_trust(outcome, ctx, verdicts)


def _offline_verdicts(ctx: Context, chain: list[x509.Certificate]) -> TrustVerdicts | None:
    """(certifi, system, --ca-bundle) from the chain already received: no new connection.
    None when an anchor set cannot be read, or the offline verdict disagrees with OpenSSL's
    (certifi + bundle verified): then the handshakes ask."""
    def verdict(store: Store | None) -> bool | None:
        return None if store is None else chaincheck.verifies(store, chain, ctx.target.host)

    certifi, system, bundle = _offline_stores(ctx)
    certifi_ok, system_ok = verdict(certifi), verdict(system)
    bundle_ok = None if ctx.options.trust.ca_pem is None else verdict(bundle)
    if (certifi_ok is None or system_ok is None
            or (ctx.options.trust.ca_pem is not None and bundle_ok is None)
            or not (certifi_ok or bundle_ok)):
        return None
    return TrustVerdicts(certifi_ok, system_ok, bundle_ok)


async def _each_anchor_set(ctx: Context) -> TrustVerdicts:
    """Which of certifi, the system and --ca-bundle verify the API alone, after certifi +
    bundle did. In a task group: whatever fails, no handshake outlives the stage or goes
    unawaited."""
    anchors = ctx.options.trust
    async with asyncio.TaskGroup() as group:
        system = group.create_task(_verifies(ctx, anchors.system))
        alone = None if anchors.bundle is None else (
            group.create_task(_verifies(ctx, anchors.certifi)),
            group.create_task(_verifies(ctx, anchors.bundle)))
    if alone is None:
        return TrustVerdicts(True, system.result(), None)
    return TrustVerdicts(alone[0].result(), system.result(), alone[1].result())


def _with_trust(outcome: Outcome, ctx: Context, verdicts: TrustVerdicts) -> Outcome:
    """The outcome with the contract's `trust` evidence: which anchors verified the API."""
    if verdicts.ca_bundle is None and ctx.options.trust.bundle is not None:
        # certifi + bundle failed, so the bundle alone fails too
        verdicts = replace(verdicts, ca_bundle=False)
    found = outcome.found if isinstance(outcome.found, TlsFound) else TlsFound()
    return replace(outcome, found=replace(found, trust=verdicts))


async def _verified_stream(ctx: Context, context: ssl.SSLContext) -> Stream | None:
    """A new connection verified with `context`, or None when it does not verify."""
    try:
        return await path.open_tls(ctx, context)
    except (OSError, TimeoutError, EOFError) as exc:
        log.info("Verification with the %s anchors: %s", _anchor_name(ctx, context),
                 netclass.describe(exc))
        return None


async def _verifies(ctx: Context, context: ssl.SSLContext) -> bool:
    stream = await _verified_stream(ctx, context)
    if stream is None:
        return False
    stream[1].transport.abort()
    return True


def _anchor_name(ctx: Context, context: ssl.SSLContext) -> str:
    anchors = ctx.options.trust
    names = {id(anchors.system): "system", id(anchors.certifi): "certifi"}
    return names.get(id(context), "--ca-bundle")


def _verified(ctx: Context, stream: Stream, context: ssl.SSLContext, only_system: bool,
              presented: list[x509.Certificate] | None = None) -> Outcome:
    """A verified connection (by `context`): its facts, handed over for the clock and the
    ping. Its chain comes from this very handshake; when only the machine's store verified
    it, each link is judged against certifi (+ --ca-bundle), which did not."""
    writer = stream[1]
    ssl_object = writer.get_extra_info("ssl_object")
    version = ssl_object.version() if ssl_object else None
    cipher = ssl_object.cipher()[0] if ssl_object and ssl_object.cipher() else None
    if presented is None:
        presented = chaincheck.presented_chain(ssl_object)
    info = _leaf(ssl_object, presented)
    judged = _judged(ctx, presented, datetime.now(UTC)) if only_system else None
    found = TlsFound(verified=True, certificate=info, address=ctx.address,
                     tls_version=version, cipher=cipher, verified_with=context,
                     chain=judged.chain if judged else certchain.chain_of(presented or []),
                     anchor=judged.anchor if judged else None,
                     connection=ctx.hand_over(stream))  # the clock stage may ask over it
    if info is None:
        return Outcome(Status.PASS, f"verified {version}", found)
    if only_system:
        return _only_system(info, found)
    days = certinfo.days_left(info)
    found = replace(found, days_left=days)
    log.info("TLS verified: %s, subject %s, issuer %s, expires %s", version, info.subject,
             info.issuer, info.not_after.isoformat())
    summary = (f"verified {version}, certificate valid until {info.not_after:%Y-%m-%d} "
               f"({days:.0f} days)")
    if days < CERT_WARN_DAYS:
        facts = Facts(kind=CertKind.EXPIRING, verify_error=f"expires in {days:.1f} days",
                      issuer=info.issuer)
        return Outcome(Status.WARN, summary + ": renewal is due", found,
                       Condition.TLS_CERTIFICATE_ERROR, facts)
    return Outcome(Status.PASS, summary, found)


async def _verify_failure(ctx: Context, exc: ssl.SSLCertVerificationError) -> Outcome:
    target = ctx.target
    kind = certinfo.verify_kind(exc.verify_code)
    verify_error = exc.verify_message or netclass.describe(exc)
    info, presented = await _presented_certificate(ctx)
    now = datetime.now(UTC)
    judged = _judged(ctx, presented, now)
    found = TlsFound(verified=False, certificate=info, address=ctx.address,
                     verify_error=verify_error, verify_code=exc.verify_code, verify_kind=kind,
                     chain=judged.chain if judged else certchain.chain_of(presented),
                     anchor=judged.anchor if judged else None)
    facts = Facts(kind=kind, verify_error=verify_error)
    if info is not None:
        found = replace(found, valid_now=certinfo.valid_at(info, now),
                        matches_host=certinfo.matches_host(info, target.host))
        facts.update(Facts(issuer=info.issuer, cert_names=", ".join(info.names) or info.subject,
                     cert_subject=info.subject, not_before=_when(info.not_before),
                     not_after=_when(info.not_after),
                     same_domain=certinfo.same_domain(info, target.host)))
    summary = _VERIFY_TEXT[kind].format(host=target.host, issuer=facts.get("issuer", "?"))
    failing = judged.failing(_DATE_KINDS[kind]) if judged and kind in _DATE_KINDS else None
    if failing is not None:
        cert, link = failing
        found = replace(found, failing=cert)
        facts.update(Facts(link=link, cert_subject=cert.subject,
                           not_before=_when(cert.not_before), not_after=_when(cert.not_after)))
        if link is not ChainLink.LEAF:
            summary = (f"the {link} certificate {cert.subject} {_DATE_TEXT[kind]} (valid "
                       f"{_when(cert.not_before)} to {_when(cert.not_after)})")
    if (judged is not None and judged.end is certchain.End.MISSING_ISSUER
            and exc.verify_code in _ISSUER_NOT_FOUND):
        fetched, completed = await _from_aia(ctx, certchain.readable(presented), judged)
        if fetched is not None and completed is not None:
            return _missing_intermediate(ctx, found, facts, judged, fetched, completed, now)
        if fetched is not None:
            found = replace(found, aia_url=fetched.url, aia_error=fetched.error)
    product = inspection.product(info.issuer if info else None)
    if product is not None:
        found = replace(found, inspection_product=product)
        summary += f": {product} TLS inspection"
    log.warning("TLS certificate verification failed for %s: %s", target.host, verify_error)
    return Outcome(Status.FAIL, summary, found, Condition.TLS_CERTIFICATE_ERROR, facts)


def _strict_anchors(ctx: Context) -> certchain.Anchors:
    """certifi (+ --ca-bundle): the anchors the check verifies with, indexed once."""
    return _anchors_of(ctx.options.trust.strict)


@functools.lru_cache(maxsize=8)
def _anchors_of(context: ssl.SSLContext) -> certchain.Anchors:
    return certchain.Anchors.of(chaincheck.anchors_of(context))


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _judged(ctx: Context, presented: list[x509.Certificate] | None, now: datetime
            ) -> certchain.Links | None:
    """The presented chain judged link by link against certifi (+ --ca-bundle), the anchors
    the check verifies with."""
    if not presented:
        return None
    anchors = _strict_anchors(ctx)
    return certchain.links(presented, anchors, ctx.target.host, now)


async def _from_aia(ctx: Context, certs: list[x509.Certificate], judged: certchain.Links
                   ) -> tuple[aia.Issuers | None, list[x509.Certificate] | None]:
    """What the top certificate's caIssuers URL gave (None: it names none), and the chain
    completed with it when that verifies against certifi, the machine's store or the bundle."""
    from assure_doctor.probes import aia  # a broken chain's: not a healthy check's

    top = certs[judged.top]
    urls = certchain.ca_issuers(top)
    if not urls:
        return None, None
    anchors = _strict_anchors(ctx)
    try:
        async with asyncio.timeout(ctx.options.timeout):  # the whole fetch: one operation
            fetched = await aia.issuers(ctx, top, anchors)
    except TimeoutError:
        fetched = aia.Issuers(urls[0], error="timed out")
    if fetched is not None and fetched.certificates:
        # What was fetched is tried even when a later hop failed: another store may end it.
        completed = [*certs, *fetched.certificates]
        if _verifies_anywhere(ctx, completed):
            return fetched, completed
        fetched = replace(fetched, error=fetched.error
                          or "the chain completed with it does not verify either")
    if fetched is not None:
        log.info("The issuer named at %s did not tell: %s", fetched.url, fetched.error)
    return fetched, None


def _missing_intermediate(ctx: Context, found: TlsFound, facts: Facts, judged: certchain.Links,
                          fetched: aia.Issuers, completed: list[x509.Certificate],
                          now: datetime) -> Outcome:
    """The server does not send its intermediate: the chain completed from the AIA URL
    verifies. Browsers fetch it and work; API clients do not, and fail."""
    missing = certchain.entry(fetched.certificates[0])
    subject = missing.subject if missing else "?"
    anchors = _strict_anchors(ctx)
    relinked = certchain.links(completed, anchors, ctx.target.host, now)
    found = replace(found, verify_kind=CertKind.MISSING_INTERMEDIATE,
                    chain=certchain.claim_missing(judged).chain,
                    anchor=relinked.anchor if relinked else None,
                    missing_intermediate=subject, aia_url=fetched.url)
    facts = Facts(**facts)
    facts.update(Facts(kind=CertKind.MISSING_INTERMEDIATE, missing_intermediate=subject,
                       aia_url=fetched.url))
    log.warning("TLS: the server does not send its intermediate certificate %s; with the one "
                "at %s the chain verifies", subject, fetched.url)
    summary = (f"the server does not send its intermediate certificate ({subject}): "
               f"browsers fetch it from {fetched.url} and work, API clients fail")
    return Outcome(Status.FAIL, summary, found, Condition.TLS_CERTIFICATE_ERROR, facts)


def _verifies_anywhere(ctx: Context, chain: list[x509.Certificate]) -> bool:
    """Whether the chain verifies, offline, against certifi, the machine's store (where it
    can be read as a list) or --ca-bundle."""
    return any(store is not None and chaincheck.verifies(store, chain, ctx.target.host)
               for store in _offline_stores(ctx))


def _offline_stores(ctx: Context) -> tuple[Store | None, Store | None, Store | None]:
    """certifi's, the machine's (where it is one file) and --ca-bundle's anchors, read from
    their PEM: building SSL contexts only to list their anchors cost ~40 ms a process."""
    anchors = ctx.options.trust
    return (chaincheck.store_of_pem(anchors.certifi_pem),
            chaincheck.store_of_pem(anchors.system_pem),
            chaincheck.store_of_pem(anchors.ca_pem))


def _only_system(info: certinfo.CertInfo, found: TlsFound) -> Outcome:
    """Verified by the machine's store, not by certifi: passes, with a warning naming who fails.
    """
    product = inspection.product(info.issuer)
    who = f"a TLS-inspecting proxy ({product})" if product else "a TLS-inspecting proxy"
    summary = (f"verified only by this machine's trust store: {who} whose root this machine "
               "trusts re-signs the API's certificate; clients that use certifi (Python "
               "requests, many Java and Node apps) will fail, PowerShell, .NET and browsers "
               "will work")
    facts = Facts(kind=CertKind.SYSTEM_ONLY, issuer=info.issuer, product=product or "unnamed",
                  verify_error="not trusted by certifi",
                  cert_names=", ".join(info.names) or info.subject)
    log.warning("TLS verified only by the system trust store (issuer %s)", info.issuer)
    return Outcome(Status.WARN, summary, replace(found, inspection_product=product),
                   Condition.TLS_CERTIFICATE_ERROR, facts)


async def _presented_certificate(ctx: Context
                                 ) -> tuple[certinfo.CertInfo | None, list[x509.Certificate]]:
    """A second, unverified handshake only to read the certificate and the chain sent with
    it; nothing is sent over it."""
    try:
        _, writer = await path.open_tls(ctx, trust.looking())
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        log.info("Could not read the presented certificate: %s", netclass.describe(exc))
        return None, []
    ssl_object = writer.get_extra_info("ssl_object")
    chain = chaincheck.presented_chain(ssl_object) or []
    writer.transport.abort()
    return _leaf(ssl_object, chain), chain


def _leaf(ssl_object: ssl.SSLObject | None, presented: list[x509.Certificate] | None
          ) -> certinfo.CertInfo | None:
    """The server's certificate: the presented chain's first (parsed once), else read from
    the handshake when the chain could not be."""
    if presented:
        return certinfo.describe(presented[0])
    der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    return certinfo.describe(der) if der else None


def _connect_failure(ctx: Context, exc: BaseException) -> Outcome:
    """The server stopped accepting connections between the tcp stage and this one."""
    error = netclass.describe(exc)
    kind = netclass.connect_kind(exc)
    facts = Facts(kind=kind, default_port=ctx.target.port == 443, error=error)
    log.warning("TLS stage could not connect: %s", error)
    return Outcome(Status.FAIL, f"cannot connect: {error}",
                   TlsFound(verified=False, address=ctx.address, error=error,
                            verify_error=error),
                   netclass.connect_condition(kind), facts)


async def _handshake_failure(ctx: Context, exc: BaseException) -> Outcome:
    error = netclass.describe(exc)
    kind = netclass.handshake_kind(exc)
    small_mss_retry = None
    if kind is HandshakeKind.TIMEOUT and _CAN_CLAMP:
        small = await _small_segments_get_through(ctx)
        small_mss_retry = "completed" if small else "stalled too"
        if small:
            kind = HandshakeKind.MTU
    # No certificate was seen; the contract's verify_error still says why TLS failed.
    found = TlsFound(verified=False, address=ctx.address, error=error, verify_error=error,
                     handshake=kind, small_mss_retry=small_mss_retry)
    facts = Facts(kind=kind, kind_text=_HANDSHAKE_TEXT[kind], error=error)
    log.warning("TLS handshake with %s failed: %s", ctx.target.host, error)
    if kind is HandshakeKind.MTU:
        facts.update(Facts(mss=_SMALL_MSS))
        return Outcome(Status.FAIL, f"TLS handshake got no answer, but completed with "
                       f"{_SMALL_MSS}-byte segments: a path MTU black hole", found,
                       Condition.TLS_HANDSHAKE_FAILED, facts)
    return Outcome(Status.FAIL, f"TLS handshake {_HANDSHAKE_TEXT[kind]}: {error}", found,
                   Condition.TLS_HANDSHAKE_FAILED, facts)


async def _small_segments_get_through(ctx: Context) -> bool:
    """One more handshake on a new connection whose MSS is clamped small: if it completes
    where the normal one stalled, large packets are being dropped on the path (MTU)."""
    log.info("TLS handshake stalled: retrying once with TCP MSS %d", _SMALL_MSS)
    try:
        _, writer = await path.open_tls(ctx, trust.looking(), mss=_SMALL_MSS)
    except (OSError, TimeoutError, EOFError) as exc:
        log.info("The small-segment handshake failed too: %s", netclass.describe(exc))
        return False
    writer.transport.abort()
    return True
