"""Every ranking rule, asserted as the WHOLE ordered list of causes, from an explicit table.

The table is written out by hand from the guide's and the contract's reasoning, not read back
from `causes.RANKING`: a swapped, deleted or misspelt rule there changes what `rank` returns
and one of these rows fails. Only `rank()`'s public shape is used (ids compare as strings).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest

from assure_doctor.causes import RANKING
from assure_doctor.ranking import rank

F = Mapping[str, object]

# One row per rule of causes.RANKING, in its order: (condition, the rule's facts, the whole
# ranking, most likely first).
RULES: list[tuple[str, F, tuple[str, ...]]] = [
    # DNS: a name that does not exist is a typo first; a resolver that does not answer is the
    # DNS service's; a name with no address is the platform's own DNS.
    ("dns_lookup_failed", {"kind": "nxdomain"}, ("config", "dns_service", "platform")),
    ("dns_lookup_failed", {"kind": "servfail"}, ("dns_service", "platform", "config")),
    ("dns_lookup_failed", {"kind": "timeout"}, ("dns_service", "firewall", "config")),
    ("dns_lookup_failed", {"kind": "refused"}, ("dns_service", "config", "platform")),
    ("dns_lookup_failed", {"kind": "nodata"}, ("platform", "dns_service", "config")),
    ("dns_lookup_failed", {"kind": "sinkhole"}, ("dns_service", "config", "platform")),
    ("dns_lookup_failed", {}, ("config", "dns_service", "platform")),
    # One family failed while the other works: the host answers, so the path is at fault.
    ("connect_failed", {"failed_family": "IPv4"}, ("routing", "firewall", "platform")),
    ("connect_failed", {"failed_family": "IPv6"}, ("routing", "firewall", "platform")),
    # TCP refused: on 443 a firewall rejects; on another port the URL's port is wrong.
    ("connect_failed", {"kind": "refused", "default_port": False},
     ("config", "firewall", "platform")),
    ("connect_failed", {"kind": "refused"}, ("firewall", "config", "platform")),
    ("connect_failed", {"kind": "unreachable"}, ("routing", "firewall", "platform")),
    ("connect_failed", {"kind": "blocked_locally"}, ("firewall", "config", "routing")),
    ("connect_failed", {}, ("firewall", "config", "platform")),
    # TCP timeout: the host answers elsewhere -> a stealth firewall; nothing answers -> routing.
    # One family failed while the other works: the host answers, so the path is at fault.
    ("connect_timeout", {"failed_family": "IPv4"}, ("routing", "firewall", "platform")),
    ("connect_timeout", {"failed_family": "IPv6"}, ("routing", "firewall", "platform")),
    ("connect_timeout", {"host_answers": True}, ("firewall", "platform", "routing")),
    ("connect_timeout", {"host_answers": False}, ("routing", "firewall", "platform")),
    ("connect_timeout", {}, ("routing", "firewall", "platform")),
    # Certificates: a date problem is the clock's unless the server's clock agrees with ours.
    ("tls_certificate_error", {"kind": "expired", "clock_explains": False},
     ("platform", "clock", "config")),
    ("tls_certificate_error", {"kind": "expired"}, ("clock", "platform", "config")),
    ("tls_certificate_error", {"kind": "not_yet_valid", "clock_explains": False},
     ("platform", "clock", "config")),
    ("tls_certificate_error", {"kind": "not_yet_valid"}, ("clock", "platform", "config")),
    ("tls_certificate_error", {"kind": "hostname_mismatch", "same_domain": True},
     ("config", "platform", "tls_interception")),
    ("tls_certificate_error", {"kind": "hostname_mismatch"},
     ("config", "tls_interception", "platform")),
    ("tls_certificate_error", {"kind": "unknown_issuer"},
     ("tls_interception", "platform", "config")),
    ("tls_certificate_error", {"kind": "self_signed"},
     ("tls_interception", "config", "platform")),
    ("tls_certificate_error", {"kind": "expiring"}, ("platform", "tls_interception")),
    # Verified only by this machine's store: an inspecting proxy whose root it trusts.
    ("tls_certificate_error", {"kind": "system_only"}, ("tls_interception", "config")),
    ("tls_certificate_error", {}, ("config", "clock", "platform")),
    # Handshakes: silence or a cut after connecting is a middlebox; plain HTTP is a wrong port.
    # Stalled at full size but through with small segments: a path MTU black hole.
    ("tls_handshake_failed", {"kind": "mtu"}, ("routing", "firewall", "platform")),
    ("tls_handshake_failed", {"kind": "timeout"}, ("firewall", "routing", "platform")),
    ("tls_handshake_failed", {"kind": "reset"}, ("firewall", "tls_interception", "platform")),
    ("tls_handshake_failed", {"kind": "not_tls"}, ("config", "tls_interception", "platform")),
    ("tls_handshake_failed", {"kind": "alert"}, ("platform", "tls_interception", "config")),
    ("tls_handshake_failed", {}, ("firewall", "platform", "config")),
    ("clock_skew", {}, ("clock", "platform")),
    # HTTP: a redirect off the host is someone else answering; on it, the URL is old.
    ("http_redirect", {"location_host": "other"}, ("tls_interception", "config", "platform")),
    ("http_redirect", {}, ("config", "tls_interception", "platform")),
    ("http_bad_request", {}, ("config", "tls_interception", "platform")),
    ("http_unauthorized", {"kind": "no_key"}, ("missing_key", "config")),
    ("http_unauthorized", {"kind": "key_missing_reported"},
     ("missing_key", "invalid_key", "wrong_stack")),
    ("http_unauthorized", {"kind": "wrong_stack_reported"},
     ("wrong_stack", "invalid_key", "missing_key")),
    ("http_unauthorized", {}, ("invalid_key", "wrong_stack", "missing_key")),
    ("http_not_found", {}, ("wrong_url", "config", "platform")),
    ("http_throttled", {}, ("rate_limited", "config")),
    ("http_server_error", {"kind": "gateway"}, ("platform", "tls_interception")),
    ("http_server_error", {}, ("platform", "tls_interception")),
    ("http_timeout", {}, ("platform", "firewall", "routing")),
    ("http_unexpected", {"kind": "method"}, ("wrong_url", "config", "platform")),
    ("http_unexpected", {"kind": "disconnect"}, ("platform", "firewall", "config")),
    ("http_unexpected", {}, ("config", "platform")),
    # Proxies: the proxy's own configuration or policy first.
    # A proxy name that does not exist is its setting; one that does not resolve is DNS.
    ("proxy_connect_failed", {"step": "dns", "kind": "nxdomain"}, ("proxy", "dns_service")),
    ("proxy_connect_failed", {"step": "dns"}, ("dns_service", "proxy", "firewall")),
    ("proxy_connect_failed", {"kind": "unreachable"}, ("routing", "proxy", "firewall")),
    ("proxy_connect_failed", {"kind": "timeout"}, ("proxy", "firewall", "routing")),
    ("proxy_connect_failed", {}, ("proxy", "firewall", "routing")),
    ("proxy_auth_required", {}, ("proxy", "config")),
    # A 403 is the proxy's policy; no HTTP answer at all is likely not an HTTP proxy.
    ("proxy_refused", {"kind": "refused"}, ("proxy", "config")),
    ("proxy_refused", {}, ("config", "proxy")),
    # No answer to CONNECT: the proxy is stuck; a 502/503/504: beyond the proxy.
    ("proxy_upstream_failed", {"kind": "timeout"}, ("proxy", "platform", "firewall")),
    ("proxy_upstream_failed", {}, ("platform", "proxy", "firewall")),
    # The tool itself: a bug, nothing else.
    ("internal_error", {}, ("tool",)),
]

# Facts that match no rule of their own, and facts beside a rule's: the rule they fall to.
EXTRA: list[tuple[str, F, tuple[str, ...]]] = [
    ("dns_lookup_failed", {"kind": "other"}, ("config", "dns_service", "platform")),
    ("connect_failed", {"kind": "refused", "default_port": True},
     ("firewall", "config", "platform")),
    ("connect_failed", {"kind": "unreachable", "default_port": False},
     ("routing", "firewall", "platform")),
    ("connect_failed", {"kind": "reset"}, ("firewall", "config", "platform")),
    ("connect_timeout", {"host_answers": None}, ("routing", "firewall", "platform")),
    ("tls_certificate_error", {"kind": "expired", "clock_explains": True},
     ("clock", "platform", "config")),
    ("tls_certificate_error", {"kind": "not_yet_valid", "clock_explains": True},
     ("clock", "platform", "config")),
    ("tls_certificate_error", {"kind": "hostname_mismatch", "same_domain": False},
     ("config", "tls_interception", "platform")),
    ("tls_certificate_error", {"kind": "revoked"}, ("config", "clock", "platform")),
    ("tls_handshake_failed", {"kind": "error"}, ("firewall", "platform", "config")),
    ("clock_skew", {"kind": "anything"}, ("clock", "platform")),
    ("http_redirect", {"location_host": "same"}, ("config", "tls_interception", "platform")),
    ("http_unauthorized", {"kind": "rejected"}, ("invalid_key", "wrong_stack", "missing_key")),
    ("http_server_error", {"kind": "api"}, ("platform", "tls_interception")),
    ("http_unexpected", {"kind": "status"}, ("config", "platform")),
    # A fact of one rule beside another kind must not pull that kind into its rule.
    ("connect_failed", {"kind": "blocked_locally", "default_port": False},
     ("firewall", "config", "routing")),
    ("connect_failed", {"kind": "reset", "default_port": False},
     ("firewall", "config", "platform")),
    ("tls_certificate_error", {"kind": "hostname_mismatch", "clock_explains": False},
     ("config", "tls_interception", "platform")),
    ("tls_certificate_error", {"kind": "not_yet_valid", "same_domain": True},
     ("clock", "platform", "config")),
    ("tls_certificate_error", {"kind": "unknown_issuer", "clock_explains": True,
                               "same_domain": True}, ("tls_interception", "platform", "config")),
    ("tls_certificate_error", {"kind": "self_signed", "clock_explains": False,
                               "same_domain": True}, ("tls_interception", "config", "platform")),
    ("tls_certificate_error", {"kind": "expiring", "clock_explains": False,
                               "same_domain": True}, ("platform", "tls_interception")),
    ("http_unauthorized", {"kind": "no_key", "location_host": "other"},
     ("missing_key", "config")),
]
EXPECTED = RULES + EXTRA


def ids(condition: str, facts: F) -> tuple[str, ...]:
    return tuple(str(cause.id) for cause in rank(condition, facts))


@pytest.mark.parametrize(("condition", "facts", "expected"), EXPECTED,
                         ids=[f"{c}-{'-'.join(map(str, f.values())) or 'any'}"
                              for c, f, _ in EXPECTED])
def test_whole_ranking(condition: str, facts: F, expected: tuple[str, ...]) -> None:
    assert ids(condition, facts) == expected


def test_the_rules_are_these_in_this_order() -> None:
    """A rule added, dropped, renamed or moved in RANKING is one nobody has checked here."""
    actual = [(str(condition), {str(key): value for key, value in when.items()})
              for condition, rules in RANKING.items() for when, _ in rules]
    assert actual == [(condition, dict(facts)) for condition, facts, _ in RULES]


def test_facts_that_name_no_rule_are_ignored() -> None:
    """Extra facts (host, port, ...) never change the order; only the rule's facts do."""
    extra = {"host": "api.uk2.sheassure.net", "port": 443, "address": "192.0.2.7"}
    for condition, facts, expected in EXPECTED:
        assert ids(condition, {**facts, **extra}) == expected


