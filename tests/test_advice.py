"""Advice is a function of the evidence and never contradicts it.

Every (condition, rule, advice wording) path of the cause tables is rendered with the facts a
probe gives, and every sentence that states a fact is checked against those facts by claims
written here, independently of the tables' own `when` conditions.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from assure_doctor.causes import ADVICE, CONDITIONS, GENERIC, RANKING, WARNING_TITLES, title
from assure_doctor.kinds import (
    CertKind,
    ChainLink,
    Condition,
    ConnectKind,
    DnsKind,
    Family,
    HandshakeKind,
    HttpKind,
    OsFailure,
    PacKind,
    PinSource,
    ProxyKind,
    ProxyStep,
)
from assure_doctor.model import Status
from assure_doctor.ranking import placeholders, rank

BASE: dict[str, Any] = {"host": "api.uk2.sheassure.net", "port": 443,
                        "url": "https://api.uk2.sheassure.net/v1/ping", "timeout": 5.0,
                        "resolver": "192.0.2.53", "address": "192.0.2.7"}
# What each condition's probe reports besides the facts its rules name.
SAMPLE: Mapping[Condition, dict[str, Any]] = {
    Condition.DNS_LOOKUP_FAILED: {"rcode": "NXDOMAIN", "addresses": "0.0.0.0",
                                  "error": "The DNS operation timed out",
                                  "os_error": "EAI_NONAME: Name or service not known",
                                  "dns_addresses": "192.0.2.8",
                                  "broken_link": "gw-uk2.example.net",
                                  "chain_text": "api.uk2.sheassure.net → gw-uk2.example.net",
                                  "hosts_file": "/etc/hosts", "hosts_line": 5,
                                  "pinned_address": "0.0.0.0"},
    Condition.CONNECT_FAILED: {"default_port": True, "error": "Connection refused",
                               "hosts_file": "/etc/hosts", "hosts_line": 5,
                               "pinned_address": "192.0.2.7", "dns_addresses": "192.0.2.8",
                               "path_finding": "the SYN is rejected at hop 4.",
                               "address_was": "192.0.2.9 (from DNS)"},
    Condition.CONNECT_TIMEOUT: {"kind": ConnectKind.TIMEOUT, "error": "timed out",
                                "hosts_file": "/etc/hosts", "hosts_line": 5,
                                "pinned_address": "192.0.2.7", "dns_addresses": "192.0.2.8",
                                "path_finding": "the SYN is dropped after hop 2.",
                                "address_was": "192.0.2.9 (from DNS)"},
    Condition.TLS_CERTIFICATE_ERROR: {
        "verify_error": "certificate has expired", "issuer": "CN=Example CA",
        "cert_names": "api.uk2.sheassure.net", "not_before": "2026-01-01 00:00 UTC",
        "not_after": "2026-04-01 00:00 UTC", "same_domain": False,
        "skew_text": "3 days 0 h behind the API's", "product": "Zscaler",
        "cert_subject": "CN=Example Issuing CA", "missing_intermediate": "CN=Example CA 2",
        "aia_url": "http://aia.example/ca2.crt"},
    Condition.TLS_HANDSHAKE_FAILED: {"kind_text": "got no answer", "error": "timed out",
                                     "mss": 500, "path_finding": "the path is open."},
    Condition.CLOCK_SKEW: {"kind": "behind", "skew_text": "90.0 s behind the API's"},
    Condition.HTTP_REDIRECT: {"status_code": 301, "location": "/v2/ping",
                              "location_host": "same"},
    Condition.PROXY_CONNECT_FAILED: {"proxy": "http://proxy.example:3128",
                                     "proxy_source": "HTTPS_PROXY",
                                     "error": "Connection refused",
                                     "path_finding": "the SYN is dropped after hop 1.",
                                     "pac_source": "the --pac option",
                                     "pac_url": "http://pac.example/proxy.pac",
                                     "pac_rule": "SOCKS5 socks.example:1080",
                                     "pac_waiting": "slow.corp.example"},
    Condition.PROXY_AUTH_REQUIRED: {"proxy": "http://proxy.example:3128",
                                    "proxy_authenticate": "Basic, NTLM", "schemes": "NTLM",
                                    "proxy_source": "--proxy", "status_code": 407},
    Condition.PROXY_REFUSED: {"proxy": "http://proxy.example:3128", "status_code": 403,
                              "title": "Access Denied", "proxy_source": "HTTPS_PROXY"},
    Condition.PROXY_UPSTREAM_FAILED: {"proxy": "http://proxy.example:3128", "status_code": 502,
                                      "title": "Bad Gateway", "proxy_source": "system"},
    Condition.INTERNAL_ERROR: {"exception": "RuntimeError: boom"},
}
HTTP_SAMPLE = {"status_code": 500, "response_body": '{"message": "x"}', "retry_after": "2",
               "location": None, "error": None}


def status_of(condition: Condition, facts: Mapping[str, Any]) -> Status:
    """The status a stage reports for these facts: the warnings the probes give."""
    if condition is Condition.CLOCK_SKEW or facts.get("failed_family") is not None:
        return Status.WARN
    if facts.get("kind") in (CertKind.EXPIRING, CertKind.SYSTEM_ONLY):
        return Status.WARN
    return Status.FAIL


def _is(key: str, value: object) -> Callable[[Mapping[str, Any], Condition], bool]:
    return lambda facts, _condition: facts.get(key) == value


def _http(facts: Mapping[str, Any], condition: Condition) -> bool:
    return condition.startswith("http_")


# A sentence stating a fact (regex) → the facts under which that statement is true.
CLAIMS: tuple[tuple[str, Callable[[Mapping[str, Any], Condition], bool]], ...] = (
    (r"Nothing on \S+ answered", _is("host_answers", False)),
    (r"now comes from the hosts file", _is("address_moved_by", "hosts")),
    (r"now resolves to", _is("address_moved_by", "dns")),
    (r"issuer changed to", _is("inspection_introduced", True)),
    (r"TCP path is open", _is("path_ending", "reached")),
    (r"answers on another port", _is("host_answers", True)),
    (r"\bno route\b", _is("kind", ConnectKind.UNREACHABLE)),
    (r"points away from the API", _is("location_host", "other")),
    (r"redirect stays on", lambda f, _c: f.get("location_host") != "other"),
    (r"exempt \S+ from TLS inspection",
     lambda f, c: c is Condition.TLS_CERTIFICATE_ERROR and f.get("kind") != CertKind.EXPIRING),
    (r"(certificate|it) verified", _is("kind", CertKind.EXPIRING)),
    (r"does not exist", _is("kind", DnsKind.NXDOMAIN)),
    (r"did not answer within", _is("kind", DnsKind.TIMEOUT)),
    (r"actively refused", _is("kind", ConnectKind.REFUSED)),
    (r"blocked on this machine", _is("kind", ConnectKind.BLOCKED_LOCALLY)),
    (r"Nothing accepts connections", _is("kind", ConnectKind.REFUSED)),
    (r"(IPv4|IPv6) works", lambda f, _c: f.get("failed_family") is not None),
    (r"not valid at the API's own time", _is("clock_explains", False)),
    (r"broken at its intermediate", _is("link", ChainLink.INTERMEDIATE)),
    (r"broken at its root", _is("link", ChainLink.ROOT)),
    (r"without the intermediate", _is("kind", CertKind.MISSING_INTERMEDIATE)),
    (r"this machine's clock is \d", _is("clock_explains", True)),
    (r"does not trust", _is("kind", CertKind.UNKNOWN_ISSUER)),
    (r"is self-signed", _is("kind", CertKind.SELF_SIGNED)),
    (r"does not speak TLS", _is("kind", HandshakeKind.NOT_TLS)),
    (r"TCP and TLS to \S+ worked", _http),
    (r"answer 502/503/504", _is("kind", HttpKind.GATEWAY)),
    (r"trust store trusts its root", _is("kind", CertKind.SYSTEM_ONLY)),
    (r"segments (get through|completed)", _is("kind", HandshakeKind.MTU)),
    (r"refused the credentials", _is("has_credentials", True)),
    (r"can take Basic", _is("kind", ProxyKind.ANSWERABLE)),
    (r"offers only", _is("kind", ProxyKind.UNANSWERABLE)),
    (r"no answer to CONNECT", _is("kind", ProxyKind.TIMEOUT)),
    (r"no proper HTTP answer",
     lambda f, _c: f.get("kind") in (ProxyKind.NOT_HTTP, ProxyKind.CLOSED, ProxyKind.ERROR)),
    (r"proxy's name does not resolve", _is("step", ProxyStep.DNS)),
    (r"Connections to the proxy", _is("step", ProxyStep.TCP)),
    (r"line \S+ (pins|maps)", _is("pinned_by", PinSource.HOSTS_FILE)),
    (r"is an alias of", _is("alias_broken", True)),
    (r"which blocks it", _is("kind", DnsKind.SINKHOLE)),
    (r"own resolver does not|resolver does not find|resolver got",
     _is("kind", DnsKind.SYSTEM_FAILED)),
    (r"resolver got no answer", _is("os_failure", OsFailure.TEMPORARY)),
    (r"refused or failed the query", _is("os_failure", OsFailure.FAILED)),
    (r"DNS filter", _is("kind", DnsKind.SINKHOLE)),
    (r"answered \S+ instead of an address",
     lambda f, _c: f.get("kind") in (DnsKind.SERVFAIL, DnsKind.REFUSED)),
    (r"no answer at all", lambda f, _c: f.get("host_answers") is not True),
    (r"advertises IPv\d without carrying it", _is("failed_family", Family.IPV6)),
    (r"something else is answering", _is("kind", CertKind.HOSTNAME_MISMATCH)),
    (r"clock is wrong",
     lambda _f, c: c in (Condition.CLOCK_SKEW, Condition.TLS_CERTIFICATE_ERROR)),
    (r"[Tt]he proxy (\([^)]*\) )?answered", _is("kind", ProxyKind.UPSTREAM)),
    (r"PAC", lambda f, _c: f.get("step") == ProxyStep.PAC or f.get("kind") in set(PacKind)),
    (r"could not be fetched", _is("kind", PacKind.FETCH)),
    (r"did not arrive", _is("kind", PacKind.FETCH_TIMEOUT)),
    (r"did not return from FindProxyForURL", _is("kind", PacKind.EVAL_TIMEOUT)),
    (r"waited for DNS|still waiting for the operating system's resolver",
     lambda f, _c: f.get("kind") == PacKind.EVAL_TIMEOUT and f.get("pac_dns_wait") is True),
    (r"cannot be evaluated", _is("kind", PacKind.EVAL)),
    (r"no HTTP proxy", _is("kind", PacKind.NO_ROUTE)),
)


def contradictions(text: str, facts: Mapping[str, Any], condition: Condition) -> list[str]:
    return [pattern for pattern, holds in CLAIMS
            if re.search(pattern, text) and not holds(facts, condition)]


def _merged(*parts: Mapping[str, Any]) -> dict[str, Any] | None:
    """The union of fact sets, or None where two of them disagree on a fact."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key in merged and merged[key] is not None and merged[key] != value:
                return None
            merged[key] = value
    return merged


