"""The ranking is a pure function of the evidence, tested without any I/O."""

from __future__ import annotations

import re

import pytest

from assure_doctor.causes import ADVICE, CAUSE_TITLES, CONDITIONS, RANKING
from assure_doctor.ranking import rank

CONTRACT_CONDITIONS = {
    "dns_lookup_failed", "connect_failed", "connect_timeout", "tls_certificate_error",
    "tls_handshake_failed", "clock_skew", "http_redirect", "http_bad_request",
    "http_unauthorized", "http_not_found", "http_throttled", "http_server_error",
    "http_timeout", "http_unexpected", "proxy_connect_failed", "proxy_auth_required",
    "proxy_refused", "proxy_upstream_failed", "internal_error",
}
CONTRACT_CAUSES = {
    "config", "dns_service", "firewall", "routing", "clock", "platform", "tls_interception",
    "missing_key", "invalid_key", "wrong_stack", "wrong_url", "rate_limited", "proxy",
}
# Not in the contract: internal_error's only cause, the tool itself.
EXTRA_CAUSES = {"tool"}


def ids(condition: str, **facts: object) -> list[str]:
    return [cause.id for cause in rank(condition, facts)]


def test_tables_use_exactly_the_contract_ids() -> None:
    assert set(CONDITIONS) == CONTRACT_CONDITIONS
    assert set(CAUSE_TITLES) == CONTRACT_CAUSES | EXTRA_CAUSES
    assert set(RANKING) == CONTRACT_CONDITIONS
    for rules in RANKING.values():
        assert rules[-1][0] == {}, "every condition needs a catch-all rule last"
        for _, order in rules:
            assert set(order) <= CONTRACT_CAUSES | EXTRA_CAUSES
            assert len(set(order)) == len(order)
    for condition, cause in ADVICE:
        assert condition in CONDITIONS and cause in CAUSE_TITLES


@pytest.mark.parametrize(("condition", "facts", "first"), [
    ("dns_lookup_failed", {"kind": "nxdomain"}, "config"),
    ("dns_lookup_failed", {"kind": "timeout"}, "dns_service"),
    ("dns_lookup_failed", {"kind": "servfail"}, "dns_service"),
    ("dns_lookup_failed", {"kind": "nodata"}, "platform"),
    ("connect_failed", {"kind": "refused", "default_port": True}, "firewall"),
    ("connect_failed", {"kind": "refused", "default_port": False}, "config"),
    ("connect_failed", {"kind": "unreachable"}, "routing"),
    ("connect_timeout", {"host_answers": True}, "firewall"),
    ("connect_timeout", {"host_answers": False}, "routing"),
    ("tls_certificate_error", {"kind": "not_yet_valid", "clock_explains": True}, "clock"),
    ("tls_certificate_error", {"kind": "expired", "clock_explains": False}, "platform"),
    ("tls_certificate_error", {"kind": "expired", "clock_explains": None}, "clock"),
    ("tls_certificate_error", {"kind": "unknown_issuer"}, "tls_interception"),
    ("tls_certificate_error", {"kind": "hostname_mismatch"}, "config"),
    ("tls_handshake_failed", {"kind": "not_tls"}, "config"),
    ("http_unauthorized", {"kind": "rejected"}, "invalid_key"),
    ("http_unauthorized", {"kind": "key_missing_reported"}, "missing_key"),
    ("http_unauthorized", {"kind": "wrong_stack_reported"}, "wrong_stack"),
    ("http_redirect", {"location_host": "other"}, "tls_interception"),
    ("http_redirect", {"location_host": "same"}, "config"),
    ("http_throttled", {}, "rate_limited"),
    ("http_server_error", {"kind": "api"}, "platform"),
    ("tls_certificate_error", {"kind": "system_only"}, "tls_interception"),
    ("tls_handshake_failed", {"kind": "mtu"}, "routing"),
    ("tls_handshake_failed", {"kind": "timeout"}, "firewall"),  # small segments stalled too
    ("proxy_connect_failed", {"step": "dns", "kind": "nxdomain"}, "proxy"),
    ("proxy_connect_failed", {"step": "dns", "kind": "timeout"}, "dns_service"),
    ("proxy_connect_failed", {"step": "tcp", "kind": "refused"}, "proxy"),
    ("proxy_connect_failed", {"step": "tcp", "kind": "unreachable"}, "routing"),
    ("proxy_auth_required", {"kind": "unanswerable"}, "proxy"),
    ("proxy_refused", {"kind": "refused"}, "proxy"),
    ("proxy_refused", {"kind": "not_http"}, "config"),
    ("proxy_upstream_failed", {"kind": "upstream"}, "platform"),
    ("proxy_upstream_failed", {"kind": "timeout"}, "proxy"),
])
def test_evidence_decides_the_most_likely_cause(condition: str, facts: dict[str, object],
                                                first: str) -> None:
    assert ids(condition, **facts)[0] == first


def test_same_condition_ranks_differently_on_different_evidence() -> None:
    agree = ids("tls_certificate_error", kind="expired", clock_explains=False)
    explained = ids("tls_certificate_error", kind="expired", clock_explains=True)
    assert agree != explained
    assert sorted(agree) == sorted(explained)


def test_advice_is_filled_from_facts_and_never_leaks_braces() -> None:
    causes = rank("connect_failed", {"kind": "refused", "host": "api.uk2.sheassure.net",
                                     "port": 443, "address": "192.0.2.7", "error": "refused"})
    text = " ".join(cause.advice for cause in causes)
    assert "api.uk2.sheassure.net" in text
    for condition, rules in RANKING.items():
        for when, _ in rules:
            for cause in rank(condition, dict(when)):
                assert not re.search(r"\{\w+\}", cause.advice), (condition, cause)


def test_unknown_condition_is_an_error() -> None:
    with pytest.raises(ValueError):
        rank("no_such_condition", {})


def test_kind_specific_advice_comes_before_the_general_wording() -> None:
    ntlm = rank("proxy_auth_required", {"kind": "unanswerable", "schemes": "NTLM",
                                        "proxy": "http://p:8080", "host": "api"})[0].advice
    basic = rank("proxy_auth_required", {"kind": "answerable", "schemes": "Basic",
                                         "proxy": "http://p:8080", "host": "api"})[0].advice
    refused = rank("proxy_auth_required", {"kind": "answerable", "schemes": "Basic",
                                           "has_credentials": True, "proxy": "http://p:8080",
                                           "host": "api"})[0].advice
    assert "only NTLM" in ntlm and "cannot answer" in ntlm
    assert "--proxy http://user:password@host:port" in basic
    assert "refused the credentials given" in refused
    mtu = rank("tls_handshake_failed", {"kind": "mtu", "mss": 500, "host": "api"})[0].advice
    assert "MTU" in mtu and "500-byte" in mtu