# Facts as the probes report them, with values distinctive enough to find in the advice.
FACTS: dict[str, object] = {
    "host": "api.zz9.sheassure.net", "port": 8443, "address": "192.0.2.77",
    "resolver": "198.51.100.53:53", "error": "Connection refused (ECONNREFUSED)",
    "issuer": "CN=Inspecting Proxy CA", "cert_names": "portal.example.net",
    "not_before": "2026-01-02T00:00:00+00:00", "not_after": "2026-03-04T00:00:00+00:00",
    "skew_text": "3 days 0 h behind the API's", "verify_error": "certificate has expired",
    "kind_text": "got no answer", "status_code": 302, "location": "https://portal.example/x",
    "response_body": "odd body 4711", "timeout": 7.5, "retry_after": 42,
    "url": "https://api.zz9.sheassure.net:8443/v2/pong",
}

# (condition, cause) -> facts its advice must state: each names what the user must act on.
MUST_NAME: list[tuple[str, str, tuple[str, ...]]] = [
    ("dns_lookup_failed", "config", ("host",)),
    ("dns_lookup_failed", "dns_service", ("resolver",)),
    ("dns_lookup_failed", "firewall", ("resolver",)),
    ("dns_lookup_failed", "platform", ("host",)),
    ("connect_failed", "config", ("address", "port")),
    ("connect_failed", "firewall", ("host", "port", "error")),
    ("connect_timeout", "firewall", ("host", "port")),
    ("connect_timeout", "routing", ("address",)),
    ("connect_failed", "routing", ("address",)),
    ("tls_certificate_error", "config", ("host", "cert_names")),
    ("tls_certificate_error", "clock", ("not_before", "not_after", "skew_text")),
    ("tls_certificate_error", "platform", ("verify_error",)),
    ("tls_certificate_error", "tls_interception", ("issuer", "host")),
    ("tls_handshake_failed", "firewall", ("kind_text", "host", "port")),
    ("tls_handshake_failed", "tls_interception", ("host",)),
    ("tls_handshake_failed", "config", ("address", "port", "error")),
    ("clock_skew", "clock", ("skew_text",)),
    ("http_redirect", "config", ("status_code", "location")),
    ("http_redirect", "tls_interception", ("location", "host")),
    ("http_bad_request", "config", ("response_body",)),
    ("http_unauthorized", "wrong_stack", ("host",)),
    ("http_not_found", "wrong_url", ("url",)),
    ("http_throttled", "rate_limited", ("retry_after",)),
    ("http_server_error", "platform", ("status_code", "response_body")),
    ("http_timeout", "platform", ("timeout",)),
    ("http_unexpected", "config", ("status_code", "response_body")),
    ("http_unexpected", "wrong_url", ("url",)),
]