def paths() -> Iterator[tuple[Condition, dict[str, Any]]]:
    """Every (condition, rule, advice variant) with facts that make the variant eligible."""
    for condition, rules in RANKING.items():
        full = SAMPLE.get(condition, HTTP_SAMPLE if condition.startswith("http_") else {})
        for (when, order), sample in itertools.product(rules, (full, {})):
            variants = [a.when for cause in order
                        for a in (*ADVICE.get((condition, cause), ()), *GENERIC[cause])]
            for variant in [{}, *variants]:
                for side in ({}, {"host_answers": True}, {"host_answers": False},
                             {"clock_explains": True}, {"clock_explains": False}):
                    facts = _merged(BASE, dict(when), dict(variant), side)
                    if facts is None:
                        continue
                    facts = {**sample, **facts}
                    if facts.get("failed_family") is not None:
                        facts["working_family"] = Family(facts["failed_family"]).other
                    yield condition, facts


ALL_PATHS = list({repr(sorted(facts.items())) + condition: (condition, facts)
                  for condition, facts in paths()}.values())


def test_the_paths_cover_every_rule_and_every_advice_variant() -> None:
    used = set()
    for condition, facts in ALL_PATHS:
        for cause in rank(condition, facts):
            used.add((condition, cause.id, cause.advice))
    assert len(ALL_PATHS) > 300
    for (condition, cause), variants in ADVICE.items():
        texts = {advice for c, k, advice in used if (c, k) == (condition, cause)}
        for variant in variants:  # a wording no path reaches would be dead advice
            assert any(variant.text.split("{")[0] in t for t in texts), (condition, variant)


