"""Every ranking rule, asserted as the WHOLE ordered list of causes, from an explicit table;
and every wording of the advice, asserted to be the one its facts choose and to name them.

The tables are written out by hand from the guide's and the contract's reasoning, not read
back from `causes`: a swapped, deleted or misspelt rule, advice variant or placeholder there
changes what `rank` returns and one of these rows fails. Only `rank()`'s public shape is used
(ids compare as strings).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

import pytest

from assure_doctor.causes import ADVICE, GENERIC, RANKING
from assure_doctor.kinds import CauseId, Condition
from assure_doctor.ranking import advice_for, rank

F = Mapping[str, object]
Row = tuple[str, F, tuple[str, ...]]


def row(condition: str, order: str, **facts: object) -> Row:
    """A rule: the facts it needs and the whole ranking (space-separated, most likely first)."""
    return condition, facts, tuple(order.split())


# One row per rule of causes.RANKING, in its order. Adding a rule there is one line here.
RULES: list[Row] = [
    # DNS: a name that does not exist is a typo first; a resolver that does not answer is the
    # DNS service's; a name with no address is the platform's own DNS.
    # ... unless the name typed exists, as an alias of one that does not: the vendor's DNS.
    row("dns_lookup_failed", "platform dns_service config", kind="nxdomain", alias_broken=True),
    row("dns_lookup_failed", "config dns_service platform", kind="nxdomain"),
    row("dns_lookup_failed", "dns_service platform config", kind="servfail"),
    row("dns_lookup_failed", "dns_service firewall config", kind="timeout"),
    row("dns_lookup_failed", "dns_service config platform", kind="refused"),
    row("dns_lookup_failed", "platform dns_service config", kind="nodata"),
    # A blocking address from this machine's own hosts file is its setup, not DNS's.
    row("dns_lookup_failed", "config", kind="sinkhole", pinned_by="hosts_file"),
    row("dns_lookup_failed", "dns_service config platform", kind="sinkhole"),
    # The system's resolver got no usable answer (EAI_AGAIN, EAI_FAIL) and DNS told no more.
    row("dns_lookup_failed", "dns_service firewall config", kind="system_failed",
        os_failure="temporary"),
    row("dns_lookup_failed", "dns_service config platform", kind="system_failed",
        os_failure="failed"),
    row("dns_lookup_failed", "config dns_service platform"),
    # The hosts file pinned the address that failed (DNS gives another): the pin first.
    row("connect_failed", "config firewall routing", pinned_by="hosts_file"),
    # An address that moved since the last good check: where it came from is at fault.
    row("connect_failed", "config firewall platform", address_moved_by="hosts"),
    row("connect_failed", "dns_service config platform", address_moved_by="dns"),
    # One family failed while the other works: the host answers, so the path is at fault.
    row("connect_failed", "routing firewall platform", failed_family="IPv4"),
    row("connect_failed", "routing firewall platform", failed_family="IPv6"),
    # A traceroute met a REJECT: a firewall answered, whatever the socket said.
    row("connect_failed", "firewall routing platform", path_ending="rejected"),
    # TCP refused: on 443 a firewall rejects; on another port the URL's port is wrong.
    row("connect_failed", "config firewall platform", kind="refused", default_port=False),
    row("connect_failed", "firewall config platform", kind="refused"),
    row("connect_failed", "routing firewall platform", kind="unreachable"),
    row("connect_failed", "firewall config routing", kind="blocked_locally"),
    row("connect_failed", "firewall config platform"),
    # TCP timeout: the host answers elsewhere -> a stealth firewall; nothing answers -> routing.
    row("connect_timeout", "config firewall routing", pinned_by="hosts_file"),
    row("connect_timeout", "config firewall platform", address_moved_by="hosts"),
    row("connect_timeout", "dns_service config platform", address_moved_by="dns"),
    row("connect_timeout", "routing firewall platform", failed_family="IPv4"),
    row("connect_timeout", "routing firewall platform", failed_family="IPv6"),
    row("connect_timeout", "firewall routing platform", path_ending="rejected"),
    row("connect_timeout", "firewall platform routing", host_answers=True),
    row("connect_timeout", "routing firewall platform", host_answers=False),
    row("connect_timeout", "routing firewall platform"),
    # Certificates: a date problem is the clock's unless the server's clock agrees with ours,
    # or (the clock unknown) the failing certificate is an intermediate or the root, whose leaf
    # passed the same clock's check: then the platform's chain.
    # The issuer became an inspection product since the last good check.
    row("tls_certificate_error", "tls_interception config platform",
        inspection_introduced=True),
    row("tls_certificate_error", "platform clock config", kind="expired", clock_explains=False),
    row("tls_certificate_error", "clock platform config", kind="expired", clock_explains=True),
    row("tls_certificate_error", "platform clock config", kind="expired", link="intermediate"),
    row("tls_certificate_error", "platform clock config", kind="expired", link="root"),
    row("tls_certificate_error", "clock platform config", kind="expired"),
    row("tls_certificate_error", "platform clock config", kind="not_yet_valid",
        clock_explains=False),
    row("tls_certificate_error", "clock platform config", kind="not_yet_valid",
        clock_explains=True),
    row("tls_certificate_error", "platform clock config", kind="not_yet_valid",
        link="intermediate"),
    row("tls_certificate_error", "platform clock config", kind="not_yet_valid", link="root"),
    row("tls_certificate_error", "clock platform config", kind="not_yet_valid"),
    # The chain completed from the leaf's AIA URL verifies: the server omits its intermediate.
    row("tls_certificate_error", "platform tls_interception", kind="missing_intermediate"),
    row("tls_certificate_error", "config platform tls_interception", kind="hostname_mismatch",
        same_domain=True),
    row("tls_certificate_error", "config tls_interception platform", kind="hostname_mismatch"),
    row("tls_certificate_error", "tls_interception platform config", kind="unknown_issuer"),
    row("tls_certificate_error", "tls_interception config platform", kind="self_signed"),
    row("tls_certificate_error", "platform tls_interception", kind="expiring"),
    # Verified only by this machine's store: an inspecting proxy whose root it trusts.
    row("tls_certificate_error", "tls_interception config", kind="system_only"),
    row("tls_certificate_error", "config clock platform"),
    # Handshakes: silence or a cut after connecting is a middlebox; plain HTTP is a wrong port.
    # Stalled at full size but through with small segments: a path MTU black hole.
    row("tls_handshake_failed", "routing firewall platform", kind="mtu"),
    row("tls_handshake_failed", "firewall routing platform", kind="timeout"),
    row("tls_handshake_failed", "firewall tls_interception platform", kind="reset"),
    row("tls_handshake_failed", "config tls_interception platform", kind="not_tls"),
    row("tls_handshake_failed", "platform tls_interception config", kind="alert"),
    row("tls_handshake_failed", "firewall platform config"),
    row("clock_skew", "clock platform"),
    # HTTP: a redirect off the host is someone else answering; on it, the URL is old.
    row("http_redirect", "tls_interception config platform", location_host="other"),
    row("http_redirect", "config tls_interception platform"),
    row("http_bad_request", "config tls_interception platform"),
    row("http_unauthorized", "missing_key invalid_key wrong_stack", kind="key_missing_reported"),
    row("http_unauthorized", "wrong_stack invalid_key missing_key", kind="wrong_stack_reported"),
    row("http_unauthorized", "invalid_key wrong_stack missing_key"),
    row("http_not_found", "wrong_url config platform"),
    row("http_throttled", "rate_limited config"),
    row("http_server_error", "platform tls_interception", kind="gateway"),
    row("http_server_error", "platform tls_interception"),
    row("http_timeout", "platform firewall routing"),
    row("http_unexpected", "wrong_url config platform", kind="method"),
    row("http_unexpected", "platform firewall config", kind="disconnect"),
    row("http_unexpected", "config platform"),
    # Proxies: the proxy's own configuration or policy first.
    # A proxy name that does not exist is its setting; one that does not resolve is DNS.
    row("proxy_connect_failed", "proxy dns_service", step="dns", kind="nxdomain"),
    row("proxy_connect_failed", "dns_service proxy firewall", step="dns"),
    row("proxy_connect_failed", "routing proxy firewall", kind="unreachable"),
    row("proxy_connect_failed", "proxy firewall routing", kind="timeout"),
    row("proxy_connect_failed", "proxy firewall routing"),
    row("proxy_auth_required", "proxy config"),
    # A 403 is the proxy's policy; no HTTP answer at all is likely not an HTTP proxy.
    row("proxy_refused", "proxy config", kind="refused"),
    row("proxy_refused", "config proxy"),
    # No answer to CONNECT: the proxy is stuck; a 502/503/504: beyond the proxy.
    row("proxy_upstream_failed", "proxy platform firewall", kind="timeout"),
    row("proxy_upstream_failed", "platform proxy firewall"),
    # The tool itself: a bug, nothing else.
    row("internal_error", "tool"),
]

# Facts that match no rule of their own, and facts beside a rule's: the rule they fall to.
EXTRA: list[Row] = [
    row("dns_lookup_failed", "config dns_service platform", kind="other"),
    # A broken alias with NODATA already ranks the platform first; SERVFAIL stays the service's.
    row("dns_lookup_failed", "platform dns_service config", kind="nodata", alias_broken=True),
    row("dns_lookup_failed", "dns_service platform config", kind="servfail", alias_broken=True),
    row("dns_lookup_failed", "config dns_service platform", kind="nxdomain", alias_broken=False),
    # The system found no such name (EAI_NONAME) and DNS said nothing: a typo first.
    row("dns_lookup_failed", "config dns_service platform", kind="system_failed",
        os_failure="no_name"),
    row("dns_lookup_failed", "dns_service config platform", kind="sinkhole", pinned_by=None),
    # A pin beside a family that failed: the pin still comes first.
    row("connect_failed", "config firewall routing", pinned_by="hosts_file",
        failed_family="IPv6"),
    row("connect_timeout", "config firewall routing", pinned_by="hosts_file",
        host_answers=True),
    row("connect_failed", "firewall config platform", kind="refused", default_port=True),
    row("connect_failed", "routing firewall platform", kind="unreachable", default_port=False),
    row("connect_failed", "firewall config platform", kind="reset"),
    row("connect_timeout", "routing firewall platform", host_answers=None),
    # The clock explains an intermediate's window: the clock first, whatever the link.
    row("tls_certificate_error", "clock platform config", kind="expired", clock_explains=True,
        link="intermediate"),
    row("tls_certificate_error", "platform clock config", kind="not_yet_valid",
        clock_explains=False, link="leaf"),
    row("tls_certificate_error", "clock platform config", kind="not_yet_valid", link="leaf"),
    row("tls_certificate_error", "config tls_interception platform", kind="hostname_mismatch",
        same_domain=False),
    row("tls_certificate_error", "config clock platform", kind="revoked"),
    row("tls_handshake_failed", "firewall platform config", kind="error"),
    row("clock_skew", "clock platform", kind="anything"),
    row("http_redirect", "config tls_interception platform", location_host="same"),
    row("http_unauthorized", "invalid_key wrong_stack missing_key", kind="rejected"),
    row("http_server_error", "platform tls_interception", kind="api"),
    row("http_unexpected", "config platform", kind="status"),
    # A fact of one rule beside another kind must not pull that kind into its rule.
    row("connect_failed", "firewall config routing", kind="blocked_locally", default_port=False),
    row("connect_failed", "firewall config platform", kind="reset", default_port=False),
    row("tls_certificate_error", "config tls_interception platform", kind="hostname_mismatch",
        clock_explains=False),
    row("tls_certificate_error", "tls_interception platform config", kind="unknown_issuer",
        link="intermediate"),
    row("tls_certificate_error", "clock platform config", kind="not_yet_valid", same_domain=True),
    row("tls_certificate_error", "tls_interception platform config", kind="unknown_issuer",
        clock_explains=True, same_domain=True),
    row("tls_certificate_error", "tls_interception config platform", kind="self_signed",
        clock_explains=False, same_domain=True),
    row("tls_certificate_error", "platform tls_interception", kind="expiring",
        clock_explains=False, same_domain=True),
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
    "rcode": "RCODE-77", "addresses": "0.0.0.0",
    "issuer": "CN=Inspecting Proxy CA", "cert_names": "portal.example.net",
    "not_before": "2026-01-02T00:00:00+00:00", "not_after": "2026-03-04T00:00:00+00:00",
    "skew_text": "3 days 0 h behind the API's", "verify_error": "certificate has expired",
    "kind_text": "got no answer", "status_code": 302, "location": "https://portal.example/x",
    "response_body": "odd body 4711", "timeout": 7.5, "retry_after": 42,
    "url": "https://api.zz9.sheassure.net:8443/v2/pong", "proxy": "http://proxy.zz9:3128",
    "proxy_authenticate": "Negotiate-77", "exception": "RuntimeError: boom-77",
    "proxy_source": "PROXY-SOURCE-77", "schemes": "Negotiate-78", "title": "Page-77",
    "mss": 577, "product": "Inspector-77", "path_finding": "the SYN dies at hop 77.",
    "address_was": "192.0.2.77 (from DNS)", "cert_subject": "CN=Issuing CA 77",
    "missing_intermediate": "CN=Missing Intermediate 77",
    "aia_url": "http://aia.example/ca77.crt",
    "os_error": "EAI-77: odd failure", "dns_addresses": "192.0.2.78, 2001:db8::78",
    "broken_link": "gw-77.platform.example", "chain_text": "api.zz9 → gw-77.platform.example",
    "hosts_file": "/etc/hosts-77", "hosts_line": 77, "pinned_address": "198.18.7.77",
}
Said = tuple[str, str, str, tuple[str, ...], F]


def said(condition: str, cause: str, pattern: str, names: str = "", **facts: object) -> Said:
    """With FACTS and `facts`, the advice for `cause` matches `pattern` and states `names`."""
    return condition, cause, pattern, tuple(names.split()), facts


# Every wording of every (condition, cause), and the facts that choose it: the condition's own
# wordings first, then the cause's generic one where none of its own fits.
SAID: list[Said] = [
    # Changed since the last good check, and where the path ends (a TCP traceroute).
    said("connect_timeout", "config", "now comes from the hosts file", "host address",
         address_moved_by="hosts"),
    said("connect_failed", "dns_service", "now resolves to", "host address",
         address_moved_by="dns"),
    said("tls_certificate_error", "tls_interception", "issuer changed to", "issuer host",
         inspection_introduced=True),
    said("connect_timeout", "firewall", "shows where the connection attempts stop", "port host",
         path_ending="silent"),
    said("connect_failed", "firewall", "shows who refuses it", "port host",
         path_ending="rejected"),
    said("connect_timeout", "routing", "routing breaks where the traceroute stops", "address",
         path_ending="silent"),
    said("connect_failed", "routing", "cannot deliver it onward", "port",
         path_ending="unreachable", kind="unreachable"),
    said("tls_handshake_failed", "firewall", "The TCP path is open", "host port",
         path_ending="reached", kind="timeout"),
    said("proxy_connect_failed", "firewall", "A TCP traceroute to the proxy", "",
         step="tcp", path_ending="silent"),
    said("dns_lookup_failed", "config", "does not exist according to", "host resolver",
         kind="nxdomain"),
    said("dns_lookup_failed", "config", "it is an alias of .*so it is not a typo",
         "host broken_link", kind="nxdomain", alias_broken=True),
    said("dns_lookup_failed", "config", "which blocks it. The hosts file decides",
         "hosts_file hosts_line host addresses", kind="sinkhole", pinned_by="hosts_file"),
    said("dns_lookup_failed", "config", "but this machine's own resolver does not",
         "resolver dns_addresses host os_error", kind="system_failed"),
    said("dns_lookup_failed", "platform", "which does not exist according to .*the platform's "
         "DNS is broken", "host broken_link resolver chain_text", kind="nxdomain",
         alias_broken=True),
    said("dns_lookup_failed", "platform", "which has no address according to .*the platform's "
         "DNS is broken", "host broken_link resolver chain_text", kind="nodata",
         alias_broken=True),
    said("dns_lookup_failed", "dns_service", "though DNS asked directly",
         "host os_error resolver dns_addresses", kind="system_failed", os_failure="temporary"),
    said("dns_lookup_failed", "dns_service", "refused or failed the query",
         "host os_error resolver", kind="system_failed", os_failure="failed"),
    said("connect_failed", "config", "pins .* while DNS answers", "hosts_file hosts_line host "
         "pinned_address dns_addresses", pinned_by="hosts_file"),
    said("connect_timeout", "config", "pins .* while DNS answers", "hosts_file hosts_line host "
         "pinned_address dns_addresses", pinned_by="hosts_file"),
    said("dns_lookup_failed", "config", r"^Check \S+ for typos", "host", kind="servfail"),
    said("dns_lookup_failed", "dns_service", "did not answer within", "resolver timeout",
         kind="timeout"),
    said("dns_lookup_failed", "dns_service", "instead of an address", "resolver rcode",
         kind="servfail"),
    said("dns_lookup_failed", "dns_service", "instead of an address", "resolver rcode",
         kind="refused"),
    said("dns_lookup_failed", "dns_service", "a DNS filter", "resolver addresses host",
         kind="sinkhole"),
    said("dns_lookup_failed", "dns_service", "^If the DNS servers this machine uses",
         "resolver", kind="nxdomain"),
    said("dns_lookup_failed", "firewall", "port 53", "resolver", kind="timeout"),
    said("dns_lookup_failed", "platform", "other networks or resolvers", "host"),
    said("connect_failed", "config", "^Nothing accepts connections", "address port",
         kind="refused", default_port=False),
    said("connect_failed", "config", r"^Check the host and port in the URL \(", "host port",
         kind="refused", default_port=True),
    said("connect_failed", "firewall", "filters only IPv6", "host port",
         failed_family="IPv6", working_family="IPv4"),
    said("connect_failed", "firewall", "filters only IPv4", "host port",
         failed_family="IPv4", working_family="IPv6"),
    said("connect_failed", "firewall", "actively refused", "host port error", kind="refused"),
    said("connect_failed", "firewall", "blocked on this machine", "host port error",
         kind="blocked_locally"),
    said("connect_failed", "firewall", "^Ask your network team to allow outbound HTTPS from",
         "host port", kind="reset"),
    said("connect_failed", "routing", "advertises IPv6 without carrying it", "host error",
         failed_family="IPv6", working_family="IPv4"),
    said("connect_failed", "routing", "check IPv4 routing", "host error",
         failed_family="IPv4", working_family="IPv6"),
    said("connect_failed", "routing", "has no route to", "address error", kind="unreachable"),
    said("connect_failed", "routing", "^If packets from this machine do not reach", "address",
         kind="blocked_locally"),
    said("connect_failed", "platform", "API's IPv6 side may be down", "host",
         failed_family="IPv6", working_family="IPv4"),
    said("connect_failed", "platform", "^Unlikely, but possible", kind="refused"),
    said("connect_timeout", "firewall", "filters only IPv4", "host port",
         failed_family="IPv4", working_family="IPv6"),
    said("connect_timeout", "firewall", "yet the host answers on another port", "host port",
         host_answers=True),
    said("connect_timeout", "firewall", "got no answer at all", "host port",
         host_answers=False),
    said("connect_timeout", "firewall", "got no answer at all", "host port"),
    said("connect_timeout", "routing", "advertises IPv6 without carrying it", "host error",
         failed_family="IPv6", working_family="IPv4"),
    said("connect_timeout", "routing", r"^Nothing on \S+ answered", "address",
         host_answers=False),
    said("connect_timeout", "routing", "routing is unlikely", host_answers=True),
    said("connect_timeout", "routing", "^If packets from this machine do not reach", "address"),
    said("connect_timeout", "platform", "API's IPv4 side may be down", "host",
         failed_family="IPv4", working_family="IPv6"),
    said("connect_timeout", "platform", "^Unlikely, but possible"),
    said("tls_certificate_error", "config", "something else is answering", "host cert_names",
         kind="hostname_mismatch"),
    said("tls_certificate_error", "config", r"presented names \S+\.$", "host cert_names",
         kind="expired"),
    said("tls_certificate_error", "clock", r"this machine's clock is \d",
         "cert_subject not_before not_after skew_text", kind="expired", clock_explains=True),
    said("tls_certificate_error", "clock", "does not explain it",
         "cert_subject not_before not_after", kind="expired", clock_explains=False),
    said("tls_certificate_error", "clock", "If this machine's clock is wrong",
         "cert_subject not_before not_after", kind="not_yet_valid"),
    said("tls_certificate_error", "platform", "without the intermediate certificate",
         "missing_intermediate aia_url", kind="missing_intermediate"),
    said("tls_certificate_error", "platform", "broken at its intermediate certificate",
         "cert_subject not_before not_after verify_error", kind="expired",
         link="intermediate"),
    said("tls_certificate_error", "platform", "broken at its root certificate",
         "cert_subject not_before not_after verify_error", kind="not_yet_valid", link="root"),
    said("tls_certificate_error", "tls_interception", "If that is not a public CA",
         "issuer host", kind="missing_intermediate"),
    said("tls_certificate_error", "platform", "verified but expires soon", "verify_error",
         kind="expiring"),
    said("tls_certificate_error", "platform", "it is not a local clock error", "verify_error",
         kind="not_yet_valid", clock_explains=False),
    said("tls_certificate_error", "platform", "If nothing on your side explains it",
         "verify_error", kind="expired"),
    said("tls_certificate_error", "tls_interception", "verified and was issued by",
         "issuer host", kind="expiring"),
    said("tls_certificate_error", "tls_interception", "which this machine does not trust",
         "issuer host", kind="unknown_issuer"),
    said("tls_certificate_error", "tls_interception", "is self-signed", "issuer host",
         kind="self_signed"),
    said("tls_certificate_error", "tls_interception", "If that is not a public CA",
         "issuer host", kind="hostname_mismatch"),
    said("tls_handshake_failed", "firewall", "opened but the TLS handshake got no answer",
         "kind_text host port", kind="timeout"),
    said("tls_handshake_failed", "routing", "MTU black hole", kind="timeout"),
    said("tls_handshake_failed", "tls_interception", "cutting or answering the handshake",
         "host", kind="reset"),
    said("tls_handshake_failed", "config", "does not speak TLS there", "address port error",
         kind="not_tls"),
    said("tls_handshake_failed", "config", "^Check the URL character by character",
         kind="alert"),
    said("clock_skew", "clock", "Synchronise it with NTP", "skew_text"),
    said("clock_skew", "platform", "the API's own clock is wrong"),
    said("http_redirect", "config", "Use the final URL", "status_code location"),
    said("http_redirect", "tls_interception", "points away from the API", "location host",
         location_host="other"),
    said("http_redirect", "tls_interception", "redirect stays on", "host",
         location_host="same"),
    said("http_redirect", "tls_interception", "answers in its place", "host"),
    said("http_bad_request", "config", "request itself is malformed", "response_body"),
    said("http_bad_request", "tls_interception", "rewriting requests"),
    said("http_unauthorized", "invalid_key", "The key was refused"),
    said("http_unauthorized", "wrong_stack", "Keys only work on the stack", "host"),
    said("http_unauthorized", "missing_key", "x-api-key header", kind="key_missing_reported"),
    said("http_not_found", "wrong_url", "has no method at", "url"),
    said("http_not_found", "config", "v1/ping for your stack"),
    said("http_throttled", "rate_limited", r"Wait \S+ s before", "retry_after"),
    said("http_throttled", "config", "10,000 requests a day: find which one"),
    said("http_server_error", "platform", "Retry later", "status_code response_body"),
    said("http_server_error", "tls_interception", "502/503/504", kind="gateway"),
    said("http_server_error", "tls_interception", "could answer with an error page",
         kind="api"),
    said("http_timeout", "platform", "sent no response within", "timeout"),
    said("http_timeout", "firewall", "holds requests"),
    said("http_timeout", "routing", r"TCP and TLS to \S+ worked", "address"),
    said("http_unexpected", "config", "answered an unexpected", "status_code response_body"),
    said("http_unexpected", "wrong_url", "has no method at", "url", kind="method"),
    said("http_unexpected", "platform", "^Unlikely, but possible", kind="disconnect"),
    said("tls_certificate_error", "tls_interception", "re-signs the API's certificate",
         "product issuer host", kind="system_only"),
    said("tls_handshake_failed", "firewall", "segments completed the handshake", "mss host",
         kind="mtu"),
    said("tls_handshake_failed", "routing", r"while \d+-byte segments get through", "mss",
         kind="mtu"),
    said("proxy_connect_failed", "proxy", "does not exist according to",
         "proxy proxy_source resolver", step="dns", kind="nxdomain"),
    said("proxy_connect_failed", "proxy", r"cannot be reached \(", "proxy proxy_source error"),
    said("proxy_connect_failed", "firewall", "are blocked or dropped", "proxy error",
         step="tcp"),
    said("proxy_connect_failed", "firewall", "^Ask your network team to allow outbound HTTPS",
         "host port"),
    said("proxy_connect_failed", "firewall", "^Ask your network team to allow outbound HTTPS",
         "host port", step="dns"),
    said("proxy_connect_failed", "routing", "no route to the proxy", "address", step="tcp",
         kind="unreachable"),
    said("proxy_connect_failed", "dns_service", "does not resolve reliably via", "resolver",
         step="dns"),
    said("proxy_auth_required", "proxy", "refused the credentials given", "proxy schemes",
         kind="answerable", has_credentials=True),
    said("proxy_auth_required", "proxy", "can take Basic", "proxy schemes", kind="answerable"),
    said("proxy_auth_required", "proxy", "Windows-integrated sign-in", "proxy schemes host",
         kind="unanswerable"),
    said("proxy_auth_required", "proxy", "Windows-integrated sign-in", "proxy schemes host",
         kind="unanswerable", has_credentials=True),
    said("proxy_auth_required", "proxy", "wants credentials; it offers",
         "proxy proxy_authenticate"),
    said("proxy_auth_required", "config", "same proxy and credentials"),
    said("proxy_refused", "proxy", "refuses to tunnel to", "proxy host port status_code title",
         kind="refused"),
    said("proxy_refused", "proxy", "^Check the proxy this machine uses", "proxy host",
         kind="closed"),
    said("proxy_refused", "config", "is an HTTP proxy: CONNECT got no proper",
         "proxy proxy_source", kind="not_http"),
    said("proxy_refused", "config", "is an HTTP proxy: CONNECT got no proper",
         "proxy proxy_source", kind="closed"),
    said("proxy_refused", "config", "is an HTTP proxy: CONNECT got no proper",
         "proxy proxy_source", kind="error"),
    said("proxy_refused", "config", "should use: your integration", "proxy proxy_source",
         kind="refused"),
    said("proxy_upstream_failed", "platform", "If other sites work through the proxy",
         "host status_code title", kind="upstream"),
    said("proxy_upstream_failed", "proxy", "gave no answer to CONNECT within",
         "proxy timeout host", kind="timeout"),
    said("proxy_upstream_failed", "proxy", "its own DNS, routing or outbound firewall",
         "proxy host", kind="upstream"),
    said("proxy_upstream_failed", "platform", "^Unlikely, but possible", kind="timeout"),
    said("proxy_upstream_failed", "proxy", "^Check the proxy this machine uses", "proxy host"),
    said("proxy_upstream_failed", "firewall", "between the proxy and the internet",
         "host port"),
    said("internal_error", "tool", "itself failed here", "exception"),
]


def advice(condition: str, cause: str, facts: F) -> str:
    """The advice `rank` gives for `cause` with these facts (the cause must be ranked)."""
    found = {str(c.id): c.advice for c in rank(condition, facts)}
    assert cause in found, f"{cause} is not a cause of {condition} with {facts}"
    return found[cause]


@pytest.mark.parametrize(("condition", "cause", "pattern", "names", "facts"), SAID,
                         ids=[f"{c}-{k}-{'-'.join(map(str, f.values())) or 'any'}"
                              for c, k, _, _, f in SAID])
def test_advice_is_the_one_for_its_facts_and_names_them(
        condition: str, cause: str, pattern: str, names: tuple[str, ...], facts: F) -> None:
    text = advice(condition, cause, {**FACTS, **facts})
    assert re.search(pattern, text), f"{condition}/{cause}: {text}"
    for name in names:
        assert str(FACTS[name]) in text, f"{condition}/{cause} advice does not name {name}"


# Where the facts a wording states are not known, a wording that does not state them is
# chosen: never a blank, a "None" or a "(not known)".
UNSTATED: list[tuple[str, str, F, str]] = [
    ("connect_timeout", "config",
     {"pinned_by": "hosts_file", "hosts_file": "/etc/hosts", "hosts_line": 3,
      "host": "api.x.sheassure.net", "pinned_address": "198.18.0.9"},
     "/etc/hosts line 3 pins api.x.sheassure.net to 198.18.0.9, which this machine cannot "
     "connect to. The hosts file decides for every program on this machine, so the integration "
     "fails the same way: if that address is stale, remove the line (or correct it); editing "
     "the hosts file needs administrator rights."),
    ("dns_lookup_failed", "dns_service",
     {"kind": "system_failed", "os_failure": "temporary", "host": "api.x.sheassure.net",
      "os_error": "EAI_AGAIN: Temporary failure in name resolution", "resolver": "system"},
     "This machine's resolver got no answer for api.x.sheassure.net (EAI_AGAIN: Temporary "
     "failure in name resolution): the DNS servers it uses (system) are not answering properly."
     " Try another resolver (--resolver) and, if that works, ask your IT support to fix the "
     "local DNS service."),
    ("dns_lookup_failed", "config",
     {"kind": "system_failed", "host": "api.x.sheassure.net",
      "os_error": "EAI_NONAME: Name or service not known"},
     "This machine's resolver does not find api.x.sheassure.net. Check it for typos and that "
     "the stack name is right (the one in your Assure web address), then this machine's "
     "resolver settings (hosts file, VPN)."),
    ("connect_timeout", "firewall", {"host_answers": True},
     "Ask your network team to allow outbound HTTPS from this machine to the API."),
    ("connect_timeout", "firewall", {"host_answers": True, "host": None, "port": None},
     "Ask your network team to allow outbound HTTPS from this machine to the API."),
    ("connect_failed", "firewall", {"kind": "refused", "host": "h.example", "port": 443},
     "Ask your network team to allow outbound HTTPS from this machine to h.example port 443."),
    ("connect_failed", "routing", {"failed_family": "IPv6", "host": "h.example"},
     "If packets from this machine do not reach the API, ask your IT team to check the "
     "default gateway, VPN and outbound internet routing for this machine."),
    ("dns_lookup_failed", "dns_service", {"kind": "timeout"},
     "If this machine's DNS service is not answering properly, try the lookup with another "
     "resolver (--resolver) and, if that works, ask your IT support to fix it."),
    ("http_throttled", "rate_limited", {"retry_after": None},
     "The customer's limit is 10 requests a second (bursts of 20) and 10,000 a day, shared by "
     "every integration using your keys. Wait before retrying, and find what else is spending "
     "requests."),
    ("proxy_refused", "proxy", {"kind": "refused", "host": "h.example", "port": 443},
     "The proxy refused to connect to the API: its policy blocks it. Ask your network team to "
     "allow the API host through the proxy."),
    ("tls_certificate_error", "clock", {"kind": "expired"},
     "Set this machine's clock right and keep it synchronised (NTP / w32time): a clock that is "
     "wrong makes valid certificates look expired or not yet valid."),
    ("http_redirect", "tls_interception", {},
     "If something between you and the API (a proxy or TLS-inspecting middlebox) answers in its "
     "place, ask your network team to let this machine reach the API directly."),
    ("http_unauthorized", "wrong_stack", {},
     "Keys only work on the stack they were created on. Make sure the stack in the URL is the "
     "one in your Assure web address."),
    ("proxy_connect_failed", "proxy", {"host": "h.example"},
     "Check the proxy settings this machine uses: the proxy's address, the credentials it "
     "expects, and whether its policy allows the API host. Your integration must use the same "
     "proxy settings."),
    ("proxy_auth_required", "proxy", {"proxy_authenticate": "Basic"},
     "The proxy wants credentials: give them in the proxy URL (--proxy "
     "http://user:pass@host:port) and configure your integration the same way."),
    ("proxy_upstream_failed", "proxy", {"kind": "upstream", "host": "h.example"},
     "The proxy answered, but could not reach the API itself: the problem is beyond the proxy. "
     "Tell your network team."),
    ("proxy_upstream_failed", "proxy", {},
     "Check the proxy settings this machine uses: the proxy's address, the credentials it "
     "expects, and whether its policy allows the API host. Your integration must use the same "
     "proxy settings."),
    ("proxy_connect_failed", "proxy", {"proxy": "http://p.example:3128"},
     "The proxy http://p.example:3128 cannot be reached. Check its host and port, or ask your "
     "IT team which proxy this machine must use."),
    ("tls_handshake_failed", "routing", {"kind": "mtu"},
     "Full-size packets are lost on the way while small segments get through: a path MTU "
     "black hole, typical of VPNs and tunnels. Ask your network team to clamp the TCP MSS on "
     "the VPN or firewall, and to let ICMP 'fragmentation needed' (IPv4) and 'packet too big' "
     "(IPv6) through."),
    ("internal_error", "tool", {},
     "assure-doctor itself failed here: this is a bug in the tool, not a finding about your "
     "network. Please report it to the assure-doctor maintainers with the JSON report (--json) "
     "and the log (--log-file); the key is never in them."),
]


@pytest.mark.parametrize(("condition", "cause", "facts", "expected"), UNSTATED)
def test_unknown_facts_choose_a_wording_without_them(condition: str, cause: str, facts: F,
                                                      expected: str) -> None:
    assert advice(condition, cause, facts) == expected


def test_every_wording_is_asserted() -> None:
    """Each wording of the tables is the one a row here checks (so none goes unchecked)."""
    shown = [advice(c, k, {**FACTS, **f}) for c, k, _, _, f in SAID]
    shown += [expected for *_, expected in UNSTATED]
    for variant in [a for variants in (*ADVICE.values(), *GENERIC.values()) for a in variants]:
        opening = variant.text.split("{")[0]
        assert any(text.startswith(opening) or opening in text for text in shown), variant


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


def test_specific_advice_differs_by_condition() -> None:
    """The same cause gets the advice of its condition, not one generic sentence."""
    firewall = {condition: advice(condition, "firewall", {**FACTS, **facts})
                for condition, facts in (("dns_lookup_failed", {"kind": "timeout"}),
                                         ("connect_failed", {"kind": "refused"}),
                                         ("connect_timeout", {}),
                                         ("tls_handshake_failed", {"kind": "timeout"}),
                                         ("http_timeout", {}))}
    assert len(set(firewall.values())) == len(firewall)
    assert "DNS" in firewall["dns_lookup_failed"]
    assert "refused" in firewall["connect_failed"]
    assert "stealth" in firewall["connect_timeout"]
    assert "TLS" in firewall["tls_handshake_failed"]


def test_a_wording_keeps_to_its_facts_where_no_rule_ranks_it_yet() -> None:
    """The MTU wording claims a stall: a rule added later that ranks routing for a handshake
    that was cut must not get it."""
    stalled = advice_for(Condition.TLS_HANDSHAKE_FAILED, CauseId.ROUTING, {"kind": "timeout"})
    assert "stalls" in stalled.text
    cut = advice_for(Condition.TLS_HANDSHAKE_FAILED, CauseId.ROUTING, {"kind": "reset"})
    assert "stalls" not in cut.text and cut.text.startswith("If packets from this machine")


def test_the_advice_tables_cannot_be_changed_at_run_time() -> None:
    """Advice variants are shared by every check (and every monitor thread)."""
    variant = ADVICE[Condition.CLOCK_SKEW, CauseId.CLOCK][0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        variant.text = "changed"  # type: ignore[misc]