def advice(condition: str, cause: str, facts: F) -> str:
    for rules in RANKING[condition]:
        for found in rank(condition, {**facts, **rules[0]}):
            if str(found.id) == cause:
                return found.advice
    raise AssertionError(f"{cause} is never a cause of {condition}")


@pytest.mark.parametrize(("condition", "cause", "names"), MUST_NAME,
                         ids=[f"{c}-{k}" for c, k, _ in MUST_NAME])
def test_advice_names_the_facts(condition: str, cause: str, names: tuple[str, ...]) -> None:
    text = advice(condition, cause, FACTS)
    for name in names:
        assert str(FACTS[name]) in text, f"{condition}/{cause} advice does not name {name}"


# (condition, cause) -> words of its own advice, where no fact tells it from the cause's
# generic advice: the advice of that condition, not a generic sentence, must be the one shown.
OWN_WORDS: list[tuple[str, str, str]] = [
    ("connect_timeout", "firewall", "stealth"),
    ("connect_timeout", "routing", "Nothing on 192.0.2.77 answered"),
    ("tls_handshake_failed", "routing", "MTU"),
    ("tls_handshake_failed", "tls_interception", "cutting or answering the handshake"),
    ("clock_skew", "platform", "the API's own clock is wrong"),
    ("http_bad_request", "tls_interception", "rewriting requests"),
    ("http_not_found", "config", "https://api.<stack>.sheassure.net/v1/ping for your stack"),
    ("http_throttled", "config", "10,000 requests a day"),
    ("http_server_error", "tls_interception", "502/503/504"),
    ("http_timeout", "firewall", "holds requests"),
    ("dns_lookup_failed", "platform", "other networks or resolvers"),
    ("dns_lookup_failed", "firewall", "port 53"),
]