@pytest.mark.parametrize(("condition", "facts"), ALL_PATHS)
def test_advice_is_filled_and_never_contradicts_its_facts(condition: Condition,
                                                           facts: dict[str, Any]) -> None:
    causes = rank(condition, facts)
    assert causes
    for cause in causes:
        assert "None" not in cause.advice, cause
        assert not re.search(r"\{\w*\}", cause.advice), cause
        assert not contradictions(cause.advice, facts, condition), (cause.id, cause.advice)
    heading = title(condition, status_of(condition, facts))
    if status_of(condition, facts) is Status.WARN:
        assert not re.search(r"\b(error|fail\w*)\b", heading, re.I), heading


def test_the_claim_checker_catches_a_contradiction() -> None:
    """The check above can fail: the old tcp-timeout routing advice is caught."""
    old = "Nothing on 127.0.0.1 answered: packets may not be getting out."
    assert contradictions(old, {"host_answers": True}, Condition.CONNECT_TIMEOUT)
    assert not contradictions(old, {"host_answers": False}, Condition.CONNECT_TIMEOUT)


def test_the_last_generic_wording_of_every_cause_names_no_fact() -> None:
    for cause, variants in GENERIC.items():
        assert not variants[-1].when and not placeholders(variants[-1].text), cause


def test_every_condition_has_a_failure_and_a_warning_title() -> None:
    """A warning is never headed as an error, and each condition reads as its own."""
    assert set(CONDITIONS) == set(WARNING_TITLES) == set(Condition)
    for status in (Status.FAIL, Status.WARN):
        titles = [title(condition, status) for condition in Condition]
        assert all(titles) and len(set(titles)) == len(titles), status
    for condition in Condition:
        warning = title(condition, Status.WARN)
        assert not re.search(r"\b(error|fail\w*)\b", warning, re.I), warning
    # The guide's own names, where the user looks them up: HTTP codes and the SSL wording.
    assert "SSL certificate" in title("tls_certificate_error", Status.FAIL)
    assert "expiring" in title("tls_certificate_error", Status.WARN)
    for code, condition in (("401", "http_unauthorized"), ("404", "http_not_found"),
                            ("429", "http_throttled"), ("407", "proxy_auth_required")):
        assert code in title(condition, Status.FAIL), condition


