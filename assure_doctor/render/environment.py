"""The environment a check ran in, for a support ticket, without a secret.

Tool and platform, resolvers, the proxy and where it came from, which trust stores verified the
certificate, the certificate itself, the addresses tried per family and allow-listed response
headers. The key appears only as its source and length (`KeyInfo`).
"""

from __future__ import annotations

import ipaddress
import platform
from collections.abc import Mapping

from assure_doctor.model import Report, platform_info, tool
from assure_doctor.options import CheckOptions
from assure_doctor.probes.results import PingFound
from assure_doctor.render import words

# Response headers worth a ticket that can never carry the key or a session: no Set-Cookie,
# no Location, nothing that echoes the request.
_CERT_FIELDS = (("subject", "subject"), ("issuer", "issuer"), ("not_before", "valid from"),
                ("not_after", "valid until"), ("sha256", "SHA-256 fingerprint"),
                ("names", "names"))


def facts(report: Report, options: CheckOptions | None) -> list[tuple[str, str]]:
    """(label, value) rows, every outside value sanitised."""
    made_by, system = tool(), platform_info()
    rows = [
        ("tool", f"{made_by['name']} {made_by['version']}"),
        ("Python", f"{system['python']} ({platform.python_implementation()})"),
        ("OS", words.outside(platform.platform())),
        ("API key", words.key_text(report.key_info)),
        ("resolver used", words.outside(report.resolver)),
        ("resolvers given", ", ".join(map(str, options.resolvers)) if options and
         options.resolvers else "none (the system's)"),
        ("proxy", _proxy(report)),
        ("CA bundle", words.outside(options.ca_bundle) if options and options.ca_bundle
         else "none"),
        ("trust", _trust(report)),
    ]
    tls = report.stage("tls")
    evidence = tls.evidence if tls else {}
    rows += [(f"certificate {label}", words.value(evidence[key], 500))
             for key, label in _CERT_FIELDS if evidence.get(key) not in (None, "", [])]
    chain = evidence.get("chain")
    if isinstance(chain, list):  # the chain as presented, when the tls stage records it
        rows += [(f"chain certificate {number}", words.value(certificate, 800))
                 for number, certificate in enumerate(chain[:10], 1)]
    rows += _addresses(report)
    rows += [(f"header {name}", value) for name, value in headers(report)]
    return rows


def _proxy(report: Report) -> str:
    stage = report.stage("proxy")
    if stage is None:
        return "not examined by this version (direct connection)"
    evidence = stage.evidence
    pac = evidence.get("pac")
    chosen = ""
    if isinstance(pac, dict):
        chosen = (f"; the PAC at {words.outside(pac.get('url'), 200)} ("
                  f"{words.outside(pac.get('source'), 40)}) returned "
                  f"'{words.outside(pac.get('rule'), 300)}'")
    if not evidence.get("proxy"):
        return words.outside(stage.summary) + chosen
    return (f"{words.outside(evidence['proxy'])} (from "
            f"{words.outside(evidence.get('source') or 'unknown')}){chosen}")


def _trust(report: Report) -> str:
    tls = report.stage("tls")
    trust = tls.evidence.get("trust") if tls else None
    if not isinstance(trust, Mapping):
        return "not recorded"
    said = {True: "verified", False: "did not verify", None: "not used"}
    return ", ".join(f"{words.outside(store)} {said.get(result, words.outside(result))}"
                     for store, result in trust.items())


def _addresses(report: Report) -> list[tuple[str, str]]:
    """The addresses tcp tried, per family, each with its outcome."""
    tcp = report.stage("tcp")
    attempts = tcp.evidence.get("attempts") if tcp else None
    if not isinstance(attempts, list):
        return []
    families: dict[str, list[str]] = {}
    for attempt in attempts:
        if not isinstance(attempt, Mapping):
            continue
        address = str(attempt.get("address"))
        families.setdefault(_family(address), []).append(
            f"{words.outside(address, 60)} {words.outside(attempt.get('outcome'), 40)}"
            + (f" ({words.outside(attempt['error'], 80)})" if attempt.get("error") else ""))
    return [(f"addresses tried ({family})", ", ".join(tried))
            for family, tried in sorted(families.items())]


def _family(address: str) -> str:
    try:
        return f"IPv{ipaddress.ip_address(address).version}"
    except ValueError:
        return "other"


def headers(report: Report) -> list[tuple[str, str]]:
    """The allow-listed headers of the last ping response (the ping keeps only those)."""
    ping = report.found(PingFound)
    return [] if ping is None else [(words.outside(name, 40), words.outside(value, 200))
                                    for name, value in ping.headers]