@pytest.mark.parametrize(("condition", "cause", "words"), OWN_WORDS,
                         ids=[f"{c}-{k}" for c, k, _ in OWN_WORDS])
def test_advice_is_the_conditions_own(condition: str, cause: str, words: str) -> None:
    assert words in advice(condition, cause, FACTS)


def test_firewall_advice_names_host_and_port() -> None:
    causes = rank("connect_failed", {"kind": "refused", "default_port": True,
                                     "host": "api.uk2.sheassure.net", "port": 443,
                                     "address": "192.0.2.7", "error": "refused"})
    assert str(causes[0].id) == "firewall"
    assert "api.uk2.sheassure.net port 443" in causes[0].advice


def test_every_advice_is_filled_when_the_facts_are_known() -> None:
    """With every fact known, no advice shows a placeholder or the 'not known' filler."""
    for condition, rules in RANKING.items():
        for when, _ in rules:
            for cause in rank(condition, {**FACTS, **when}):
                assert "(not known)" not in cause.advice, (condition, cause.id, cause.advice)
                assert not re.search(r"[{}]", cause.advice), (condition, cause.id)
                assert cause.title and cause.advice


def test_unknown_facts_read_as_not_known() -> None:
    text = rank("connect_timeout", {"host_answers": True})[0].advice
    assert "(not known) port (not known)" in text
    none = rank("connect_timeout", {"host_answers": True, "host": None, "port": None})[0]
    assert none.advice == text


def test_specific_advice_differs_by_condition() -> None:
    """The same cause gets the advice of its condition, not one generic sentence."""
    firewall = {condition: advice(condition, "firewall", FACTS) for condition in
                ("dns_lookup_failed", "connect_failed", "connect_timeout",
                 "tls_handshake_failed", "http_timeout")}
    assert len(set(firewall.values())) == len(firewall)
    assert "DNS" in firewall["dns_lookup_failed"]
    assert "refused" in firewall["connect_failed"]
    assert "stealth" in firewall["connect_timeout"]
    assert "TLS" in firewall["tls_handshake_failed"]