@pytest.mark.parametrize(("condition", "facts", "banned"), [
    # tcp-timeout while another port answered: not "nothing answered".
    (Condition.CONNECT_TIMEOUT, {"kind": "timeout", "host_answers": True}, "Nothing on"),
    # http-slow: TCP and TLS passed, so not "no route".
    (Condition.HTTP_TIMEOUT, {}, "no route"),
    # http-301 to /v2/ping on the same host: not "points away from the API".
    (Condition.HTTP_REDIRECT, {"location_host": "same", "location": "/v2/ping",
                               "status_code": 301}, "points away"),
    # tls-expiring-soon: a verified certificate, not "exempt it from TLS inspection".
    (Condition.TLS_CERTIFICATE_ERROR, {"kind": "expiring", "issuer": "CN=sandbox CA",
                                       "verify_error": "expires in 5.0 days"}, "exempt"),
])
def test_known_contradictions_are_gone(condition: Condition, facts: dict[str, Any],
                                       banned: str) -> None:
    text = " ".join(cause.advice for cause in rank(condition, {**BASE, **facts}))
    assert banned not in text, text


def test_every_kind_the_tables_name_is_an_enum_member() -> None:
    """A misspelt kind would silently fall through to a catch-all rule."""
    kinds = (DnsKind, ConnectKind, CertKind, HandshakeKind, HttpKind, ProxyKind, PacKind)
    whens = [when for rules in RANKING.values() for when, _ in rules]
    whens += [a.when for variants in (*ADVICE.values(), *GENERIC.values()) for a in variants]
    for when in whens:
        if "kind" in when:
            assert isinstance(when["kind"], kinds), when
