"""What changed since the last good check: each difference between two fingerprints, worded,
and the facts the ranking takes from them. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from assure_doctor.history.fingerprint import CertSummary, Fingerprint
from assure_doctor.kinds import Facts
from assure_doctor.probes import inspection

# A clock offset that moved less than this is jitter, not a change (Date has whole seconds).
CLOCK_STEP = 5.0
_SHOWN = 4


class What(StrEnum):
    """The part of the path that changed: the contract's `what`, and a metric label."""

    ADDRESS = "address"
    CNAME = "cname"
    PROXY = "proxy"
    TLS_VERSION = "tls_version"
    CIPHER = "cipher"
    ISSUER = "issuer"
    CERTIFICATE = "certificate"
    TRUST = "trust"
    PING_STATUS = "ping_status"
    CLOCK = "clock"


@dataclass(frozen=True)
class Change:
    """One difference: what, its value then and now, since when (the last good check's
    time), and a sentence for people."""

    what: What
    was: str
    now: str
    since: str  # ISO 8601
    text: str
    seen: str | None = None  # ISO 8601: when a check first saw it (the history's log)

    def to_dict(self) -> dict[str, Any]:
        found = {"what": self.what.value, "was": self.was, "now": self.now,
                 "since": self.since, "text": self.text}
        return found if self.seen is None else {**found, "seen": self.seen}


def between(before: Fingerprint, now: Fingerprint, since: str, host: str
            ) -> tuple[Change, ...]:
    """Every difference between the last good fingerprint and this check's, in path order;
    a value either side does not know is not compared."""
    found: list[Change] = []

    def add(what: What, was: str, current: str, text: str) -> None:
        found.append(Change(what, was, current, since, text))

    if _differ(before.addresses, now.addresses) or (
            before.addresses == now.addresses and _differ(before.address_source,
                                                          now.address_source)):
        was = f"{_listed(before.addresses)} from {before.address_source or 'DNS'}"
        current = f"{_listed(now.addresses)} from {now.address_source or 'DNS'}"
        add(What.ADDRESS, was, current, f"{host} now resolves to {current} (was {was})")
    if _differ(before.cname_chain, now.cname_chain):
        was, current = _arrows(before.cname_chain), _arrows(now.cname_chain)
        add(What.CNAME, was, current, f"the CNAME chain is now {current} (was {was})")
    if _differ(before.proxy, now.proxy) or _differ(before.proxy_source, now.proxy_source):
        was, current = _route(before), _route(now)
        add(What.PROXY, was, current, _proxy_text(before, now))
    if _differ(before.tls_version, now.tls_version):
        add(What.TLS_VERSION, str(before.tls_version), str(now.tls_version),
            f"TLS is now {now.tls_version} (was {before.tls_version})")
    if _differ(before.cipher, now.cipher):
        add(What.CIPHER, str(before.cipher), str(now.cipher),
            f"the cipher is now {now.cipher} (was {before.cipher})")
    if _differ(before.issuer, now.issuer):
        add(What.ISSUER, str(before.issuer), str(now.issuer), _issuer_text(before, now))
    elif _differ(_leaf(before), _leaf(now)):
        was_leaf, now_leaf = _leaf(before), _leaf(now)
        assert was_leaf is not None and now_leaf is not None
        add(What.CERTIFICATE, _cert(was_leaf), _cert(now_leaf),
            f"the certificate was replaced: now valid until {now_leaf.not_after[:10]} "
            f"(was until {was_leaf.not_after[:10]}), same issuer")
    if _differ(before.trust, now.trust):
        was, current = _stores(before.trust), _stores(now.trust)
        add(What.TRUST, was, current, f"the certificate is now verified by {current} "
            f"(was {was})")
    if _differ(before.ping_status, now.ping_status):
        add(What.PING_STATUS, f"HTTP {before.ping_status}", f"HTTP {now.ping_status}",
            f"the ping now answers HTTP {now.ping_status} (was HTTP {before.ping_status})")
    if (before.clock_offset is not None and now.clock_offset is not None
            and abs(now.clock_offset - before.clock_offset) >= CLOCK_STEP):
        was, current = f"{before.clock_offset:+.1f} s", f"{now.clock_offset:+.1f} s"
        add(What.CLOCK, was, current, f"the API's clock is now {current} from this "
            f"machine's (was {was}): one of the two clocks was stepped")
    return tuple(found)


def facts(before: Fingerprint | None, now: Fingerprint) -> Facts:
    """What the ranking may take from the changes (see causes.RANKING)."""
    found = Facts()
    if before is None:
        return found
    if _differ(before.issuer, now.issuer) and _inspected(now.issuer) \
            and not _inspected(before.issuer):
        found["inspection_introduced"] = True
    if _differ(before.addresses, now.addresses):
        found["address_moved_by"] = "hosts" if (now.address_source or "").startswith(
            "the hosts file") else "dns"
        found["address_was"] = f"{_listed(before.addresses)} (from " \
            f"{before.address_source or 'DNS'})"
    return found


def _differ(was: object, now: object) -> bool:
    return was is not None and now is not None and was != now


def _inspected(issuer: str | None) -> bool:
    return inspection.product(issuer) is not None


def _leaf(fingerprint: Fingerprint) -> CertSummary | None:
    return fingerprint.chain[0] if fingerprint.chain else None


def _cert(cert: CertSummary) -> str:
    return f"sha256 {cert.sha256[:16]}…, valid until {cert.not_after[:10]}"


def _listed(addresses: tuple[str, ...] | None) -> str:
    shown = list(addresses or ())
    more = f" and {len(shown) - _SHOWN} more" if len(shown) > _SHOWN else ""
    return ", ".join(shown[:_SHOWN]) + more or "nothing"


def _arrows(names: tuple[str, ...] | None) -> str:
    return " → ".join(names or ()) or "no CNAME"


def _stores(stores: tuple[str, ...] | None) -> str:
    return ", ".join(stores or ()) or "no trust store"


def _route(fingerprint: Fingerprint) -> str:
    if fingerprint.proxy in (None, "direct"):
        return "direct"
    return f"{fingerprint.proxy} (from {fingerprint.proxy_source})"


def _proxy_text(before: Fingerprint, now: Fingerprint) -> str:
    if now.proxy in (None, "direct"):
        return f"the check now connects directly (was through {_route(before)})"
    if before.proxy in (None, "direct"):
        return f"{now.proxy_source} is now set ({now.proxy}): the check goes through a proxy"
    return f"the proxy is now {_route(now)} (was {_route(before)})"


def _issuer_text(before: Fingerprint, now: Fingerprint) -> str:
    text = f"the certificate is now issued by {now.issuer} (was {before.issuer})"
    product = inspection.product(now.issuer)
    if product is not None and not _inspected(before.issuer):
        text += f": TLS inspection ({product}) was introduced"
    return text
